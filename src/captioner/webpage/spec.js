// features/spec.py in the page: Pillow's reduce() then bicubic resize in fixed point, as spec.preprocess calls
// them, and the bilinear resize the people detectors read.
"use strict";

(() => {
  const PRECISION_BITS = 22; // Pillow's Resample.c: 32 - 8 - 2

  function roundHalfEven(x) {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  function bicubic(x) {
    const a = -0.5;
    x = Math.abs(x);
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
  }
  const BICUBIC = { support: 2, weight: bicubic };
  const BILINEAR = { support: 1, weight: (x) => Math.max(0, 1 - Math.abs(x)) };

  // Integer weights of each output sample over the input samples in0..in1 (float32, as Pillow's box is).
  function coefficients(inSize, in0, in1, outSize, filter) {
    const scale = Math.fround(in1 - in0) / outSize;
    const filterscale = Math.max(scale, 1);
    const support = filter.support * filterscale;
    const ksize = Math.ceil(support) * 2 + 1;
    const bounds = new Int32Array(outSize * 2), kk = new Float64Array(outSize * ksize);
    for (let xx = 0; xx < outSize; xx++) {
      const center = in0 + (xx + 0.5) * scale;
      const xmin = Math.max(0, Math.trunc(center - support + 0.5));
      const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
      let ww = 0;
      for (let x = 0; x < xmax; x++) {
        const w = filter.weight((x + xmin - center + 0.5) / filterscale);
        kk[xx * ksize + x] = w;
        ww += w;
      }
      for (let x = 0; x < xmax; x++) {
        const w = ww !== 0 ? kk[xx * ksize + x] / ww : kk[xx * ksize + x];
        kk[xx * ksize + x] = Math.trunc(w < 0 ? -0.5 + w * 2 ** PRECISION_BITS : 0.5 + w * 2 ** PRECISION_BITS);
      }
      bounds[2 * xx] = xmin;
      bounds[2 * xx + 1] = xmax;
    }
    return { ksize, bounds, kk };
  }

  function clip8(ss) {
    return Math.min(255, Math.max(0, Math.floor(ss / 2 ** PRECISION_BITS)));
  }

  // One pass over RGB rows (horizontal) or columns (vertical): img {w, h, d: Uint8Array RGB}.
  function pass(img, outSize, in0, in1, horizontal, filter = BICUBIC) {
    const { ksize, bounds, kk } = coefficients(horizontal ? img.w : img.h, in0, in1, outSize, filter);
    const w = horizontal ? outSize : img.w, h = horizontal ? img.h : outSize;
    const d = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const o = horizontal ? x : y, min = bounds[2 * o], n = bounds[2 * o + 1];
        for (let c = 0; c < 3; c++) {
          let ss = 2 ** (PRECISION_BITS - 1);
          for (let i = 0; i < n; i++) {
            const src = horizontal ? (y * img.w + min + i) * 3 : ((min + i) * img.w + x) * 3;
            ss += img.d[src + c] * kk[o * ksize + i];
          }
          d[(y * w + x) * 3 + c] = clip8(ss);
        }
      }
    }
    return { w, h, d };
  }

  // Pillow's reduce((fx, fy)): the mean of each fx x fy block (partial blocks at the right and bottom edges),
  // rounded as Reduce.c rounds: (sum + n/2) * floor(2^32 / (256 n) in float32) >> 24.
  function reduce(img, fx, fy) {
    const w = Math.ceil(img.w / fx), h = Math.ceil(img.h / fy), d = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const x1 = Math.min(img.w, (x + 1) * fx), y1 = Math.min(img.h, (y + 1) * fy);
        const n = (x1 - x * fx) * (y1 - y * fy);
        const mult = Math.trunc(Math.fround(4294967296 / (256 * n)));
        for (let c = 0; c < 3; c++) {
          let ss = Math.floor(n / 2);
          for (let yy = y * fy; yy < y1; yy++) for (let xx = x * fx; xx < x1; xx++) ss += img.d[(yy * img.w + xx) * 3 + c];
          d[(y * w + x) * 3 + c] = Math.floor((ss * mult) / 2 ** 24);
        }
      }
    }
    return { w, h, d };
  }

  // Image.resize((nw, nh), BICUBIC, reducing_gap=3.0).
  function resize(img, nw, nh) {
    const fx = Math.trunc(img.w / nw / 3) || 1, fy = Math.trunc(img.h / nh / 3) || 1;
    let box = [0, 0, img.w, img.h];
    if (fx > 1 || fy > 1) {
      box = [0, 0, Math.fround(img.w / fx), Math.fround(img.h / fy)];
      img = reduce(img, fx, fy);
    }
    return pass(pass(img, nw, box[0], box[2], true), nh, box[1], box[3], false);
  }

  // Image.resize((nw, nh), BILINEAR), as people.py resizes the square for its detectors.
  function bilinear(img, nw, nh) {
    return pass(pass(img, nw, 0, img.w, true, BILINEAR), nh, 0, img.h, false, BILINEAR);
  }

  // sights.look.pixels: the encoder's input (3, S, S) back to RGB bytes, x * std + mean in float32, rounded half to even.
  function squarePixels(x, spec) {
    const s = spec.input_size, n = s * s, d = new Uint8Array(3 * n);
    for (let c = 0; c < 3; c++) {
      const m = Math.fround(spec.mean[c]), sd = Math.fround(spec.std[c]);
      for (let i = 0; i < n; i++) d[3 * i + c] = Math.min(255, Math.max(0, roundHalfEven(Math.fround(Math.fround(x[c * n + i] * sd) + m))));
    }
    return { w: s, h: s, d };
  }

  // spec.preprocess: RGBA pixels (alpha composited on white as Pillow's alpha_composite does for an opaque
  // background) -> Float32Array (3, S, S), (x - mean) / std in float32.
  function preprocess(rgba, width, height, spec) {
    const rgb = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) {
      const a = rgba[4 * i + 3];
      for (let c = 0; c < 3; c++) {
        const v = rgba[4 * i + c];
        const t = (v * a + 255 * (255 - a)) * 128 + 16384; // AlphaComposite.c over opaque white, 7-bit precision
        rgb[3 * i + c] = a === 0 ? 255 : (((t >> 8) + t) >> 8) >> 7;
      }
    }
    const s = spec.input_size, scale = s / Math.min(width, height);
    const nw = Math.max(s, roundHalfEven(width * scale)), nh = Math.max(s, roundHalfEven(height * scale));
    const img = nw === width && nh === height ? { w: width, h: height, d: rgb } : resize({ w: width, h: height, d: rgb }, nw, nh);
    const left = Math.floor((nw - s) / 2), top = Math.floor((nh - s) / 2);
    const out = new Float32Array(3 * s * s);
    for (let c = 0; c < 3; c++) {
      const m = Math.fround(spec.mean[c]), sd = Math.fround(spec.std[c]);
      for (let y = 0; y < s; y++) {
        for (let x = 0; x < s; x++) {
          const v = img.d[((top + y) * img.w + left + x) * 3 + c];
          out[(c * s + y) * s + x] = Math.fround(Math.fround(v - m) / sd);
        }
      }
    }
    return out;
  }

  window.captionerSpec = { preprocess, squarePixels, bilinear, resize };
})();
