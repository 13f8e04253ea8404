"""How far can decoding and reranking go? Per-image CIDEr-D of the model, 1-NN retrieval and the reranker.

    python bench/headroom.py CHECKPOINT [--data runs/open] [--split test] [--beam 3]

Per-image CIDEr-D comes from pycocoevalcap (document frequencies from the split's references, as in
`captioner evaluate`). Beside the systems' means it prints
- the share of images where both the model and 1-NN score 0;
- "switch oracle": the mean of max(model, 1-NN) per image, the best any per-image choice between the two
  could reach;
- "pool oracle": the mean of the best candidate per image among those the reranker chooses from (beam
  n-best plus the 5 neighbours' captions);
and the same by the cosine similarity of each image's nearest training image. The goal of issue 4 asks the
best system for 1.2x 1-NN; the switch oracle says whether choosing between model and retrieval can get there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from captioner.data.manifest import dataset_root, read_manifest
from captioner.evaluate import baselines as bl
from captioner.evaluate.run import RERANK_NAME, decode, load_split, neighbours, rerank_pool, run_baselines, split_sights
from captioner.features.extract import FeatureStore
from captioner.text.metrics import ptb_tokenize
from captioner.train.checkpoint import load_checkpoint

BANDS = ((0.0, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01))


def per_image(gts: dict[str, list[str]], hyps: list[str]) -> np.ndarray:
    """pycocoevalcap CIDEr-D of each hypothesis against its image's tokenized references (keys '0', '1', ...)."""
    return pool_cider(gts, [[h] for h in hyps])[:, 0]


def pool_cider(gts: dict[str, list[str]], pool: list[list[str]]) -> np.ndarray:
    """pycocoevalcap CIDEr-D of every candidate of every image, (images, max candidates), 0 past each
    image's last. Scored one candidate slot at a time, so document frequencies come from the references
    alone, exactly as when each candidate set is the system's output; the candidates are tokenized once."""
    from pycocoevalcap.cider.cider import Cider

    tok = ptb_tokenize({f"{i} {j}": [c] for i, cs in enumerate(pool) for j, c in enumerate(cs)})
    out = np.zeros((len(pool), max(map(len, pool))), np.float64)
    for j in range(out.shape[1]):
        res = {str(i): [(tok[f"{i} {j}"][0] if j < len(cs) else "") or "#"] for i, cs in enumerate(pool)}
        out[:, j] = Cider().compute_score(gts, res)[1]
    return out * (np.arange(out.shape[1]) < np.asarray([len(cs) for cs in pool])[:, None])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", help="prepared dataset (default: the checkpoint's)")
    ap.add_argument("--features", help="features folder (default: the checkpoint's, else DATA/features)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--beam", type=int, default=3)
    a = ap.parse_args()
    ck = load_checkpoint(a.checkpoint)
    data = Path(a.data or ck.config.train.data)
    store = FeatureStore(a.features or ck.config.train.features or data / "features")
    items = read_manifest(data)
    sp = load_split(items, store, a.split)
    caps = decode(ck, store, sp.rows, a.beam, a.beam, split_sights(ck, sp, dataset_root(data)))
    nbest = [[ck.vocab.decode(c.tokens, articles=True) for c in cs] for cs in caps]
    systems = run_baselines(items, store, sp, nbest, ck)
    train_caps, nn, sims = neighbours(items, store, sp)
    pool = rerank_pool(nbest, bl.neighbour_captions(train_caps, nn))
    refs = ptb_tokenize({str(i): it.captions for i, it in enumerate(sp.items)})  # tokenized once
    model = per_image(refs, [n[0] for n in nbest])
    nn1 = per_image(refs, systems["nearest neighbour (k=1)"])
    rerank = per_image(refs, systems[RERANK_NAME])
    pool_best = pool_cider(refs, pool).max(1)
    rows = {
        "model": model,
        "nearest neighbour (k=1)": nn1,
        "rerank": rerank,
        "switch oracle max(model, 1-NN)": np.maximum(model, nn1),
        "switch oracle max(rerank, 1-NN)": np.maximum(rerank, nn1),
        f"pool oracle ({sum(map(len, pool)) / len(pool):.1f} candidates per image)": pool_best,
    }
    print(f"{a.split}: {len(refs)} images, {ck.path}, beam {a.beam}")
    for name, v in rows.items():
        print(f"  {name:45s} CIDEr-D {v.mean():.3f}  ratio to 1-NN {v.mean() / nn1.mean():.2f}")
    print(f"  goal (1.2 x 1-NN)                             CIDEr-D {1.2 * nn1.mean():.3f}")
    print(f"  images where model and 1-NN both score 0: {np.mean((model == 0) & (nn1 == 0)):.1%}")
    top = sims[:, 0]
    print("  by similarity of the nearest training image:")
    for lo, hi in BANDS:
        k = (top >= lo) & (top < hi)
        if k.any():
            print(
                f"    [{lo:.1f}, {min(hi, 1):.1f}) {k.sum():4d} images: model {model[k].mean():.3f}  1-NN "
                f"{nn1[k].mean():.3f}  rerank {rerank[k].mean():.3f}  pool oracle {pool_best[k].mean():.3f}"
            )


if __name__ == "__main__":
    main()
