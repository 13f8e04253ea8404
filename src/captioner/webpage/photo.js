// sights/photo.py in the page: the photo test's flat share (the threshold is policy.json's photo.flat).
"use strict";

(() => {
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

  window.captionerPhoto = { flatShare };
})();
