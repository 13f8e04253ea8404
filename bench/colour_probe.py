"""How much colour do the cached features keep? A linear probe on single-object scenes.

    python bench/colour_probe.py --scenes runs/scenes [--features runs/scenes/features-hc]

Fits a softmax regression from the pooled feature vector (and, if extracted, the max-pooled grid) of each
one-object scene ("a green square") to its colour on the training split, and prints the accuracy on the
val and test splits. With up to three objects per scene, this bounds the exact-match rate of any decoder
reading these features."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from captioner.corpus.scenes import COLOURS
from captioner.data.manifest import read_manifest
from captioner.features.extract import FeatureStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenes", default="runs/scenes")
    ap.add_argument("--features", help="features folder (default SCENES/features)")
    a = ap.parse_args()
    store = FeatureStore(a.features or Path(a.scenes) / "features")
    colours = list(COLOURS)
    rows, labels, train = [], [], []
    for it in read_manifest(a.scenes):
        words = it.captions[0].split()
        if len(words) == 3 and words[1] in colours:
            rows.append(store.row[it.image])
            labels.append(colours.index(words[1]))
            train.append(it.split == "train")
    y, tr = torch.tensor(labels), torch.tensor(train)
    for kind in [k for k in ("pooled", "grid") if k in store.arrays]:
        x = torch.from_numpy(store.get(kind, rows))
        x = x.amax(1) if kind == "grid" else x
        x = (x - x[tr].mean(0)) / (x[tr].std(0) + 1e-6)
        torch.manual_seed(0)
        w = torch.zeros(x.shape[1], len(colours), requires_grad=True)
        opt = torch.optim.Adam([w], lr=1e-2)
        for _ in range(300):
            loss = torch.nn.functional.cross_entropy(x[tr] @ w, y[tr]) + 1e-3 * w.pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc = float(((x[~tr] @ w).argmax(1) == y[~tr]).float().mean())
        print(f"{kind:6s}: {len(labels)} one-object scenes ({int(tr.sum())} train); held-out colour accuracy {acc:.1%}")


if __name__ == "__main__":
    main()
