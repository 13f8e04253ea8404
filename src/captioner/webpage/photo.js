// sights/photo.py in the page: the photo test, policy.json's photo settings (the flat-patch threshold and the
// probe on the encoder's pooled vector).
"use strict";

(() => {
  // photo.flat_share for one image (3, S, S): the share of non-background pixels whose right, lower and
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

  // photo.photo_scores for one image: the probe's logit (above 0: a photo) over the first of its width of the
  // pooled vector's dimensions.
  function photoScore(pooled, probe) {
    let s = probe.bias;
    for (let i = 0; i < probe.weights.length; i++) s += probe.weights[i] * pooled[i];
    return s;
  }

  // photo.photo_like for one image: the probe says photo, or few flat patches and the probe's logit above -margin
  // (the flat test alone where the policy has no probe); the flat share only where the probe is unsure.
  function photoLike(x, s, pooled, settings) {
    if (settings.probe === null) return flatShare(x, s) <= settings.flat;
    const score = photoScore(pooled, settings.probe);
    return score > 0 || (score > -settings.probe.margin && flatShare(x, s) <= settings.flat);
  }

  window.captionerPhoto = { flatShare, photoScore, photoLike };
})();
