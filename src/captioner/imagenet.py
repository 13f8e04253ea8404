"""The encoder's 1000 ImageNet classes: WordNet ids, lemmas and glosses, read as data (no timm import)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files


@dataclass(frozen=True)
class ImageNetClass:
    index: int
    wnid: str  # WordNet 3.0 noun offset, e.g. n02123045
    lemmas: tuple[str, ...]  # ("tabby", "tabby cat")
    gloss: str


@cache
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    """All 1000 classes in the order of the classifier's outputs."""
    text = (files("captioner") / "data" / "imagenet_classes.tsv").read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        idx, wnid, lemmas, gloss = line.split("\t")
        out.append(ImageNetClass(int(idx), wnid, tuple(x.strip() for x in lemmas.split(",")), gloss))
    return tuple(out)


def with_article(noun: str) -> str:
    """'a cup', 'an espresso'."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
