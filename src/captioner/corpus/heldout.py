"""The held-out-style check: one emoji style never trained on, tested on concepts trained in other styles.

From an open corpus (data/opencorpus.py: each emoji's styles share a split and carry its key as
extra['group']), `held_out_style` writes a dataset whose
- test split is the held-out style's images of the emoji in the corpus's training split (each such emoji was
  trained on in another style), and nothing else;
- train and val splits are the corpus's, without any image of the held-out style; with `only`, emoji images of
  every style but that one are left out too (the one-style comparison).
So no (emoji, held-out style) pair is trained on, while every test emoji is."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from captioner.corpus.emoji import STYLE_LICENSE
from captioner.data.manifest import Item, dataset_root, read_manifest, write_manifest
from captioner.errors import CaptionerError


def held_out_style(items: list[Item], style: str, only: str | None = None) -> list[Item]:
    """The items of the check (module docstring): `style` held out, trained emoji styles limited to `only`."""
    for name, value in (("style", style), ("only", only)):
        if value is not None and value not in STYLE_LICENSE:
            raise CaptionerError(f"--{name} {value!r}: not an emoji style; choose from {', '.join(STYLE_LICENSE)}")
    if only == style:
        raise CaptionerError(f"--only {only}: the style trained on cannot be the held-out one")
    trained = {it.extra["group"] for it in items if it.split == "train" and it.source != style
               and it.extra.get("group") and (only is None or it.source == only)}  # fmt: skip
    out = []
    for it in items:
        if it.source == style:
            if it.split == "train" and it.extra.get("group") in trained:
                out.append(dataclasses.replace(it, split="test"))
        elif it.split != "test" and (only is None or it.source == only or it.source not in STYLE_LICENSE):
            out.append(it)
    if not any(it.split == "test" for it in out):
        raise CaptionerError(f"no {style} images of trained emoji: is {style} one of the corpus's sources?")
    return out


def write_held_out_style(data: str | Path, out: str | Path, style: str, only: str | None, min_count: int) -> dict:
    """Write the check's manifest and vocabulary into out/, whose features/ links to data/features."""
    from captioner.corpus.prepare import build_vocab, summarize

    data, out = Path(data), Path(out)
    items = held_out_style(read_manifest(data), style, only)
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out, items, dataset_root(data), format="held-out-style", source=str(data), style=style, only=only)
    vocab, stats = build_vocab(items, min_count)
    vocab.save(out / "vocab.json")
    link = out / "features"
    if not link.exists():
        os.symlink(os.path.relpath((data / "features").resolve(), out.resolve()), link)
    return {**summarize(items), "vocab": stats}
