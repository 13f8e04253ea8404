// Captioning in the page: the graphs of `captioner export` run by onnxruntime-web, around them the same
// preprocessing, beam search, ending rules and photo naming as the Python package (spec.py, decoding.py,
// images.py, text.py). Nothing leaves the machine. Exposed as window.captioner for the page and its tests.
"use strict";

(() => {
  const PAD = 0, UNK = 1, START = 2, END = 3, NEG = -1e9, BANNED = [PAD, START, UNK];
  const PRECISION_BITS = 22; // Pillow's Resample.c: 32 - 8 - 2

  // ---- preprocessing: Pillow's reduce() then bicubic resize in fixed point, as spec.preprocess calls them ----

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

  // truth.pixels: the encoder's input (3, S, S) back to RGB bytes, x * std + mean in float32, rounded half to even.
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

  // images.flat_share for one image (3, S, S): the share of non-background pixels whose right, lower and
  // lower-right neighbours have exactly their colour; the background is the commonest colour, found with the
  // same 64-bit key as numpy (ties: the smallest key).
  function flatShare(x, s) {
    const bits = new Int32Array(x.buffer, x.byteOffset, x.length), n = s - 1, plane = s * s;
    const keys = new Array(n * n), counts = new Map();
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const p = i * s + j;
        const k = BigInt.asIntN(64, BigInt.asIntN(64, BigInt(bits[p]) * 1000003n + BigInt(bits[plane + p])) * 1000033n + BigInt(bits[2 * plane + p]));
        keys[i * n + j] = k;
        counts.set(k, (counts.get(k) || 0) + 1);
      }
    }
    let bg = null, most = -1;
    for (const [k, c] of counts) if (c > most || (c === most && k < bg)) [bg, most] = [k, c];
    let fg = 0, flat = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (keys[i * n + j] === bg) continue;
        fg++;
        let same = true;
        for (let c = 0; c < 3 && same; c++) {
          const p = c * plane + i * s + j, v = x[p];
          same = v === x[p + s] && v === x[p + 1] && v === x[p + s + 1];
        }
        if (same) flat++;
      }
    }
    return flat / Math.max(1, fg);
  }

  // ---- decoding: decoding.py's beam search, constrained beam search and naming, for one image ----

  // masked log-probabilities, then (decoding.rule_out) the words the image may not say set to NEG
  function maskedLogprobs(scores, rows, V, forbid = null) {
    const out = new Float32Array(rows * V);
    for (let r = 0; r < rows; r++) {
      const row = out.subarray(r * V, (r + 1) * V);
      row.set(scores.subarray(r * V, (r + 1) * V));
      for (const b of BANNED) row[b] = NEG;
      let max = -Infinity, sum = 0;
      for (let v = 0; v < V; v++) max = Math.max(max, row[v]);
      for (let v = 0; v < V; v++) sum += Math.exp(row[v] - max);
      const lse = Math.fround(Math.log(sum));
      for (let v = 0; v < V; v++) row[v] = Math.fround(row[v] - max) - lse; // float32 steps, as numpy's
      if (forbid) for (let v = 0; v < V; v++) if (forbid[v]) row[v] = NEG;
    }
    return out;
  }

  // ---- colours.py: the colour name of each pixel, the colours the image's centre shows ----

  // index into colours.COLOURS, by colours.py's rule (float32 steps): rule is policy.json's colours.rule, ix each
  // colour name's index
  function colourOf(r8, g8, b8, rule, ix) {
    const f = Math.fround, r = f(r8 / 255), g = f(g8 / 255), b = f(b8 / 255);
    const mx = Math.max(r, g, b), mn = Math.min(r, g, b), c = f(mx - mn), s = mx > 0 ? f(c / Math.max(mx, f(1e-6))) : 0;
    const safe = Math.max(c, f(1e-6));
    const floorMod6 = (q) => { const m = q % 6; return m < 0 ? f(m + 6) : m; }; // numpy's float32 %
    let h = mx === r ? floorMod6(f(f(g - b) / safe)) : mx === g ? f(f(f(b - r) / safe) + 2) : f(f(f(r - g) / safe) + 4);
    h = f(h * 60);
    const bounds = rule.hues;
    let hue = ix.red;
    for (let i = 0; i < bounds.length; i++) if (h < bounds[i]) { hue = ix[rule.hue_names[i]]; break; }
    if (hue === ix.yellow && mx < f(rule.dark_yellow)) hue = ix.brown;
    if (hue === ix.pink && mx < f(rule.dark_pink)) hue = ix.purple;
    if ((h >= bounds[5] || h < bounds[0]) && mx >= f(rule.light_red_v) && s < f(rule.light_red_s)) hue = ix.pink;
    const warm = h < rule.warm[0] || h >= rule.warm[1];
    if ((warm && mx < f(rule.dark_warm)) || (h >= bounds[0] && h < rule.warm[0] && s < f(rule.dull_orange_s))) hue = ix.brown;
    let out = s < f(rule.grey_s) || c < f(rule.grey_c) ? (mx >= f(rule.white) ? ix.white : ix.grey) : hue;
    if (mx < f(rule.black)) out = ix.black;
    return out;
  }

  // truth.look's colours: the centre square of the encoder's input, back on 0..255; table: policy.json's colours
  function shownColours(x, spec, table) {
    const s = spec.input_size, a = Math.round(s * (1 - table.centre) / 2), n = s * s;
    const counts = new Array(table.names.length).fill(0), ix = Object.fromEntries(table.names.map((c, i) => [c, i]));
    const px = (ch, i) => Math.min(255, Math.max(0, Math.round(x[ch * n + i] * spec.std[ch] + spec.mean[ch])));
    const bgr = spec.channels === "BGR";
    for (let y = a; y < s - a; y++) for (let xx = a; xx < s - a; xx++) {
      const i = y * s + xx, c0 = px(0, i), c1 = px(1, i), c2 = px(2, i);
      counts[bgr ? colourOf(c2, c1, c0, table.rule, ix) : colourOf(c0, c1, c2, table.rule, ix)]++;
    }
    const total = (s - 2 * a) ** 2;
    return new Set(table.names.filter((_, k) => counts[k] / total >= table.present));
  }

  // truth.Rules.forbid for one image: the colour words of the language (policy.json's languages[tag].colours: id ->
  // the colours the word names) whose colours it does not show
  function forbidden(model, x, tag) {
    const shown = shownColours(x, model.spec, model.policy.colours), forbid = new Uint8Array(model.itos.length);
    for (const [id, cs] of Object.entries(model.policy.languages[tag].colours)) if (!cs.some((c) => shown.has(c))) forbid[Number(id)] = 1;
    return forbid;
  }

  // decoding.no_end_after: no #END# after a word that may not end a caption (policy.json's no_end).
  function noEndAfter(logp, prev, V, noEnd) {
    prev.forEach((p, r) => { if (noEnd[p]) logp[r * V + END] = NEG; });
  }

  // decoding._finish: a caption forced to stop on such a word is cut back to its last word that may end one.
  function finish(words, logprob, noEnd) {
    let w = words.slice();
    while (w.length && noEnd[w[w.length - 1]]) w = w.slice(0, -1);
    return { tokens: w, logprob, confidence: logprob / (w.length + 1) };
  }

  function distinct(caps) {
    const seen = new Set();
    return caps.filter((c) => { const k = c.tokens.join(); return !seen.has(k) && seen.add(k); });
  }

  function onlyEnd(logp, rows, V) {
    for (let r = 0; r < rows; r++) for (let v = 0; v < V; v++) if (v !== END) logp[r * V + v] = NEG;
  }

  // The k largest (value, index) of a flat array, largest first; ties: lower index first.
  function topk(x, k) {
    const best = [];
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (best.length === k && v <= best[k - 1][0]) continue;
      let j = best.length;
      while (j > 0 && best[j - 1][0] < v) j--;
      best.splice(j, 0, [v, i]);
      if (best.length > k) best.pop();
    }
    return best;
  }

  // decoding._walk: candidates ending within the top k ranks finish; the first k that do not end live on.
  function walk(cands, V, k) {
    const ended = [], live = [];
    for (let rank = 0; rank < cands.length; rank++) {
      const [sc, ix] = cands[rank];
      if (sc <= NEG / 2 || live.length === k) break;
      const src = Math.floor(ix / V), w = ix % V;
      if (w === END) { if (rank < k) ended.push([sc, src]); } else live.push([sc, src, w]);
    }
    return { ended, live };
  }

  async function beamSearch(st, k, maxLen, nBest, lengthPenalty = 0) {
    let state = await st.start(k), tok = new Array(k).fill(st.first);
    let score = new Float32Array(k).fill(NEG);
    score[0] = 0;
    let hist = Array.from({ length: k }, () => []);
    const finished = [];
    for (let t = 0; t <= maxLen; t++) {
      const step = await st.step(tok, state);
      const V = step.V, logp = maskedLogprobs(step.logp, k, V, st.forbid);
      if (t === maxLen) onlyEnd(logp, k, V);
      else noEndAfter(logp, tok, V, st.noEnd);
      const total = new Float32Array(k * V);
      for (let r = 0; r < k; r++) for (let v = 0; v < V; v++) total[r * V + v] = score[r] + logp[r * V + v];
      const { ended, live } = walk(topk(total, 2 * k), V, k);
      for (const [sc, s] of ended) finished.push([sc / ((5 + hist[s].length + 1) / 6) ** lengthPenalty, hist[s], sc]);
      const newScore = new Float32Array(k).fill(NEG), src = new Array(k).fill(0), word = new Array(k).fill(PAD);
      live.forEach(([sc, s, w], j) => { newScore[j] = sc; src[j] = s; word[j] = w; });
      if (finished.length >= nBest && noBetter(finished, newScore, lengthPenalty, nBest)) break;
      state = st.select(step.state, src);
      hist = src.map((s, j) => [...hist[s], word[j]]);
      score = newScore;
      tok = word;
    }
    finished.sort((a, b) => b[0] - a[0]);
    return distinct(finished.map(([, words, raw]) => finish(words, raw, st.noEnd))).slice(0, nBest);
  }

  function noBetter(finished, alive, lengthPenalty, nBest) {
    if (lengthPenalty > 0) return false;
    const nth = finished.map((f) => f[0]).sort((a, b) => b - a)[nBest - 1];
    return !(Math.max(...alive) > nth);
  }

  // decoding.constrained_beam_search with one word: bank 0 has not said it (and may not end), bank 1 has.
  async function constrainedBeamSearch(st, must, k, maxLen) {
    let state = await st.start(2 * k), tok = new Array(2 * k).fill(st.first);
    let score = new Float32Array(2 * k).fill(NEG);
    score[0] = 0;
    let hist = Array.from({ length: 2 * k }, () => []);
    let best = null;
    for (let t = 0; t <= maxLen; t++) {
      const step = await st.step(tok, state);
      const V = step.V, logp = maskedLogprobs(step.logp, 2 * k, V, st.forbid);
      if (t === maxLen) onlyEnd(logp, 2 * k, V);
      else noEndAfter(logp, tok, V, st.noEnd);
      const stay = new Float32Array(k * V), move = new Float32Array(2 * k * V);
      for (let r = 0; r < 2 * k; r++) {
        for (let v = 0; v < V; v++) {
          const c = score[r] + logp[r * V + v];
          if (r < k) {
            stay[r * V + v] = v === must || v === END ? NEG : c;
            move[r * V + v] = v === must ? c : NEG;
          } else move[r * V + v] = c;
        }
      }
      const rows = [];
      for (const [bank, c] of [[0, stay], [1, move]]) {
        const { ended, live } = walk(topk(c, 2 * k), V, k);
        for (const [sc, s] of ended) if (best === null || sc > best[0]) best = [sc, hist[s]];
        live.forEach(([sc, s, w], j) => rows.push([bank, j, s, w, sc]));
      }
      if (!rows.length || (best !== null && Math.max(...rows.map((r) => r[4])) <= best[0])) break;
      const newScore = new Float32Array(2 * k).fill(NEG), src = new Array(2 * k).fill(0);
      const newTok = new Array(2 * k).fill(PAD), newHist = Array.from({ length: 2 * k }, () => []);
      for (const [bank, j, s, w, sc] of rows) {
        const r = bank * k + j;
        newScore[r] = sc; src[r] = s; newTok[r] = w; newHist[r] = [...hist[s], w];
      }
      state = st.select(step.state, src);
      [score, tok, hist] = [newScore, newTok, newHist];
    }
    return best === null ? null : finish(best[1], best[0], st.noEnd);
  }

  // decoding.say: the caption `tokens`, scored as decoding scores them (#END# included; no word forbidden).
  async function say(st, tokens) {
    let state = await st.start(1), tok = st.first, logprob = 0;
    for (const t of [...tokens, END]) {
      const step = await st.step([tok], state);
      logprob += maskedLogprobs(step.logp, 1, step.V)[t];
      [state, tok] = [step.state, t];
    }
    return { tokens: tokens.slice(), logprob, confidence: logprob / (tokens.length + 1) };
  }

  // ---- the graphs: a Stepper over init.onnx and decoder.onnx for one image's features ----

  function rows(t, idx) {
    const size = t.dims.slice(1).reduce((a, b) => a * b, 1), out = new t.data.constructor(idx.length * size);
    idx.forEach((r, j) => out.set(t.data.subarray(r * size, (r + 1) * size), j * size));
    return new ort.Tensor(t.type, out, [idx.length, ...t.dims.slice(1)]);
  }

  class Stepper {
    constructor(model, feats, first = START) { this.m = model; this.feats = feats; this.noEnd = model.noEnd; this.first = first; }
    async start(n) {
      const out = await this.m.init.run({ features: rows(this.feats, new Array(n).fill(0)) });
      return Object.fromEntries(this.m.names.map((k) => [k, out[k]]));
    }
    async step(tokens, state) {
      const token = new ort.Tensor("int64", BigInt64Array.from(tokens.map(BigInt)), [tokens.length]);
      const out = await this.m.decoder.run({ token, ...state });
      const next = Object.fromEntries(this.m.names.map((k) => [k, out[`${k}_next`]]));
      return { logp: out.logp.data, V: out.logp.dims[1], state: next };
    }
    select(state, idx) { return Object.fromEntries(Object.entries(state).map(([k, t]) => [k, rows(t, idx)])); }
  }

  // ---- text: Vocab.decode(articles=True) ----

  // articles: policy.json's articles (text.ARTICLE_PATTERNS), matched at the word's start as Python's re.match
  function article(word, articles) {
    const w = word.toLowerCase(), consonant = new RegExp(`^${articles.consonant_sound}`), silent = new RegExp(`^${articles.silent_h}`);
    return ("aeiou".includes(w[0] || "-") && !consonant.test(w)) || silent.test(w) ? "an" : "a";
  }
  function decode(model, tokens) {
    const words = tokens.map((t) => model.itos[t]);
    for (let i = 0; i + 1 < words.length; i++) if ((words[i] === "a" || words[i] === "an") && /^\p{L}/u.test(words[i + 1])) words[i] = article(words[i + 1], model.policy.articles);
    return words.join(" ");
  }

  // ---- the model ----

  async function load(base = new URL(".", document.baseURI).href.replace(/\/$/, "")) {
    const get = async (f) => { const r = await fetch(`${base}/${f}`); if (!r.ok) throw new Error(`${f}: HTTP ${r.status}`); return r; };
    const [manifest, vocab, spec, labels, policy] = await Promise.all(["manifest.json", "vocab.json", "encoder.json", "labels.json", "policy.json"].map(async (f) => (await get(f)).json()));
    ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which a plain static server does not give
    ort.env.wasm.wasmPaths = `${base}/ort/`;
    const session = async (f) => ort.InferenceSession.create(new Uint8Array(await (await get(f)).arrayBuffer()), { executionProviders: ["wasm"] });
    const [encoder, init, decoder] = await Promise.all(["encoder.onnx", "init.onnx", "decoder.onnx"].map(session));
    const people = await captionerPeople.load(session, policy.detectors);
    const noEnd = new Uint8Array(policy.vocab_size);
    for (const i of policy.no_end) noEnd[i] = 1;
    const langs = policy.tagged ? policy.languages : {}; // the languages a caption may be asked in
    return { manifest, policy, itos: vocab.itos, langs, spec, labels, encoder, init, decoder, names: manifest.state, noEnd, people };
  }

  // Features as init.onnx reads them: the encoder's outputs joined as the manifest's 'feature' says.
  async function encode(model, x) {
    const s = model.spec.input_size;
    const out = await model.encoder.run({ image: new ort.Tensor("float32", x, [1, 3, s, s]) });
    const parts = model.manifest.feature.split("+").map((k) => out[k]);
    if (parts.length === 1) return { feats: parts[0], logits: out.logits.data };
    const data = new Float32Array(parts.reduce((a, t) => a + t.data.length, 0));
    let at = 0;
    for (const t of parts) { data.set(t.data, at); at += t.data.length; }
    return { feats: new ort.Tensor("float32", data, [1, data.length]), logits: out.logits.data };
  }

  // Vocab.language, then the language's rules in policy.json: the token its captions start from, the words outside it
  function language(model, lang) {
    const known = Object.keys(model.langs);
    if (!known.length && lang && lang !== "en") throw new Error(`language '${lang}': this model was trained without language tags; it writes in its training captions' language only`);
    const tag = !known.length ? "en" : lang || (known.includes("en") ? "en" : known[0]);
    if (known.length && !known.includes(tag)) throw new Error(`language '${tag}' is unknown to this model; it knows ${known.join(", ")}`);
    const rules = model.policy.languages[tag];
    let outside = null;
    if (rules.allowed) {
      outside = new Uint8Array(model.policy.vocab_size).fill(1);
      for (const i of rules.allowed) outside[i] = 0;
    }
    return { first: rules.first, outside, tag, rules };
  }

  // truth.look's photo test and people: people.py's detectors on the square of a photo (flatShare's verdict); a
  // drawing is 0 people, unless it is exactly grey and NanoDet finds persons at its grey threshold (people.grey_people):
  // then it is a photo of them. people false: no detectors (people null for a photo, as Captioner people=False).
  async function look(model, x, people = true) {
    const photo = flatShare(x, model.spec.input_size) <= model.policy.photo.flat;
    if (!people) return { photo, seen: photo ? null : 0 };
    const img = squarePixels(x, model.spec);
    if (photo) return { photo, seen: await captionerPeople.count(model.people, img, bilinear) };
    const seen = await captionerPeople.grey(model.people, img, bilinear);
    return { photo: seen > 0, seen };
  }

  // Api.caption_tensors for one image, under truth.py's rules: no colour the image does not show; in a photo,
  // "a person" / "people" where people are found and no word for a person where none are (unless an offered
  // class says one); else the copy path's naming of a confident photo (outside English, by the class word's
  // translation, policy.json's rename).
  async function captionTensor(model, x, beam = 3, nBest = 3, lang = null, people = true) {
    const m = model.manifest, { first, outside, tag, rules: words } = language(model, lang);
    const { feats, logits } = await encode(model, x), st = new Stepper(model, feats, first);
    const { photo, seen } = await look(model, x, people); // seen null: not looked for
    const s0 = m.kind === "copy" ? await st.start(1) : null;
    const said = (w) => (words.rename === null ? w : words.rename[String(w)]); // truth.Rules.said (undefined: none)
    st.forbid = forbidden(model, x, tag);
    if (outside) st.forbid.forEach((_, i) => { if (outside[i]) st.forbid[i] = 1; });
    if (photo && seen === 0) { // truth.Rules.forbid: no person where none was found, unless an offered class says one
      const offered = new Set(s0 ? Array.from(s0.copy_w.data, (c) => said(Number(c))) : []);
      for (const w of words.says_person) if (!offered.has(w)) st.forbid[w] = 1;
    }
    let caps = await beamSearch(st, beam, m.max_len, nBest), c = null;
    const exact = seen > 1 ? words.people : words.person;
    if (photo && seen > 0 && exact.length) c = await say(st, exact); // truth.Rules.musts: what the photo must say
    else if (s0 && model.policy.name_threshold > 0 && photo) {
      const w = Number(s0.copy_w.data[0]);
      let p = 0; // truth.Rules.confident: the word's probability, summed over the offered classes that say it
      s0.copy_w.data.forEach((o, j) => { if (Number(o) === w) p = Math.fround(p + s0.copy_p.data[j]); });
      if (p >= model.policy.name_threshold && w !== PAD && said(w) !== undefined) c = await constrainedBeamSearch(st, said(w), beam, m.max_len);
    }
    if (c) caps = [c, ...caps.filter((o) => o.tokens.join() !== c.tokens.join()).slice(0, Math.max(0, caps.length - 1))];
    const max = Math.max(...logits), e = Array.from(logits, (v) => Math.exp(v - max)), z = e.reduce((a, b) => a + b, 0);
    const tags = e.map((v, i) => [v / z, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 5).map(([p, i]) => ({ label: model.labels[i], probability: p }));
    const text = (o) => decode(model, o.tokens);
    return { caption: text(caps[0]), confidence: caps[0].confidence, alternatives: caps.slice(1).map((o) => ({ caption: text(o), confidence: o.confidence })), tags, photo, people: seen };
  }

  async function pixels(blob) {
    const bmp = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none", imageOrientation: "from-image" });
    const canvas = new OffscreenCanvas(bmp.width, bmp.height), ctx = canvas.getContext("2d");
    ctx.drawImage(bmp, 0, 0);
    return { data: ctx.getImageData(0, 0, bmp.width, bmp.height).data, width: bmp.width, height: bmp.height };
  }

  // people false: no people detectors (as Captioner people=False, `caption --no-people`): faster, no person rule
  async function captionBlob(model, blob, beam = 3, nBest = 3, lang = null, people = true) {
    language(model, lang); // an unknown language fails before the image is read
    const px = await pixels(blob);
    return captionTensor(model, preprocess(px.data, px.width, px.height, model.spec), beam, nBest, lang, people);
  }

  window.captioner = { load, language, preprocess, pixels, flatShare, shownColours, forbidden, encode, Stepper, beamSearch, constrainedBeamSearch, say, squarePixels, bilinear, look, captionTensor, captionBlob, decode };
})();
