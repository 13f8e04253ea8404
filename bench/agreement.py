"""One meaning in every language, one English style, no stock captions: the figures of the model card's
"Languages agree" table, on the test split and the photo sets.

    python bench/agreement.py CHECKPOINT --data DATA [--split test] [--beam 3] [--limit N] [--save F | --captions F]

Each image is captioned in English and in every other language of the model. Per set:
- agreement (per language): the share of images whose caption names the English caption's concept: it says the
  translation (Vocab.translations) of one of the English caption's words, or for "a person" and "people" the
  language's words for them (policy.PERSON_WORDS). An English caption the table cannot say in the language counts
  as a disagreement ('untranslatable' counts them). This is the table the rules say the concept with, so the
  figure measures how often the rules can say it; whether a translation is right is docs/data.md's alignment
  precision.
- bare: English captions that are a countable noun phrase with no determiner ("hammer"; Vocab.countable);
  doubled: captions of any language with a word twice in a row ("a fish fish") that the training captions never
  repeat (Vocab.repeatable: "family man man boy boy" is CLDR's name).
- stock: the captions given to more than 2% of the set's images that they do not name (test split: none of the
  caption's words is in the image's English references; photo sets: none is one of the photo's right nouns; an
  unlabelled set counts every image given the caption, an upper bound), and the images given them.
Sets: the split's images; the photo sets of bench/common.photo_set (scikit-image's photos and the Tux Paint photo
cut-outs outside training); where Debian's gcompris-qt-data is installed, GCompris's photos of landmarks, wild
animals and musicians and its cartoon drawings (bench/common.GCOMPRIS_VAL_PHOTOS, _DRAWINGS; unlabelled).
--save writes the captions as JSON ({set: {language: [caption, ...]}}); --captions scores such a file instead of
captioning (an earlier version's captions, scored by the same rules)."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from common import GCOMPRIS, GCOMPRIS_VAL_DRAWINGS, GCOMPRIS_VAL_PHOTOS, photo_set, rcc_images
from PIL import Image

from captioner.api import Captioner
from captioner.data.manifest import dataset_root, read_manifest
from captioner.features.images import open_image
from captioner.files import read_json, write_json
from captioner.policy import PERSON_WORDS
from captioner.text.vocab import DETERMINERS, Vocab, tokenize

STOCK_SHARE = 0.02  # a caption said for more of a set's images than this is a stock caption unless it is right


def concept_said(vocab: Vocab, lang: str, english: str, caption: str) -> bool | None:
    """Whether `caption` (in lang) names the concept of `english`; None: the tables cannot say it in lang. A
    person or people (the people rule's words, policy.PERSON_WORDS) is that language's words for them."""
    for en, said in zip(PERSON_WORDS["en"], PERSON_WORDS.get(lang, ((), ())), strict=True):
        if tokenize(english) == list(en) and said:
            return tokenize(caption) == list(said)
    names = {vocab.translations.get(lang, {}).get(w) for w in tokenize(english)} - {None}
    return bool(names & set(tokenize(caption))) if names else None


def bare(vocab: Vocab, caption: str) -> bool:
    """An English caption that is a countable noun phrase with no determiner."""
    w = tokenize(caption)
    return bool(w) and w[0] not in DETERMINERS and w[-1] in set(vocab.countable)


def doubled(vocab: Vocab, caption: str) -> bool:
    """A word said twice in a row that the training captions never repeat (Vocab.repeatable)."""
    w = tokenize(caption)
    return any(a == b and a not in vocab.repeatable for a, b in zip(w, w[1:], strict=False))


def captions(cap: Captioner, images: list[Image.Image], beam: int) -> dict[str, list[str]]:
    """Each image's caption in every language of the model."""
    return {lang: [r.caption for r in cap.caption(images, beam=beam, lang=lang)] for lang in cap.languages}  # type: ignore[union-attr]


def report(name: str, vocab: Vocab, said: dict[str, list[str]], right: list[set[str]] | None) -> None:
    """Print one set's rows (the module docstring); right: each image's right words, None: unlabelled."""
    english = said["en"]
    n = len(english)
    wrong = Counter(c for i, c in enumerate(english) if right is None or not set(tokenize(c)) & right[i])
    stock = {c: k for c, k in wrong.items() if k > STOCK_SHARE * n}
    top = ", ".join(f'"{c}" x{k}' for c, k in Counter(english).most_common(5))
    listed = ", ".join(f'"{c}" x{k}' for c, k in sorted(stock.items(), key=lambda x: -x[1]))
    print(f"\n{name}: {n} images{'' if right is not None else ' (unlabelled)'}")
    print(f"  English: bare {sum(bare(vocab, c) for c in english)}, doubled {sum(doubled(vocab, c) for c in english)}; "
          f"stock captions {len(stock)} ({listed}), "
          f"images given one {sum(stock.values())} ({sum(stock.values()) / n:.1%}); most said: {top}")  # fmt: skip
    for lang in said:
        if lang == "en":
            continue
        got = [concept_said(vocab, lang, e, c) for e, c in zip(english, said[lang], strict=True)]
        agree, untranslatable = sum(g is True for g in got), sum(g is None for g in got)
        print(f"  {lang}: agreement {agree / n:.1%} ({agree}/{n}; untranslatable {untranslatable}), "
              f"doubled {sum(doubled(vocab, c) for c in said[lang])}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", required=True, help="the open corpus (captioner data open-clipart)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="at most this many images of the split (0: all)")
    ap.add_argument("--save", help="write the captions to this JSON file")
    ap.add_argument("--captions", help="score the captions in this JSON file (--save's) instead of captioning")
    a = ap.parse_args()
    data = Path(a.data)
    items = [it for it in read_manifest(data) if it.split == a.split][: a.limit or None]
    photos = photo_set(data)
    refs = [{w for c, t in zip(it.captions, it.langs, strict=True) if t == "en" for w in tokenize(c)} for it in items]
    sets: dict[str, list[set[str]] | None] = {f"{a.split} split": refs, "photo sets": [r for _, r, _ in photos]}
    gcompris = {"GCompris photos": GCOMPRIS_VAL_PHOTOS, "GCompris drawings": GCOMPRIS_VAL_DRAWINGS}
    if GCOMPRIS.is_dir():
        sets |= dict.fromkeys(gcompris)
    if a.captions:
        said = read_json(a.captions, "captions")
    else:
        cap, root = Captioner.load(a.checkpoint), dataset_root(data)
        images = {f"{a.split} split": [open_image(root / it.image) for it in items],
                  "photo sets": [p for p, _, _ in photos]}  # fmt: skip
        images |= {k: [im for act in acts for im in rcc_images(act)] for k, acts in gcompris.items() if k in sets}
        said = {name: captions(cap, ims, a.beam) for name, ims in images.items()}
        if a.save:
            write_json(a.save, said)
    vocab = Vocab.load(Path(a.checkpoint) / "vocab.json")
    for name, right in sets.items():
        if name in said:
            report(name, vocab, said[name], right)


if __name__ == "__main__":
    main()
