"""Captions per language: the model against 1-NN retrieval in the same run, for every language with at least
--min-train training captions, and whether any caption strays out of the language asked for.

    python bench/languages.py CHECKPOINT [--data DATA] [--split test] [--beam 3]

For each language: `captioner evaluate --lang L` (references: the split's captions in L; 1-NN answers with the
nearest training image's captions in L), CIDEr-D and BLEU-4 of both and the model's CIDEr-D ratio to 1-NN.
English is scored on pycocoevalcap's PTB tokens, the others on text.tokenize's Unicode words (metrics.py).
'strays' counts test captions with a word outside the language's training words (Vocab.langs), and
'photos' the same over the README's example photos captioned in that language; both must be 0."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from captioner.api import Captioner
from captioner.data.manifest import read_manifest
from captioner.evaluate.run import evaluate
from captioner.files import read_json
from captioner.text.vocab import tokenize
from captioner.train.checkpoint import load_checkpoint

NN = "nearest neighbour (k=1)"
PHOTOS = sorted((Path(__file__).parents[1] / "examples" / "images").glob("*.jpg"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", help="the dataset (default: the one the checkpoint was trained on)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--min-train", type=int, default=1000)
    ap.add_argument("--out", default="runs/bench-languages", help="where each language's evaluation is written")
    a = ap.parse_args()
    ck = load_checkpoint(a.checkpoint)
    data = Path(a.data or ck.config.train.data)
    counts = Counter(t for it in read_manifest(data) if it.split == "train" for t in it.langs)
    langs = [t for t, n in counts.most_common() if n >= a.min_train and t in ck.vocab.langs]
    cap = Captioner.load(a.checkpoint)
    print(
        f"| language | train captions | {a.split} images | model CIDEr-D | 1-NN CIDEr-D | ratio | model BLEU-4 "
        "| 1-NN BLEU-4 | strays | photos |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for lang in langs:
        out = Path(a.out) / f"{a.split}-{lang}"
        r = evaluate(a.checkpoint, a.split, a.beam, data, out=out, meteor=False, lang=lang)
        m, nn = r["metrics"], r["baselines"][NN]
        words = {ck.vocab.itos[i] for i in ck.vocab.langs[lang]}
        said = [p["caption"] for p in read_json(out / "predictions.json", "predictions")]
        strays = sum(not set(tokenize(c)) <= words for c in said)
        photos = sum(not set(tokenize(r.caption)) <= words for r in cap.caption([str(p) for p in PHOTOS], lang=lang))
        print(f"| {lang} | {counts[lang]} | {m['images']} | {m['CIDEr-D']:.4f} | {nn['CIDEr-D']:.4f} "
              f"| {m['CIDEr-D'] / nn['CIDEr-D']:.3f} | {m['BLEU-4']:.4f} | {nn['BLEU-4']:.4f} | {strays} "
              f"| {photos} of {len(PHOTOS)} |")  # fmt: skip


if __name__ == "__main__":
    main()
