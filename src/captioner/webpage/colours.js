// sights/colours.py in the page: each pixel's colour name by policy.json's colour rule, the colours a centre shows.
"use strict";

(() => {
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

  // sights.look's colours: the centre square of the encoder's input, back on 0..255; table: policy.json's colours
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

  window.captionerColours = { colourOf, shownColours };
})();
