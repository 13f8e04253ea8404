"""Decoding that must say something: constrained beam search for one of some words, and given captions scored,
each batched over all the images that need it (so every decoder step runs once for all of them)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from captioner.decode.search import (
    NEG,
    Caption,
    Stepper,
    finish,
    masked_logprobs,
    no_end_after,
    no_repeat,
    only_end,
    rule_out,
    topk,
    walk,
)
from captioner.text.vocab import END_IX, PAD_IX


def constrained_beam_search(
    st: Stepper,
    image: int,
    must: set[int],
    beam: int = 3,
    max_len: int = 20,
    block_unk: bool = True,
) -> Caption | None:
    """The most probable caption of one image of the batch that contains one of the words `must`
    (constrained_searches of one image)."""
    return constrained_searches(st, [(image, must)], beam, max_len, block_unk)[0]


def constrained_searches(
    st: Stepper,
    wants: list[tuple[int, set[int]]],
    beam: int = 3,
    max_len: int = 20,
    block_unk: bool = True,
) -> list[Caption | None]:
    """Per (image, words) of `wants`, the most probable caption of that image of the batch that contains one of
    the words; all of them searched together, so each decoder step runs once for every search.

    Constrained beam search (Anderson et al. 2017) with one constraint: bank 0 holds hypotheses that have
    not said a `must` word yet and may not end, bank 1 those that have; each keeps `beam` hypotheses.
    None where no hypothesis in bank 1 ends within max_len words."""
    if not wants:
        return []
    k, g = max(1, beam), len(wants)
    images = np.array([i for i, _ in wants], dtype=np.int64)
    state = st.start(np.repeat(images, 2 * k))
    tok = np.full(g * 2 * k, st.first, dtype=np.int64)
    score = np.full((g, 2 * k), NEG, dtype=np.float32)
    score[:, 0] = 0.0  # per search, rows 0..k-1: bank 0; rows k..2k-1: bank 1
    hist: list[list[list[int]]] = [[[] for _ in range(2 * k)] for _ in range(g)]
    best: list[Ended] = [None] * g
    alive = list(range(g))  # the searches still running, in the order of the state's row groups
    for t in range(max_len + 1):
        if not alive:
            break
        scores, state = st.step(tok, state)
        rows = np.repeat(images[alive], 2 * k)
        logp = rule_out(masked_logprobs(scores, block_unk), st, rows)  # (A*2K, V)
        logp = only_end(logp) if t == max_len else no_repeat(no_end_after(logp, tok, st.no_end), tok, st.repeat)
        keep, src_rows, toks = [], [], []
        for a, s in enumerate(alive):
            best[s], nxt = _banks(logp[a * 2 * k : (a + 1) * 2 * k], score[s], hist[s], wants[s][1], k, best[s])
            if nxt is None:
                continue
            keep.append(s)
            score[s], src, tk, hist[s] = nxt
            src_rows.append(src + a * 2 * k)
            toks.append(tk)
        alive = keep
        if alive:
            state, tok = st.select(state, np.concatenate(src_rows)), np.concatenate(toks)
    return [None if b is None else finish(b[1] + [END_IX], b[0], [], st.no_end) for b in best]


Ended = tuple[float, list[int]] | None  # a search's best ended caption: (log-probability, tokens)


def _banks(
    logp: np.ndarray, score: np.ndarray, hist: list[list[int]], must: set[int], k: int, best: Ended
) -> tuple[Ended, tuple[np.ndarray, np.ndarray, np.ndarray, list[list[int]]] | None]:
    """One step of a search's two banks: logp (2K, V), score (2K,), best: its best ended caption so far. Returns
    the best ended caption now and the next (score, source row, token, history), None when nothing can beat it."""
    is_must = np.zeros(logp.shape[-1], dtype=bool)
    is_must[sorted(must)] = True
    cand = score[:, None] + logp  # (2K, V)
    stay = np.where(is_must, NEG, cand[:k])  # bank 0 -> bank 0: no must word...
    stay[:, END_IX] = NEG  # ...and no ending
    move = np.concatenate([np.where(is_must, cand[:k], NEG), cand[k:]])  # -> bank 1: (2K, V), row = source
    rows, words, scores_ = [], [], []
    for bank, c in ((0, stay), (1, move)):
        top, idx = topk(c.reshape(1, -1), 2 * k)
        ended, live = walk(top[0].tolist(), idx[0].tolist(), c.shape[1], k)  # `move` has one row per source
        for sc, src in ended:  # only bank 1 can end
            if best is None or sc > best[0]:
                best = (sc, hist[src])
        for j, (sc, src, w) in enumerate(live):
            rows.append((bank, j, src))
            words.append(w)
            scores_.append(sc)
    if not rows or (best is not None and max(scores_) <= best[0]):  # log-probs only fall: nothing beats it
        return best, None
    new_score = np.full(2 * k, NEG, dtype=np.float32)
    src_ix = np.zeros(2 * k, dtype=np.int64)
    new_tok = np.full(2 * k, PAD_IX, dtype=np.int64)
    new_hist: list[list[int]] = [[] for _ in range(2 * k)]
    for (bank, j, src), w, sc in zip(rows, words, scores_, strict=True):
        r = bank * k + j
        new_score[r], src_ix[r], new_tok[r], new_hist[r] = sc, src, w, hist[src] + [w]
    return best, (new_score, src_ix, new_tok, new_hist)


@dataclass(frozen=True)
class Must:
    """What a caption must say: one of `words` (constrained_beam_search), or exactly the tokens `exact`; a caption
    that says it replaces the first caption only where its confidence (log-probability per token) is at most
    `within` below the first caption's."""

    words: frozenset[int] = frozenset()
    exact: tuple[int, ...] = ()
    within: float = float("inf")


def say_all(st: Stepper, said: list[tuple[int, list[int]]], block_unk: bool = True) -> list[Caption]:
    """Per (image, tokens) of `said`, that caption for that image of the batch, scored as decoding scores
    (#END# included); all of them stepped together."""
    if not said:
        return []
    seqs = [[*tokens, END_IX] for _, tokens in said]
    n = max(map(len, seqs))
    state, tok = st.start(np.array([i for i, _ in said], dtype=np.int64)), np.full(len(said), st.first)
    logprob = np.zeros(len(said), dtype=np.float64)
    for t in range(n):
        nxt = np.array([q[t] if t < len(q) else PAD_IX for q in seqs], dtype=np.int64)
        scores, state = st.step(tok.astype(np.int64), state)
        lp = masked_logprobs(scores, block_unk)
        on = np.array([t < len(q) for q in seqs])
        logprob[on] += lp[np.flatnonzero(on), nxt[on]]
        tok = nxt
    return [Caption(list(tokens), float(lp_), float(lp_) / (len(tokens) + 1))
            for (_, tokens), lp_ in zip(said, logprob, strict=True)]  # fmt: skip


def require(st: Stepper, nbest: list[list[Caption]], musts: list[Must | None], beam: int, max_len: int) -> list:
    """Where musts[i] is given, image i's first caption becomes the one it says exactly, or the best one that
    says one of its words (constrained_searches), the others following; where the first caption already says one
    of them, no such caption ends within max_len, or its confidence is more than the must's `within` below the
    first caption's, nbest[i] stays. All images' searches run together."""
    exact = [i for i, m in enumerate(musts) if m is not None and m.exact]
    words = [i for i, m in enumerate(musts) if m is not None and not m.exact and m.words.isdisjoint(nbest[i][0].tokens)]
    found = dict(zip(exact, say_all(st, [(i, list(musts[i].exact)) for i in exact]), strict=True))  # type: ignore[union-attr]
    wants = [(i, set(musts[i].words)) for i in words]  # type: ignore[union-attr]
    found |= dict(zip(words, constrained_searches(st, wants, beam, max_len), strict=True))
    out = list(nbest)
    for i, c in found.items():
        if c is not None and c.confidence >= nbest[i][0].confidence - musts[i].within:  # type: ignore[union-attr]
            out[i] = [c] + [x for x in nbest[i] if x.tokens != c.tokens][: max(0, len(nbest[i]) - 1)]
    return out
