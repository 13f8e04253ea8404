// people.py in the page: BlazeFace's faces and NanoDet's persons on the encoder's square, with the settings of
// policy.json's detectors and the graphs `captioner export --web` writes under people/. The numbers follow people.py's steps
// (float32 where numpy computes in float32); captioner.js gives the square's pixels and Pillow's bilinear resize.
// Exposed as window.captionerPeople for captioner.js and the tests.
"use strict";

(() => {
  const f = Math.fround;

  // cfg: policy.json's detectors; session opens a graph of the page's folder
  async function load(session, cfg) {
    const [face, person] = await Promise.all([session(`people/${cfg.face.model}`), session(`people/${cfg.person.model}`)]);
    return { cfg, face, person };
  }

  // people._iou for two boxes (x0, y0, x1, y1)
  function iou(a, b) {
    const x0 = Math.max(a[0], b[0]), y0 = Math.max(a[1], b[1]), x1 = Math.min(a[2], b[2]), y1 = Math.min(a[3], b[3]);
    const inter = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
    const area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]);
    return inter / Math.max(area - inter, 1e-9);
  }

  // people._nms: [score, box] kept, strongest first (ties in their order), each dropping those it overlaps by more
  function nms(found, limit) {
    const order = found.map((d, i) => [d, i]).sort((a, b) => b[0][0] - a[0][0] || a[1] - b[1]);
    const kept = [];
    for (const [d] of order) if (kept.every((k) => iou(d[1], k[1]) <= limit)) kept.push(d);
    return kept;
  }

  // people.detect: BlazeFace on the square resized to 192 x 192, scaled to [-1, 1]
  async function faces(p, img, resample, minScore = p.cfg.face.min_score) {
    const c = p.cfg.face, s = c.size, r = resample(img, s, s), n = s * s, x = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) for (let ch = 0; ch < 3; ch++) x[ch * n + i] = f(f(r.d[3 * i + ch] / 127.5) - 1);
    const out = await p.face.run({ image: new ort.Tensor("float32", x, [1, 3, s, s]) });
    const raw = out.boxes.data, logit = out.scores.data, found = [];
    for (let a = 0; a < c.grid * c.grid; a++) {
      const score = 1 / (1 + Math.exp(-Math.min(100, Math.max(-100, logit[a]))));
      if (score < minScore) continue;
      const row = Math.floor(a / c.grid), col = a % c.grid, at = raw.length / (c.grid * c.grid) * a;
      const cx = f(raw[at] / s) + (col + 0.5) / c.grid, cy = f(raw[at + 1] / s) + (row + 0.5) / c.grid;
      const w = f(raw[at + 2] / s), h = f(raw[at + 3] / s);
      found.push([score, [cx - f(w / 2), cy - f(h / 2), cx + f(w / 2), cy + f(h / 2)]]);
    }
    return nms(found, c.nms_iou);
  }

  // people.detect_persons: NanoDet on the square (resized to its size when it differs), BGR, normalised; COCO's class 0
  async function persons(p, img, resample, minScore = p.cfg.person.min_score) {
    const c = p.cfg.person, s = c.size, n = s * s, x = new Float32Array(3 * n);
    const r = img.w === s && img.h === s ? img : resample(img, s, s); // people._squares: the square as it is

    for (let i = 0; i < n; i++) {
      for (let ch = 0; ch < 3; ch++) x[ch * n + i] = f(f(r.d[3 * i + 2 - ch] - f(c.mean[ch])) / f(c.std[ch]));
    }
    const out = await p.person.run({ image: new ort.Tensor("float32", x, [1, 3, s, s]) });
    const found = [];
    for (const stride of c.strides) {
      const side = s / stride, scores = out[`scores${stride}`], boxes = out[`boxes${stride}`].data;
      const classes = scores.dims[2], width = 4 * c.bins;
      for (let k = 0; k < side * side; k++) {
        const score = scores.data[k * classes];
        if (score < minScore) continue;
        const d = [];
        for (let e = 0; e < 4; e++) { // the expected distance of each side, in strides, over its bins' softmax
          const l = boxes.subarray(k * width + e * c.bins, k * width + (e + 1) * c.bins);
          const mx = Math.max(...l);
          let z = 0, m = 0;
          l.forEach((v, b) => { const w = Math.exp(v - mx); z += w; m += w * b; });
          d.push((m / z) * stride);
        }
        const cx = (k % side + 0.5) * stride, cy = (Math.floor(k / side) + 0.5) * stride;
        found.push([score, [(cx - d[0]) / s, (cy - d[1]) / s, (cx + d[2]) / s, (cy + d[3]) / s]]);
      }
    }
    return nms(found, c.nms_iou);
  }

  // people.count_people: the faces or the whole people found, the larger count
  async function count(p, img, resample) {
    const a = await faces(p, img, resample), b = await persons(p, img, resample); // one session runs at a time
    return Math.max(a.length, b.length);
  }

  // people.grey_people: the persons found at the grey threshold in an exactly grey image, 0 in any other
  async function grey(p, img, resample) {
    for (let i = 0; i < img.d.length; i += 3) if (img.d[i] !== img.d[i + 1] || img.d[i + 1] !== img.d[i + 2]) return 0;
    return (await persons(p, img, resample, p.cfg.person.grey_min_score)).length;
  }

  window.captionerPeople = { load, faces, persons, count, grey };
})();
