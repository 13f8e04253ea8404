"""Quality with a short fixed schedule, on the open corpus and on the scenes, in one run.

    python bench/quality.py [--open runs/open] [--scenes runs/scenes] [--epochs 15] [--scst-epochs 2] [--members 3]

Give --open, --scenes or both; each part runs on its own.

Open corpus (prepared at min count 2, as for the bundled model, and extracted): trains configs/open_clipart.toml
(the copy decoder) for --epochs epochs, keeping the epoch with the best validation CIDEr-D; fine-tunes it by
self-critical training for --scst-epochs epochs; evaluates both on the test split with beam 3, next to
1-nearest-neighbour retrieval, nearest-neighbour consensus and the reranker (model + consensus); trains
--members - 1 more copy decoders the same way (seeds 1, 2, ...) and evaluates the ensemble of all of them
(without SCST) with its consensus reranker.
Scenes (built with `captioner data scenes --count 12000` if missing, with the hypercolumn grid extracted by
`--encoder efficientnet-lite0-hc`): trains configs/attend.toml on it for --scene-epochs epochs with a cosine
learning-rate schedule and evaluates the test split (seen colour-shape combinations) and the novel split
(held-out combinations). METEOR is skipped for time. Prints one table; "exact" is the
share of captions equal to a reference, "ratio" is CIDEr-D over 1-nearest-neighbour retrieval's."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from captioner.config import load_config
from captioner.corpus.prepare import build_vocab
from captioner.corpus.scenes import build_scenes
from captioner.data.manifest import read_manifest
from captioner.evaluate.run import ENSEMBLE_RERANK_NAME, RERANK_NAME, evaluate, item_id
from captioner.features.extract import extract
from captioner.text.vocab import tokenize
from captioner.train.loop import train

CONFIGS = Path(__file__).parents[1] / "configs"
NN1 = "nearest neighbour (k=1)"


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


SCENE_FEATURES, SCENE_ENCODER = "features-hc", "efficientnet-lite0-hc"


def scenes_data(path: Path) -> Path:
    if not (path / "manifest.jsonl").exists():
        build_scenes(path, 12000, 0)
        vocab, _ = build_vocab(read_manifest(path), 1)
        vocab.save(path / "vocab.json")
        vocab.save(path / "novel" / "vocab.json")
    extract(path, path / SCENE_FEATURES, SCENE_ENCODER, grid=True)  # resumes: nothing to do when complete
    extract(path / "novel", path / "novel" / SCENE_FEATURES, SCENE_ENCODER, grid=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--open", help="the prepared (min count 2) and extracted open corpus")
    ap.add_argument("--scenes", help="the scenes folder (built here when missing)")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--scst-epochs", type=int, default=2)
    ap.add_argument("--scene-epochs", type=int, default=30)
    ap.add_argument("--members", type=int, default=3, help="open corpus: copy decoders in the ensemble (1: none)")
    ap.add_argument("--work", default="runs/quality")
    a = ap.parse_args()
    if not a.open and not a.scenes:
        ap.error("give --open, --scenes or both")
    work = Path(a.work)
    runs: list[tuple[str, Path, Path, Path | None, Path, tuple[str, ...], list[Path]]] = []
    if a.open:
        data = Path(a.open)
        xe = fit("open_clipart.toml", work / "open", [f"train.data={data}", f"train.epochs={a.epochs}"])
        scst = fit(
            "open_clipart.toml",
            work / "open-scst",
            [f"train.data={data}", f"train.init={xe}", f"train.epochs={a.scst_epochs}", "train.scst_samples=5"]
            + ["train.lr=5e-5"],
        )
        members = [
            fit(
                "open_clipart.toml",
                work / f"open-seed{i}",
                [f"train.data={data}", f"train.epochs={a.epochs}", f"train.seed={i}"],
            )
            for i in range(1, a.members)
        ]
        print(f"open corpus: copy decoder, {a.epochs} epochs + {a.scst_epochs} SCST; beam 3, best epoch by val CIDEr-D")
        runs += [
            ("open corpus, test", xe, data, None, work / "eval-open", (NN1, "nearest-neighbour consensus (k=5)"), []),
            ("open corpus, test, SCST", scst, data, None, work / "eval-open-scst", (RERANK_NAME,), []),
        ]
        if members:
            name = f"open corpus, test, {len(members) + 1} seeds"
            runs.append((name, xe, data, None, work / "eval-open-ensemble", (ENSEMBLE_RERANK_NAME,), members))
    if a.scenes:
        scenes = scenes_data(Path(a.scenes))
        feats = scenes / SCENE_FEATURES
        sc = fit(
            "attend.toml",
            work / "scenes",
            [f"train.data={scenes}", f"train.features={feats}", f"train.epochs={a.scene_epochs}"]
            + ["train.schedule=cosine", "train.warmup_steps=150"],
        )
        print(f"scenes: attention on hypercolumn grid features, {a.scene_epochs} epochs, cosine; beam 3")
        runs += [
            ("scenes, test (seen)", sc, scenes, feats, work / "eval-scenes", (NN1,), []),
            (
                "scenes, novel combos",
                sc,
                scenes / "novel",
                scenes / "novel" / SCENE_FEATURES,
                work / "eval-novel",
                (),
                [],
            ),
        ]
    for name, ck, d, f, out, systems, ensemble in runs:
        r = evaluate(ck, "test", 3, data=d, features=f, meteor=False, out=out, ensemble=ensemble)
        rows(name, r, d, out, systems)


if __name__ == "__main__":
    main()
