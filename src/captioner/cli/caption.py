"""`captioner caption PATH...`: gather image paths, caption them in batches, report bad files per file."""

from __future__ import annotations

import glob
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from captioner.api import Captioner, prefetched
from captioner.batch import Decoding, caption_loaded, load_image
from captioner.data.importers import IMAGE_EXTS
from captioner.features.images import ImageError
from captioner.text.metrics import health
from captioner.ticker import Ticker


def gather(args: Iterable[str], stdin: TextIO = sys.stdin) -> Iterator[str]:
    """Files as given, folders recursively by image extension, globs expanded, '-' reads paths from stdin."""
    for a in args:
        if a == "-":
            yield from (line.strip() for line in stdin if line.strip())
        elif Path(a).is_dir():
            yield from sorted(str(p) for p in Path(a).rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
        elif any(ch in a for ch in "*?[") and not Path(a).exists():
            yield from sorted(glob.glob(a, recursive=True))
        else:
            yield a


def caption_paths(
    cap: Captioner,
    paths: list[str],
    out: TextIO,
    err: TextIO,
    as_json: bool = False,
    beam: int = 3,
    n_best: int = 1,
    temperature: float = 0.0,
    batch_size: int = 16,
    progress: bool = False,
    lang: str | None = None,
) -> int:
    """Write one line per path, captioned in `lang` (None: English); returns how many could not be captioned.

    Images of the next batch are decoded in threads while the current batch runs through the model."""
    failed, said = 0, []
    cap.rules(lang)  # an unknown language fails before any image is read
    with Ticker(len(paths), "caption", "img", quiet=not progress) as bar:
        for chunk, loaded in prefetched(paths, lambda p: load_image(cap, p), batch_size):
            got = caption_loaded(cap, loaded, Decoding(beam, temperature, lang), n_best)
            for p, r in zip(chunk, got, strict=True):
                if isinstance(r, ImageError):
                    failed += 1
                    print(f"{p}\tERROR: {r}", file=err)
                    if as_json:
                        print(json.dumps({"source": p, "error": str(r)}), file=out)
                    continue
                r.source = p
                said.append(r.caption)
                print(json.dumps(r.to_json(), ensure_ascii=False) if as_json else f"{p}\t{r.caption}", file=out)
            out.flush()
            bar.update(len(chunk))
    if len(said) >= 3:
        health(said, cap.runtime.vocab.no_end)  # warns when most images get the same caption, as evaluate does
    return failed
