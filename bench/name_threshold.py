"""Choose a copy model's model.name_threshold on the validation split, never on the naming check.

    python bench/name_threshold.py CHECKPOINT [--data runs/open] [--write]

On photographs (images.photo_like) whose top ImageNet class reaches the threshold, decoding must say that
class's word (truth.Rules.musts). Lower thresholds name more photos and risk more wrong names.
This prints validation CIDEr-D (beam 3) with naming off and at thresholds 0.9, 0.8, ..., 0.3, and picks
the lowest threshold whose CIDEr-D stays within 1% of naming off, so drawings keep their quality.
--write stores it in the checkpoint's config.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from captioner.evaluate.run import evaluate
from captioner.files import read_json, write_json

GRID = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
TOLERANCE = 0.01


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", help="prepared dataset (default: the checkpoint's)")
    ap.add_argument("--work", default="runs/name-threshold")
    ap.add_argument("--write", action="store_true", help="store the chosen threshold in CHECKPOINT/config.json")
    a = ap.parse_args()
    scores = {}
    for thr in (0.0, *GRID):
        out = Path(a.work) / f"t{thr}"
        r = evaluate(
            a.checkpoint, "val", 3, data=a.data, out=out, with_baselines=False, meteor=False, name_threshold=thr
        )
        scores[thr] = r["metrics"]["CIDEr-D"]
        print(f"name_threshold {thr:.1f}  val CIDEr-D {scores[thr]:.4f}  ({scores[thr] / scores[0.0] - 1:+.1%})")
    ok = [t for t in GRID if scores[t] >= (1 - TOLERANCE) * scores[0.0]]
    chosen = min(ok) if ok else 0.0
    print(f"chosen: {chosen} (the lowest within {TOLERANCE:.0%} of naming off; 0 = off)")
    if a.write:
        path = Path(a.checkpoint) / "config.json"
        cfg = read_json(path)
        cfg["model"]["name_threshold"] = chosen
        write_json(path, cfg)
        print(f"wrote model.name_threshold = {chosen} to {path}")


if __name__ == "__main__":
    main()
