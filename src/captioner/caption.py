"""`captioner caption PATH...`: gather image paths, caption them in batches, report bad files per file."""

from __future__ import annotations

import glob
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import torch
from tqdm import tqdm

from .api import Captioner
from .data.importers import IMAGE_EXTS
from .images import ImageError, open_image


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
) -> int:
    """Write one line per path; returns how many could not be captioned."""
    failed = 0
    bar = tqdm(total=len(paths), unit="img", disable=not progress)
    for s in range(0, len(paths), batch_size):
        chunk, tensors = [], []
        for p in paths[s : s + batch_size]:
            try:
                tensors.append(cap.encoder.preprocess(open_image(p)))
                chunk.append(p)
            except ImageError as e:
                failed += 1
                print(f"{p}\tERROR: {e}", file=err)
                if as_json:
                    print(json.dumps({"source": p, "error": str(e)}), file=out)
        if tensors:
            for p, r in zip(chunk, cap.caption_tensors(torch.stack(tensors), beam, n_best, temperature), strict=True):
                r.source = p
                print(json.dumps(r.to_json(), ensure_ascii=False) if as_json else f"{p}\t{r.caption}", file=out)
        out.flush()
        bar.update(len(paths[s : s + batch_size]))
    bar.close()
    return failed
