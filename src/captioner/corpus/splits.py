"""Leak-free splits: near-duplicates, identical pixels and one concept's images (an emoji in every style) go to
one split together."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from captioner.data.manifest import Item, split_by_hash

NEAR_DUP_COSINE = 0.95


class _Groups:
    """Union-find over item indices: near-duplicates end up in one group, hence one split."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        self.parent[self.find(i)] = self.find(j)


def near_duplicate_pairs(feats: np.ndarray, threshold: float = NEAR_DUP_COSINE) -> list[tuple[int, int]]:
    """Index pairs (i < j) whose feature cosine similarity exceeds threshold, computed in blocks."""
    x = feats.astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-8
    pairs = []
    for s in range(0, len(x), 1024):
        sim = x[s : s + 1024] @ x.T  # (b, N)
        ii, jj = np.nonzero(sim > threshold)
        pairs += [(s + i, j) for i, j in zip(ii.tolist(), jj.tolist(), strict=True) if s + i < j]
    return pairs


def assign_splits(
    items: list[Item], pairs: list[tuple[int, int]], ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> tuple[list[Item], list[int]]:
    """Split by a hash of each near-duplicate group's first key, so a group never straddles splits.

    Returns the items with their splits and each item's group id."""
    groups = _Groups(len(items))
    for i, j in pairs:
        groups.union(i, j)
    first: dict[int, str] = {}
    for i, it in enumerate(items):
        root = groups.find(i)
        first[root] = min(first.get(root, it.image), it.image)
    ids = [groups.find(i) for i in range(len(items))]
    return [replace(it, split=split_by_hash(first[ids[i]], ratios)) for i, it in enumerate(items)], ids


def split_pairs(items: list[Item], pixel_hash: list[str], feats: np.ndarray) -> list[tuple[int, int]]:
    """Pairs that must share a split: near-duplicate features, identical pixels, one concept's images."""
    pairs = near_duplicate_pairs(feats)
    first: dict[str, int] = {}
    for i, key in [
        *enumerate(pixel_hash),
        *((i, "group:" + it.extra["group"]) for i, it in enumerate(items) if it.extra.get("group")),
    ]:
        if first.setdefault(key, i) != i:
            pairs.append((first[key], i))
    return pairs
