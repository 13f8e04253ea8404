"""Quality with a short fixed schedule: the seed's decoder on the open corpus and on the scenes, in one run.

    python bench/quality.py --open runs/open [--scenes runs/scenes] [--epochs 15]

Trains configs/seed.toml for a fixed number of epochs (no early stopping) on each dataset, then runs
`captioner evaluate` (beam 3, METEOR skipped for time) on: the open corpus's test split; the scenes' test
split (seen colour-shape combinations); and the scenes' novel split (held-out combinations). Baselines
are computed in the same evaluation. Prints one table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from captioner.config import load_config
from captioner.data.manifest import read_manifest
from captioner.data.scenes import build_scenes
from captioner.evaluate import evaluate, item_id
from captioner.features import extract
from captioner.prepare import build_vocab
from captioner.text import tokenize
from captioner.train import train

SEED = Path(__file__).parents[1] / "configs" / "seed.toml"


def fit(data: Path, out: Path, epochs: int) -> Path:
    cfg = load_config(SEED, [f"train.data={data}", f"train.out={out}", f"train.epochs={epochs}", "train.patience=0"])
    if not (out / "best").exists():
        train(cfg)
    return out / "best"


def exact_match(r: dict, data: Path, out: Path) -> float:
    """Share of images whose caption equals one of its references, on tokens."""
    refs = {item_id(it): {" ".join(tokenize(c)) for c in it.captions} for it in read_manifest(data)}
    preds = json.loads((out / "predictions.json").read_text())
    return sum(" ".join(tokenize(p["caption"])) in refs[str(p["image_id"])] for p in preds) / max(1, len(preds))


def row(name: str, r: dict, exact: float) -> None:
    m, nn = r["metrics"], r["baselines"].get("nearest-neighbour consensus (k=5)")
    ratio = f"model/NN {m['CIDEr-D'] / nn['CIDEr-D']:.2f}" if nn and nn["CIDEr-D"] else "no NN baseline"
    print(
        f"{name:28s} {r['images']:5d}  BLEU-4 {m['BLEU-4']:.3f}  CIDEr-D {m['CIDEr-D']:.3f}  exact {exact:6.1%}  "
        + (f"NN CIDEr-D {nn['CIDEr-D']:.3f}  {ratio}" if nn else ratio)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--open", required=True, help="the prepared and extracted open corpus")
    ap.add_argument("--scenes", default="runs/scenes")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--work", default="runs/quality")
    a = ap.parse_args()
    scenes, work = Path(a.scenes), Path(a.work)
    if not (scenes / "manifest.jsonl").exists():
        build_scenes(scenes, 3000, 0)
        vocab, _ = build_vocab(read_manifest(scenes), 1)
        vocab.save(scenes / "vocab.json")
        vocab.save(scenes / "novel" / "vocab.json")
    extract(scenes, scenes / "features")
    extract(scenes / "novel", scenes / "novel" / "features")
    runs = {}
    ck = fit(Path(a.open), work / "open", a.epochs)
    runs["open corpus, test"] = (ck, Path(a.open), work / "eval-open")
    ck = fit(scenes, work / "scenes", a.epochs)
    runs["scenes, test (seen combos)"] = (ck, scenes, work / "eval-scenes")
    runs["scenes, novel combos"] = (ck, scenes / "novel", work / "eval-novel")
    print(f"seed config, {a.epochs} epochs each, beam 3")
    for name, (ck, data, out) in runs.items():
        r = evaluate(ck, "test", 3, data=data, meteor=False, out=out)
        row(name, r, exact_match(r, data, out))


if __name__ == "__main__":
    main()
