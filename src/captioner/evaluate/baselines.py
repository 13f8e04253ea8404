"""Baselines scored with the same code as the model: nearest-neighbour consensus, most frequent caption,
'a <top-1 ImageNet class>', and a consensus reranker over beam n-best plus neighbours' captions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from captioner.features.imagenet import imagenet_classes, with_article
from captioner.text.metrics import CiderD
from captioner.text.vocab import tokenize


def nearest_sims(train: np.ndarray, query: np.ndarray, k: int = 5, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Indices (Q, k) of the k training rows most cosine-similar to each query row, and those similarities."""
    t = train / (np.linalg.norm(train, axis=1, keepdims=True) + 1e-8)
    q = query / (np.linalg.norm(query, axis=1, keepdims=True) + 1e-8)
    idx, sims = [], []
    for s in range(0, len(q), block):
        sim = q[s : s + block] @ t.T  # (b, N)
        top = np.argpartition(-sim, min(k, sim.shape[1] - 1), axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sim, top, 1), axis=1, kind="stable")
        idx.append(np.take_along_axis(top, order, 1))
        sims.append(np.take_along_axis(sim, idx[-1], 1))
    if not idx:
        return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
    return np.concatenate(idx), np.concatenate(sims)


def nearest(train: np.ndarray, query: np.ndarray, k: int = 5, block: int = 1024) -> np.ndarray:
    """Indices (Q, k) of the k training rows most cosine-similar to each query row."""
    return nearest_sims(train, query, k, block)[0]


def consensus_scores(
    candidates: Sequence[Sequence[str]], judges: Sequence[Sequence[str]], cider: CiderD
) -> list[list[float]]:
    """CIDEr-D of each candidate against the judges' captions, leaving out judges identical to it."""
    out = []
    for cands, refs in zip(candidates, judges, strict=True):
        norm = [" ".join(tokenize(r)) for r in refs]
        out.append(
            [cider.score(c, [r for r, t in zip(refs, norm, strict=True) if t != " ".join(tokenize(c))]) for c in cands]
        )
    return out


def similarity_weights(
    train_caps: Sequence[Sequence[str]], nn: np.ndarray, sims: np.ndarray, tau: float
) -> list[list[float]]:
    """Per query, a weight for each caption of neighbour_captions(): softmax(similarity / tau) over the
    neighbours, shared equally among a neighbour's captions. A small tau trusts a near twin alone."""
    out = []
    for row, sim in zip(nn, sims, strict=True):
        w = np.exp((sim - sim.max()) / tau)
        w = w / w.sum()
        out.append([float(wj) / len(train_caps[j]) for j, wj in zip(row, w, strict=True) for _ in train_caps[j]])
    return out


def weighted_scores(
    candidates: Sequence[Sequence[str]],
    judges: Sequence[Sequence[str]],
    weights: Sequence[Sequence[float]],
    cider: CiderD,
) -> list[list[float]]:
    """Per query, each candidate's similarity-weighted mean CIDEr-D against the neighbours' captions (a
    candidate taken from a neighbour is judged by that neighbour too: a near twin vouches for its caption)."""
    return [
        [sum(w * cider.score(c, [r]) for r, w in zip(refs, ws, strict=True)) for c in cands]
        for cands, refs, ws in zip(candidates, judges, weights, strict=True)
    ]


def pick(candidates: Sequence[Sequence[str]], judges: Sequence[Sequence[str]], cider: CiderD) -> list[str]:
    """The candidate with the highest consensus score, per query."""
    scores = consensus_scores(candidates, judges, cider)
    return [c[int(np.argmax(s))] if c else "" for c, s in zip(candidates, scores, strict=True)]


def neighbour_captions(train_caps: Sequence[Sequence[str]], nn: np.ndarray) -> list[list[str]]:
    """All captions of each query's neighbours."""
    return [[c for i in row for c in train_caps[i]] for row in nn]


def most_frequent(train_caps: Sequence[Sequence[str]]) -> str:
    """The most common training caption (compared on tokens)."""
    counts = Counter(" ".join(tokenize(c)) for caps in train_caps for c in caps)
    return counts.most_common(1)[0][0]


def class_captions(logits: np.ndarray) -> list[str]:
    """'a/an <first lemma of the top-1 ImageNet class>' for each row of logits (N, 1000)."""
    names = imagenet_classes()
    return [with_article(names[int(i)].lemmas[0]) for i in logits.argmax(1)]
