"""The held-out-style check: does the model name an emoji drawn in a style it never trained on?

    captioner data held-out-style DATA --out HO --style twemoji
    captioner data held-out-style DATA --out HO1 --style twemoji --only openmoji
    captioner train configs/open_clipart.toml train.data=HO train.out=RUN ...   (and HO1 into RUN1)
    python bench/held_out_style.py RUN/best RUN1/best

The test split of HO (and HO1) is the held-out style's images of emoji trained on in other styles
(data/heldout.py). For each checkpoint (its own dataset) and for 1-NN retrieval over that dataset's training
images: the share of test images whose English caption is the emoji's CLDR name (tokens equal: 'names'), whose
caption holds the name's last word, mostly its head noun ('head'), and CIDEr-D (pycocoevalcap, greedy)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from captioner.data.manifest import read_manifest
from captioner.evaluate.run import evaluate, item_id
from captioner.text.vocab import tokenize
from captioner.train.checkpoint import load_checkpoint

NN = "nearest neighbour (k=1)"


def shares(names: dict[str, str], said: dict[str, str]) -> tuple[float, float]:
    """Share of images whose caption is the name, and whose caption holds the name's last word."""
    exact = sum(tokenize(said[k]) == tokenize(n) for k, n in names.items())
    head = sum(tokenize(n)[-1:] and tokenize(n)[-1] in tokenize(said[k]) for k, n in names.items())
    return exact / len(names), head / len(names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--beam", type=int, default=1)
    ap.add_argument("--out", default="runs/bench-held-out-style", help="where each evaluation is written")
    a = ap.parse_args()
    print("| system | trained emoji styles | test images | names | head | CIDEr-D |")
    print("|---|---|---|---|---|---|")
    for n, path in enumerate(a.checkpoints):
        ck = load_checkpoint(path)
        data = Path(ck.config.train.data)
        items = read_manifest(data)
        styles = sorted({it.source for it in items if it.split == "train" and it.extra.get("group")})
        test = [it for it in items if it.split == "test"]
        names = {item_id(it): it.captions[it.langs.index("en")] for it in test}
        out = Path(a.out) / str(n)
        r = evaluate(path, "test", a.beam, data, out=out, meteor=False, lang="en")
        preds = {p["image_id"]: p["caption"] for p in json.loads((out / "predictions.json").read_text())}
        base = json.loads((out / "baselines.json").read_text())
        nn = dict(zip(base["image_id"], base[NN], strict=True))
        for name, said, cider in (
            (f"model {path}", preds, r["metrics"]["CIDEr-D"]),
            (f"1-NN over {data.name}", nn, r["baselines"][NN]["CIDEr-D"]),
        ):
            exact, head = shares(names, said)
            print(f"| {name} | {', '.join(styles)} | {len(names)} | {exact:.1%} | {head:.1%} | {cider:.4f} |")


if __name__ == "__main__":
    main()
