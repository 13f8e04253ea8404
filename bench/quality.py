"""Quality with a short fixed schedule, on the open corpus and on the scenes, in one run.

    python bench/quality.py --open runs/open [--scenes runs/scenes] [--epochs 15] [--scst-epochs 2]

Open corpus (prepared at min count 2, as for the bundled model, and extracted): trains configs/open_clipart.toml
(the copy decoder) for --epochs epochs, keeping the epoch with the best validation CIDEr-D; fine-tunes it by
self-critical training for --scst-epochs epochs; evaluates both on the test split with beam 3, next to
1-nearest-neighbour retrieval, nearest-neighbour consensus and the reranker (model + consensus).
Scenes (built with `captioner data scenes --count 12000` if missing, with the grid extracted): trains
configs/attend.toml for --scene-epochs epochs and evaluates the test split (seen colour-shape combinations)
and the novel split (held-out combinations). METEOR is skipped for time. Prints one table; "exact" is the
share of captions equal to a reference, "ratio" is CIDEr-D over 1-nearest-neighbour retrieval's."""

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

CONFIGS = Path(__file__).parents[1] / "configs"
NN1 = "nearest neighbour (k=1)"
RERANK = "rerank (model + consensus, n-best + neighbours)"


def fit(config: str, out: Path, overrides: list[str]) -> Path:
    cfg = load_config(CONFIGS / config, [f"train.out={out}", "train.patience=0", *overrides])
    if not (out / "best").exists():
        train(cfg)
    return out / "best"


def exact_match(captions: list[str], ids: list[str], data: Path) -> float:
    """Share of images whose caption equals one of its references, on tokens."""
    refs = {item_id(it): {" ".join(tokenize(c)) for c in it.captions} for it in read_manifest(data)}
    return sum(" ".join(tokenize(c)) in refs[i] for c, i in zip(captions, ids, strict=True)) / max(1, len(ids))


def rows(name: str, r: dict, data: Path, out: Path, systems: tuple[str, ...]) -> None:
    preds = json.loads((out / "predictions.json").read_text())
    ids = [str(p["image_id"]) for p in preds]
    table = {"model": (r["metrics"], [p["caption"] for p in preds])}
    base = r.get("baselines", {})
    nn1 = base.get(NN1, {}).get("CIDEr-D")
    captions = json.loads((out / "baselines.json").read_text()) if base else {}
    for s in systems:
        if s in base:
            table[s] = (base[s], captions[s])
    for s, (m, caps) in table.items():
        ratio = f"ratio {m['CIDEr-D'] / nn1:.2f}" if nn1 else ""
        print(
            f"{name:26s} {s[:48]:48s} {r['images']:5d}  BLEU-4 {m['BLEU-4']:.3f}  CIDEr-D {m['CIDEr-D']:.3f}  "
            f"exact {exact_match(caps, ids, data):6.1%}  {ratio}"
        )


def scenes_data(path: Path) -> Path:
    if not (path / "manifest.jsonl").exists():
        build_scenes(path, 12000, 0)
        vocab, _ = build_vocab(read_manifest(path), 1)
        vocab.save(path / "vocab.json")
        vocab.save(path / "novel" / "vocab.json")
    extract(path, path / "features", grid=True)
    extract(path / "novel", path / "novel" / "features", grid=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--open", required=True, help="the prepared (min count 2) and extracted open corpus")
    ap.add_argument("--scenes", default="runs/scenes")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--scst-epochs", type=int, default=2)
    ap.add_argument("--scene-epochs", type=int, default=15)
    ap.add_argument("--work", default="runs/quality")
    a = ap.parse_args()
    data, scenes, work = Path(a.open), scenes_data(Path(a.scenes)), Path(a.work)
    xe = fit("open_clipart.toml", work / "open", [f"train.data={data}", f"train.epochs={a.epochs}"])
    scst = fit(
        "open_clipart.toml",
        work / "open-scst",
        [f"train.data={data}", f"train.init={xe}", f"train.epochs={a.scst_epochs}", "train.scst_samples=5"]
        + ["train.lr=5e-5"],
    )
    sc = fit("attend.toml", work / "scenes", [f"train.data={scenes}", f"train.epochs={a.scene_epochs}"])
    print(
        f"open corpus: copy decoder, {a.epochs} epochs + {a.scst_epochs} SCST; scenes: attention, "
        f"{a.scene_epochs} epochs; beam 3, best epoch by validation CIDEr-D"
    )
    runs = [
        ("open corpus, test", xe, data, work / "eval-open", (NN1, "nearest-neighbour consensus (k=5)")),
        ("open corpus, test, SCST", scst, data, work / "eval-open-scst", (RERANK,)),
        ("scenes, test (seen)", sc, scenes, work / "eval-scenes", (NN1,)),
        ("scenes, novel combos", sc, scenes / "novel", work / "eval-novel", ()),
    ]
    for name, ck, d, out, systems in runs:
        r = evaluate(ck, "test", 3, data=d, meteor=False, out=out)
        rows(name, r, d, out, systems)


if __name__ == "__main__":
    main()
