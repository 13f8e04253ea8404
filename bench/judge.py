"""Can a learned judge choose better than the reranker? Fitted on one split, choosing on the other.

    python bench/judge.py CHECKPOINT [--data runs/open] [--features DIR] [--beam 3] [--k 10] [--seeds 3]

For every image of val and test: the candidate pool (the beam's n-best plus the captions of the k nearest
training images), twelve features per candidate, and each candidate's pycocoevalcap CIDEr-D against the
image's references (bench/headroom.py's pool_cider). A scorer, linear or a 16-unit MLP, is fitted on one
split to maximise the expected CIDEr-D of a softmax choice over each image's pool, then picks the top
candidate on the other split. Printed beside the model, 1-NN, the reranker (as `captioner evaluate` runs
it) and the pool oracle, each with its ratio to 1-NN. A judge fitted on 700 images with only one reference
each overfits easily: compare the in-sample and the other-split figures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from headroom import pool_cider

from captioner.data.manifest import Item, dataset_root, read_manifest
from captioner.evaluate import baselines as bl
from captioner.evaluate.run import (
    RERANK_NAME,
    decode,
    load_split,
    model_scores,
    neighbours,
    rerank_pool,
    run_baselines,
    split_sights,
)
from captioner.evaluate.run import RERANK_TAU as TAU
from captioner.features.extract import FeatureStore
from captioner.text.metrics import ptb_tokenize
from captioner.text.vocab import tokenize
from captioner.train.checkpoint import Checkpoint, load_checkpoint

FEATURES = (
    "model mean log-prob", "weighted CIDEr-D vs 5 neighbours (the reranker's)", "CIDEr-D vs k neighbours",
    "CIDEr-D vs the model's caption", "from the beam", "beam's first", "from a neighbour", "its neighbour's cosine",
    "from the nearest", "neighbours with it", "nearest cosine if from a neighbour", "share of words not in vocab",
)  # fmt: skip


def split_pool(
    ck: Checkpoint, items: list[Item], store: FeatureStore, data: Path, split: str, beam: int, k: int
) -> dict:
    """Features (images x candidates x FEATURES), CIDEr-D targets, the pool mask and the fixed systems' scores."""
    sp = load_split(items, store, split)
    caps = decode(ck, store, sp.rows, beam, beam, split_sights(ck, sp, dataset_root(data)))
    nbest = [[ck.vocab.decode(c.tokens, articles=True) for c in cs] for cs in caps]
    systems = run_baselines(items, store, sp, nbest, ck)
    train_caps, nn, sims = neighbours(items, store, sp, k)
    neigh = bl.neighbour_captions(train_caps, nn)
    pool = rerank_pool(nbest, neigh)
    cider = bl.CiderD(train_caps)
    lp = model_scores(ck, store, sp.rows, pool)
    wcons = bl.weighted_scores(pool, bl.neighbour_captions(train_caps, nn[:, :5]),
                               bl.similarity_weights(train_caps, nn[:, :5], sims[:, :5], TAU), cider)  # fmt: skip
    cons = bl.consensus_scores(pool, neigh, cider)
    x = np.zeros((len(pool), max(map(len, pool)), len(FEATURES)), np.float32)
    for i, cs in enumerate(pool):
        for j, c in enumerate(cs):
            holders = [r for r, t in enumerate(nn[i]) if c in train_caps[t]]
            near = float(sims[i, holders[0]]) if holders else 0.0
            words = tokenize(c) or [""]
            x[i, j] = (
                lp[i][j], wcons[i][j], cons[i][j], cider.score(c, [nbest[i][0]]), c in nbest[i], c == nbest[i][0],
                bool(holders), near, holders[:1] == [0], len(holders), sims[i, 0] * bool(holders),
                np.mean([w not in ck.vocab.stoi for w in words]),
            )  # fmt: skip
    y = pool_cider(ptb_tokenize({str(i): it.captions for i, it in enumerate(sp.items)}), pool)
    picks = {"model": [n[0] for n in nbest], "nearest neighbour (k=1)": systems["nearest neighbour (k=1)"],
             "reranker": systems[RERANK_NAME]}  # fmt: skip
    # every system's caption is in the pool (its k covers the reranker's 5 neighbours): read its score there
    fixed = {name: float(np.mean([y[i, pool[i].index(c)] for i, c in enumerate(v)])) for name, v in picks.items()}
    mask = np.arange(x.shape[1]) < np.asarray([len(cs) for cs in pool])[:, None]
    return {"x": x, "y": y, "mask": mask, "fixed": fixed}


def fit(d: dict, hidden: int, seed: int, steps: int = 400, temp: float = 0.1, l2: float = 1e-2) -> torch.nn.Module:
    """A scorer maximising the expected CIDEr-D of softmax(score / temp) over each image's pool."""
    torch.manual_seed(seed)
    n = d["x"].shape[-1]
    net = torch.nn.Linear(n, 1) if not hidden else torch.nn.Sequential(
        torch.nn.Linear(n, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))  # fmt: skip
    x, y, m = (torch.from_numpy(d[k]) for k in ("xs", "y", "mask"))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(steps):
        p = torch.softmax(net(x).squeeze(-1).masked_fill(~m, -1e9) / temp, -1)
        loss = -(p * y.float()).sum(-1).mean() + l2 * sum((w**2).sum() for w in net.parameters())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def choose(net: torch.nn.Module, d: dict) -> float:
    """Mean CIDEr-D of the scorer's top candidate per image."""
    with torch.no_grad():
        s = net(torch.from_numpy(d["xs"])).squeeze(-1).masked_fill(~torch.from_numpy(d["mask"]), -1e9)
    return float(np.take_along_axis(d["y"], s.argmax(-1).numpy()[:, None], 1).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", help="prepared dataset (default: the checkpoint's)")
    ap.add_argument("--features", help="features folder (default: the checkpoint's, else DATA/features)")
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--k", type=int, default=10, help="neighbours whose captions join the pool (at least 5)")
    ap.add_argument("--seeds", type=int, default=3, help="fits per scorer (their mean is printed)")
    a = ap.parse_args()
    if a.k < 5:
        ap.error("--k must be at least 5: the pool holds the reranker's 5 neighbours' captions")
    ck = load_checkpoint(a.checkpoint)
    data = Path(a.data or ck.config.train.data)
    store = FeatureStore(a.features or ck.config.train.features or data / "features")
    items = read_manifest(data)
    splits = {s: split_pool(ck, items, store, data, s, a.beam, a.k) for s in ("val", "test")}
    for fitted, other in (("val", "test"), ("test", "val")):
        f, o = splits[fitted], splits[other]
        flat = f["x"][f["mask"]]
        mu, sd = flat.mean(0), flat.std(0) + 1e-6  # standardised with the fitting split's statistics
        f["xs"], o["xs"] = (f["x"] - mu) / sd, (o["x"] - mu) / sd
        nn1 = o["fixed"]["nearest neighbour (k=1)"]
        print(f"judge fitted on {fitted}, choosing on {other} ({len(o['y'])} images, "
              f"{o['mask'].sum(1).mean():.1f} candidates each), CIDEr-D and ratio to 1-NN:")  # fmt: skip
        rows = dict(o["fixed"], **{"pool oracle": o["y"].max(1).mean()})
        inside = []
        for name, hidden in (("linear judge", 0), ("MLP judge (16 tanh units)", 16)):
            nets = [fit(f, hidden, s) for s in range(a.seeds)]
            rows[name] = np.mean([choose(n, o) for n in nets])
            v = np.mean([choose(n, f) for n in nets])
            inside.append(f"{name} {v:.3f} ({v / f['fixed']['nearest neighbour (k=1)']:.2f}x)")
        for name, v in rows.items():
            print(f"  {name:40s} {v:.3f}  {v / nn1:.2f}x")
        print(f"  {'goal (1.2 x 1-NN)':40s} {1.2 * nn1:.3f}")
        print(f"  in-sample, choosing on {fitted}: " + ", ".join(inside))


if __name__ == "__main__":
    main()
