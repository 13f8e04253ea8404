"""Test CIDEr-D of two models on the test images that neither trained on: for comparing the bundled model with the
English-only model it replaced, whose corpus split the images differently.

    git worktree add OLD a6dc62c      # the code that built the earlier model's corpus
    (cd OLD && PYTHONPATH=src python -m captioner.cli data open-clipart --out OLDDATA \\
        --openmoji openmoji-17.0.0.tgz --min-count 2)
    python bench/held_out_both.py --data DATA --old OLDDATA MODEL [MODEL ...]

DATA is the corpus the newer model trained on; OLDDATA the earlier corpus, rebuilt by its own code (its split
sizes, 5,560 / 703 / 702, are the earlier model card's). The held-out set is DATA's test images (English
captions) that are in OLDDATA's validation or test split: images both corpora have, and neither model trained
on. Images only DATA has (the Noto and Twemoji styles, OpenMoji's newer emoji) are left out, since the earlier
model trained on other styles of the same emoji under the same names: the script prints how many of them have
an English caption that is one of OLDDATA's training captions. Each model decodes with truth.py's rules, beam 3,
English references; pycocoevalcap scores; and the same over the whole test split."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from captioner.data.manifest import dataset_root, read_manifest
from captioner.evaluate.run import decode, in_language, load_split, split_sights
from captioner.features.extract import FeatureStore
from captioner.text.metrics import coco_metrics
from captioner.train.checkpoint import load_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", required=True)
    ap.add_argument("--old", required=True, help="the earlier corpus, rebuilt by the code of its time")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    data = Path(a.data)
    old = read_manifest(Path(a.old))
    old_train = {it.image for it in old if it.split == "train"}
    old_held = {it.image for it in old} - old_train
    seen_captions = {c.lower() for it in old if it.split == "train" for c in it.captions}
    items = in_language(read_manifest(data), "en")
    test = [it for it in items if it.split == "test"]
    new = [it for it in test if it.image not in old_held | old_train]
    known = sum(any(c.lower() in seen_captions for c in it.captions) for it in new)
    print(
        f"{len(test)} test images with English captions: {sum(it.image in old_held for it in test)} in the earlier "
        f"corpus's val/test, {sum(it.image in old_train for it in test)} in its train split, {len(new)} not in it "
        f"({known} of these have a caption among its training captions)"
    )
    store = FeatureStore(data / "features")
    splits = {
        "held-out test images": load_split(
            [it for it in items if it.split != "test" or it.image in old_held], store, "test"
        ),
        "test images (all)": load_split(items, store, "test"),
    }
    for name in a.models:
        ck = load_checkpoint(name)
        seen = split_sights(ck, splits["test images (all)"], dataset_root(data))  # the held-out ones among them
        if seen is None:
            raise SystemExit(f"{data}: the test split's images are missing")
        sight = dict(zip(splits["test images (all)"].ids, seen, strict=True))
        for label, sp in splits.items():
            caps = decode(ck, store, sp.rows, 3, 1, [sight[i] for i in sp.ids])
            hyps = {i: ck.vocab.decode(c[0].tokens, articles=True) for i, c in zip(sp.ids, caps, strict=True)}
            m = coco_metrics({i: it.captions for i, it in zip(sp.ids, sp.items, strict=True)}, hyps, meteor=False)
            print(f"{name}: {len(sp.ids)} {label}, CIDEr-D {m['CIDEr-D']:.4f}  BLEU-4 {m['BLEU-4']:.4f}")


if __name__ == "__main__":
    main()
