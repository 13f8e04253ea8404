// decode/search.py and decode/constrained.py in the page: masked log-probabilities, beam search, constrained beam
// search and say, for one image, over a Stepper (onnx_runtime.js).
"use strict";

(() => {
  const { PAD, UNK, START, END, NEG, BANNED } = window.captionerVocab;

  // masked log-probabilities, then (search.rule_out) the words the image may not say set to NEG
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

  // search.no_end_after: no #END# after a word that may not end a caption (policy.json's no_end).
  function noEndAfter(logp, prev, V, noEnd) {
    prev.forEach((p, r) => { if (noEnd[p]) logp[r * V + END] = NEG; });
  }

  // search.no_repeat: no word said twice in a row but those that may follow themselves (policy.json's repeatable)
  function noRepeat(logp, prev, V, repeat) {
    prev.forEach((p, r) => { if (!repeat[p]) logp[r * V + p] = NEG; });
  }

  // search._finish: a caption forced to stop on such a word is cut back to its last word that may end one.
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

  // search._walk: candidates ending within the top k ranks finish; the first k that do not end live on.
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
      else { noEndAfter(logp, tok, V, st.noEnd); noRepeat(logp, tok, V, st.repeat); }
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

  // constrained.constrained_searches for one search: bank 0 has not said one of the ids `must` (and may not end), bank 1 has.
  async function constrainedBeamSearch(st, must, k, maxLen) {
    let isMust = null; // (V,) 1 at the ids `must`, once the first step tells V
    let state = await st.start(2 * k), tok = new Array(2 * k).fill(st.first);
    let score = new Float32Array(2 * k).fill(NEG);
    score[0] = 0;
    let hist = Array.from({ length: 2 * k }, () => []);
    let best = null;
    for (let t = 0; t <= maxLen; t++) {
      const step = await st.step(tok, state);
      const V = step.V, logp = maskedLogprobs(step.logp, 2 * k, V, st.forbid);
      if (t === maxLen) onlyEnd(logp, 2 * k, V);
      else { noEndAfter(logp, tok, V, st.noEnd); noRepeat(logp, tok, V, st.repeat); }
      if (isMust === null) { isMust = new Uint8Array(V); for (const w of must) isMust[w] = 1; }
      const stay = new Float32Array(k * V), move = new Float32Array(2 * k * V);
      for (let r = 0; r < 2 * k; r++) {
        for (let v = 0; v < V; v++) {
          const c = score[r] + logp[r * V + v];
          if (r < k) {
            stay[r * V + v] = isMust[v] || v === END ? NEG : c;
            move[r * V + v] = isMust[v] ? c : NEG;
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

  // constrained.say_all for one caption: the caption `tokens`, scored as decoding scores them (#END# included; no
  // word forbidden).
  async function say(st, tokens) {
    let state = await st.start(1), tok = st.first, logprob = 0;
    for (const t of [...tokens, END]) {
      const step = await st.step([tok], state);
      logprob += maskedLogprobs(step.logp, 1, step.V)[t];
      [state, tok] = [step.state, t];
    }
    return { tokens: tokens.slice(), logprob, confidence: logprob / (tokens.length + 1) };
  }

  window.captionerSearch = { maskedLogprobs, beamSearch, constrainedBeamSearch, say, distinct };
})();
