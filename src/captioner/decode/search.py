"""Decoding written once: greedy, sampling and batched beam search over a Stepper (constrained search and
scoring given captions: decode/constrained.py).

numpy only, so the same code runs a PyTorch decoder (models.stepper.TorchStepper) and the exported ONNX graphs
(runtime.onnx_runtime.OnnxStepper), with no PyTorch import on the second path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from captioner.text.vocab import END_IX, PAD_IX, START_IX, UNK_IX

NEG = -1e9
State = Any  # whatever the stepper keeps per row; decoding only passes it back and reorders it with select()


class Stepper(Protocol):
    """A decoder over one batch of images, seen as numpy arrays.

    batch: how many images; attends: the state holds where each step looked (alpha); no_end: (V,) bool, the
    tokens after which #END# may not come (Vocab.no_end_mask), or None for no such rule; forbid: (B, V) bool, the
    words image b may not say (rules.Rules.forbid: colours its pixels do not show; words of other languages), or
    None; first: the token every caption starts from (#START#, or a language's token: Vocab.first); repeat: (V,)
    bool, the words that may follow themselves (rules.Rules.repeatable), or None: none may."""

    batch: int
    attends: bool
    no_end: np.ndarray | None
    forbid: np.ndarray | None
    first: int
    repeat: np.ndarray | None

    def start(self, rows: np.ndarray) -> State:
        """The state before #START# for the images rows (N,) (an image may repeat, as beams do)."""
        ...

    def step(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """tokens (N,) -> next-word scores (N, V), logits or log-probabilities alike, and the next state."""
        ...

    def select(self, state: State, idx: np.ndarray) -> State:
        """The state's rows idx (N',), in that order."""
        ...

    def alpha(self, state: State) -> np.ndarray:
        """Only where attends: the attention of the last step over the grid, (N, cells)."""
        ...

    def offered(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Copy decoders: the probabilities and word ids (B, k) of each image's top classes; others None."""
        ...


@dataclass
class Caption:
    """One decoded caption: word indices (no #START#/#END#), its confidence and attention maps."""

    tokens: list[int]
    logprob: float  # sum over the words and #END#
    confidence: float  # length-normalised log-probability: logprob / (words + 1)
    alphas: list[list[float]] = field(default_factory=list)  # per word, attention over the grid


def banned(block_unk: bool) -> list[int]:
    """Token ids decoding never emits: #PAD#, #START# and (block_unk) #UNK#."""
    return [PAD_IX, START_IX, UNK_IX] if block_unk else [PAD_IX, START_IX]


def masked_logprobs(scores: np.ndarray, block_unk: bool) -> np.ndarray:
    """Log-probabilities (N, V) float32 with the banned tokens ruled out."""
    s = scores.astype(np.float32)  # a copy
    s[:, banned(block_unk)] = NEG
    s -= s.max(-1, keepdims=True)
    return s - np.log(np.exp(s).sum(-1, keepdims=True))


def only_end(logp: np.ndarray) -> np.ndarray:
    """Log-probabilities where only #END# may follow, keeping its own score (the last allowed step)."""
    forced = np.full_like(logp, NEG)
    forced[..., END_IX] = logp[..., END_IX]
    return forced


def no_end_after(logp: np.ndarray, prev: np.ndarray, no_end: np.ndarray | None) -> np.ndarray:
    """logp (N, V) with #END# ruled out (in place) where the previous token prev (N,) may not end a caption."""
    if no_end is not None:
        logp[no_end[prev], END_IX] = NEG
    return logp


def no_repeat(logp: np.ndarray, prev: np.ndarray, repeat: np.ndarray | None) -> np.ndarray:
    """logp (N, V) with each row's previous token prev (N,) ruled out (in place) unless repeat (V,) lets it follow
    itself: no word is said twice in a row ("a fish fish") but those the training captions repeat."""
    rows = np.arange(len(prev)) if repeat is None else np.flatnonzero(~repeat[prev])
    logp[rows, prev[rows]] = NEG
    return logp


def rule_out(logp: np.ndarray, st: Stepper, rows: np.ndarray) -> np.ndarray:
    """logp (N, V) with the words the stepper forbids for the images rows (N,) ruled out (in place)."""
    if st.forbid is not None:
        logp[st.forbid[rows]] = NEG
    return logp


def finish(tokens: list[int], logprob: float, alphas: list[list[float]], no_end: np.ndarray | None) -> Caption:
    """A Caption from tokens up to #END#; one that max_len forced to stop on a word that may not end a caption
    is cut back to its last word that may (its log-probability stays that of the decoded sequence)."""
    words = tokens[: tokens.index(END_IX)] if END_IX in tokens else tokens
    while no_end is not None and words and no_end[words[-1]]:
        words = words[:-1]
    n = len(words) + 1
    return Caption(words, logprob, logprob / n, alphas[: len(words)])


def rollout(
    st: Stepper, max_len: int, pick: Callable[[np.ndarray], np.ndarray], block_unk: bool = True
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The one left-to-right decoding loop: each step's word is pick(logp (B, V)) -> (B,), from the masked
    log-probabilities; at step max_len only #END# may follow (forced).

    Returns tokens (B, T) with #PAD# after #END#, the log-probability of each step's token (B, T), 0 after
    #END#, and per step the attention (B, cells) for attention models."""
    b = st.batch
    state = st.start(np.arange(b))
    tok = np.full(b, st.first, dtype=np.int64)
    done = np.zeros(b, dtype=bool)
    toks, lps, alphas = [], [], []
    for step in range(max_len + 1):
        scores, state = st.step(tok, state)
        logp = rule_out(masked_logprobs(scores, block_unk), st, np.arange(b))  # (B, V)
        if step == max_len:  # out of room
            logp = only_end(logp)
        else:
            logp = no_repeat(no_end_after(logp, tok, st.no_end), tok, st.repeat)
        nxt = pick(logp).astype(np.int64)  # (B,)
        lp = logp[np.arange(b), nxt]  # (B,)
        lps.append(np.where(done, 0.0, lp))
        nxt = np.where(done, PAD_IX, nxt)
        toks.append(nxt)
        if st.attends:
            alphas.append(st.alpha(state))
        done |= nxt == END_IX
        tok = nxt
        if done.all():
            break
    return np.stack(toks, 1), np.stack(lps, 1), alphas


def sample(
    st: Stepper,
    max_len: int = 20,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
    block_unk: bool = True,
) -> list[Caption]:
    """Greedy (temperature 0) or sampled decoding of the stepper's batch -> one caption per image.

    Each image draws from its own generator seeded with `seed`, so an image gets the same sampled caption
    alone or in any batch."""
    sampled = temperature > 0
    gens = [np.random.default_rng(seed) for _ in range(st.batch)] if sampled else []

    def pick(logp: np.ndarray) -> np.ndarray:
        if not sampled:
            return logp.argmax(-1)
        probs = softmax(_filter(logp / temperature, top_k, top_p))  # (B, V)
        return np.array([g.choice(len(p), p=p) for p, g in zip(probs, gens, strict=True)])

    toks, lps, alphas = rollout(st, max_len, pick, block_unk)
    return [
        finish([int(t) for t in row if t != PAD_IX], float(lp), [a[i].tolist() for a in alphas], st.no_end)
        for i, (row, lp) in enumerate(zip(toks, lps.sum(1), strict=True))
    ]


def greedy(st: Stepper, max_len: int = 20, block_unk: bool = True) -> list[Caption]:
    """The most likely word at every step."""
    return sample(st, max_len, temperature=0.0, block_unk=block_unk)


def softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, rows summing to 1 (as a generator's choice() needs)."""
    e = np.exp(x.astype(np.float64) - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _filter(logits: np.ndarray, top_k: int, top_p: float) -> np.ndarray:
    """Keep the top-k words and the smallest set whose probability reaches top_p."""
    if top_k > 0:
        kth = -np.sort(-logits, -1)[:, min(top_k, logits.shape[-1]) - 1 : min(top_k, logits.shape[-1])]
        logits = np.where(logits < kth, NEG, logits)
    if top_p < 1.0:
        idx = np.argsort(-logits, -1, kind="stable")
        srt = np.take_along_axis(logits, idx, -1)
        p = softmax(srt)
        drop_sorted = p.cumsum(-1) - p >= top_p  # words after the nucleus is full
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, idx, drop_sorted, -1)
        logits = np.where(drop, NEG, logits)
    return logits


def topk(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k largest values and their indices, largest first (ties: lower index first)."""
    k = min(k, x.shape[-1])
    idx = np.argpartition(-x, k - 1, -1)[..., :k]
    val = np.take_along_axis(x, idx, -1)
    order = np.lexsort((idx, -val), -1)
    return np.take_along_axis(val, order, -1), np.take_along_axis(idx, order, -1)


def beam_search(
    st: Stepper,
    beam: int = 3,
    max_len: int = 20,
    length_penalty: float = 0.0,
    n_best: int = 1,
    block_unk: bool = True,
) -> list[list[Caption]]:
    """Batched beam search; returns the n_best captions per image, best first.

    Hypotheses are ranked by logprob / ((5 + n) / 6) ** length_penalty (GNMT), n counting #END#.
    Beams that never emit #END# stop at max_len words.
    """
    b, k = st.batch, beam
    state = st.start(np.repeat(np.arange(b), k))
    tok = np.full(b * k, st.first, dtype=np.int64)
    score = np.full((b, k), NEG, dtype=np.float32)
    score[:, 0] = 0.0  # all beams start identical: keep one alive
    hist = np.zeros((b, k, 0), dtype=np.int64)
    alph: list[np.ndarray] = []
    finished: list[list[tuple[float, list[int], float, list]]] = [[] for _ in range(b)]
    for t in range(max_len + 1):
        scores, state = st.step(tok, state)
        logp = rule_out(masked_logprobs(scores, block_unk), st, np.repeat(np.arange(b), k))
        logp = only_end(logp) if t == max_len else no_repeat(no_end_after(logp, tok, st.no_end), tok, st.repeat)
        logp = logp.reshape(b, k, -1)  # (B, K, V)
        top, idx = topk((score[..., None] + logp).reshape(b, -1), 2 * k)  # (B, 2K): room for beams that end now
        new_score = np.full((b, k), NEG, dtype=np.float32)
        new_src = np.zeros((b, k), dtype=np.int64)
        new_word = np.full((b, k), PAD_IX, dtype=np.int64)
        for i in range(b):
            ended, live = walk(top[i].tolist(), idx[i].tolist(), logp.shape[-1], k)
            for sc, s in ended:
                words = hist[i, s].tolist()
                lp = ((5 + len(words) + 1) / 6) ** length_penalty
                att = [a[i * k + s] for a in alph]
                finished[i].append((sc / lp, words, sc, att))
            for j, (sc, s, w) in enumerate(live):
                new_score[i, j], new_src[i, j], new_word[i, j] = sc, s, w
        if all(len(f) >= n_best for f in finished) and _no_better(finished, new_score, length_penalty, n_best):
            break
        flat = (new_src + np.arange(b)[:, None] * k).reshape(-1)
        state = st.select(state, flat)
        if st.attends:
            alph = [a[flat] for a in alph] + [st.alpha(state)]
        hist = np.concatenate([np.take_along_axis(hist, new_src[..., None], 1), new_word[..., None]], 2)
        score, tok = new_score, new_word.reshape(-1)
    out = []
    for fin in finished:
        fin.sort(key=lambda f: -f[0])
        out.append(
            distinct([finish(w + [END_IX], raw, [a.tolist() for a in att], st.no_end) for _, w, raw, att in fin])[
                :n_best
            ]
        )
    return out


def distinct(caps: list[Caption]) -> list[Caption]:
    """The captions in order, each token sequence once (cutting back can make two hypotheses the same)."""
    seen: set[tuple[int, ...]] = set()
    return [c for c in caps if tuple(c.tokens) not in seen and not seen.add(tuple(c.tokens))]  # type: ignore[func-returns-value]


def walk(top: list[float], idx: list[int], vocab: int, k: int) -> tuple[list, list]:
    """One beam's candidates, best first, as (score, flat index over source x word): those that end (#END#)
    within the top k ranks finish, as in fairseq; the first k that do not end live on.
    Returns (ended [(score, source)], live [(score, source, word)])."""
    ended, live = [], []
    for rank, (sc, ix) in enumerate(zip(top, idx, strict=True)):
        if sc <= NEG / 2 or len(live) == k:
            break
        src, w = divmod(ix, vocab)
        if w == END_IX:
            if rank < k:
                ended.append((sc, src))
        else:
            live.append((sc, src, w))
    return ended, live


def _no_better(finished: list, alive: np.ndarray, length_penalty: float, n_best: int) -> bool:
    """True when no live beam can still beat each image's n_best-th finished hypothesis."""
    if length_penalty > 0:
        return False  # a longer hypothesis may still win under a length bonus; run to max_len
    for i, fin in enumerate(finished):
        nth = sorted((f[0] for f in fin), reverse=True)[n_best - 1]
        if float(alive[i].max()) > nth:  # log-probs only fall, so live scores are upper bounds
            return False
    return True
