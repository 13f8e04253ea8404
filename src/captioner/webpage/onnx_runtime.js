// runtime/onnx_runtime.py in the page: a Stepper over init.onnx and decoder.onnx, and the encoder's features.
"use strict";

(() => {
  const { START } = window.captionerVocab;

  function rows(t, idx) {
    const size = t.dims.slice(1).reduce((a, b) => a * b, 1), out = new t.data.constructor(idx.length * size);
    idx.forEach((r, j) => out.set(t.data.subarray(r * size, (r + 1) * size), j * size));
    return new ort.Tensor(t.type, out, [idx.length, ...t.dims.slice(1)]);
  }

  class Stepper {
    constructor(model, feats, first = START) { this.m = model; this.feats = feats; this.noEnd = model.noEnd; this.first = first; this.repeat = model.repeat; }
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

  // Features as init.onnx reads them: the encoder's outputs joined as the manifest's 'feature' says.
  async function encode(model, x) {
    const s = model.spec.input_size;
    const out = await model.encoder.run({ image: new ort.Tensor("float32", x, [1, 3, s, s]) });
    const parts = model.manifest.feature.split("+").map((k) => out[k]);
    if (parts.length === 1) return { feats: parts[0], logits: out.logits.data, pooled: out.pooled.data };
    const data = new Float32Array(parts.reduce((a, t) => a + t.data.length, 0));
    let at = 0;
    for (const t of parts) { data.set(t.data, at); at += t.data.length; }
    return { feats: new ort.Tensor("float32", data, [1, data.length]), logits: out.logits.data, pooled: out.pooled.data };
  }

  window.captionerOnnx = { Stepper, encode };
})();
