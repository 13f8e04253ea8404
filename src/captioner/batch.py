"""Captioning at volume: `captioner caption SRC... --out captions.jsonl`, resumable, shardable, and the rows that
the Ray Data path (captioner.ray) writes too.

A row is one JSON object a line:
    {"path", "caption", "confidence", "language", "decoding", "model", "model_sha256"}
or, for an image that cannot be captioned, "error" (saying why) in place of caption and confidence. A batch's
rows go to the file in one append and are fsynced before the next batch starts, so a kill loses at most the
batch in flight. A kill can cut that append short: the cut line has no newline, is not a row, and is cut off
when the file is next opened (read_rows skips it too). Rerunning the same command skips every path the file
already holds a row for from the same model and decoding, and captions the rest in input order; the file stays
in input order. `--shard I/N` captions the I-th of N contiguous blocks of the input into OUT's shard file;
`--merge N` joins the N shard files into OUT in input order, after checking that every input has its row."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from captioner.api import Captioner, ImageLike, Result, prefetched
from captioner.data.manifest import shard_bounds
from captioner.errors import CaptionerError
from captioner.features.images import ImageError
from captioner.files import write_bytes
from captioner.ticker import Ticker


@dataclass(frozen=True)
class Decoding:
    """How captions are decoded: what, beside the model, decides a row's caption (rows record it)."""

    beam: int = 3
    temperature: float = 0.0
    lang: str | None = None

    def describe(self, cap: Captioner) -> str:
        """'beam 3, people, name threshold 0.4': the settings a row was decoded with."""
        how = f"sample T={self.temperature:g} seed 0" if self.temperature > 0 else f"beam {max(1, self.beam)}"
        people = "people" if cap.people else "no people"
        return f"{how}, {people}, name threshold {cap.runtime.name_threshold:g}"


def caption_loaded(
    cap: Captioner, loaded: list[np.ndarray | ImageError], how: Decoding, n_best: int = 1
) -> list[Result | ImageError]:
    """Captions of a batch of loaded images (ImageError where an image could not be read), in order."""
    good = [x for x in loaded if isinstance(x, np.ndarray)]
    got = iter(cap.caption_tensors(np.stack(good), how.beam, n_best, how.temperature, lang=how.lang) if good else [])
    return [x if isinstance(x, ImageError) else next(got) for x in loaded]


def load_image(cap: Captioner, image: ImageLike) -> np.ndarray | ImageError:
    """The encoder's input for one image, or the ImageError that says why it cannot be read."""
    try:
        return cap.prepare(image)
    except ImageError as e:
        return e


RUN_KEYS = ("model_sha256", "decoding", "language")  # a row made by another run of these is not skipped


def run_fields(cap: Captioner, how: Decoding) -> dict[str, str]:
    """What every row of one run says about how it was made: language, decoding, model and the model's hash."""
    info = cap.runtime.info
    return {
        "language": cap.runtime.vocab.language(how.lang),
        "decoding": how.describe(cap),
        "model": info["model"],
        "model_sha256": info["sha256"],
    }


def row(path: str, got: Result | ImageError, fields: dict[str, str]) -> dict[str, Any]:
    """The output row of one image (module docstring); fields: run_fields of its run."""
    out: dict[str, Any] = {"path": path}
    if isinstance(got, ImageError):
        out["error"] = str(got)
    else:
        out |= {"caption": got.caption, "confidence": round(got.confidence, 4)}
    return out | fields


def read_rows(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The rows of an output file and the length in bytes of its whole lines (a line a kill cut short has no
    newline and is not a row); a whole line that is not a row is an error naming the file and line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    end = data.rfind(b"\n") + 1
    rows = []
    for k, line in enumerate(data[:end].splitlines(), 1):
        try:
            r = json.loads(line)
        except ValueError:
            r = None
        if not isinstance(r, dict) or not isinstance(r.get("path"), str) or "model_sha256" not in r:
            raise CaptionerError(f"{path}:{k}: not a caption row; give --out a new file or one captioner wrote")
        rows.append(r)
    return rows, end


class RowFile:
    """An output file open for appending rows; opening it cuts off a line a kill left unfinished."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows, end = read_rows(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        if os.fstat(self.fd).st_size != end:
            os.ftruncate(self.fd, end)

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Write the rows in one append and fsync them."""
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


def shard_file(out: Path, i: int, n: int) -> Path:
    """Where shard i of n writes: captions.jsonl -> captions.shard-0-of-2.jsonl."""
    return out.with_name(f"{out.stem}.shard-{i}-of-{n}{out.suffix}")


def unique(paths: list[str]) -> list[str]:
    """The paths in order, each once (a path listed twice is captioned once)."""
    return list(dict.fromkeys(paths))


def caption_to_file(
    cap: Captioner,
    paths: list[str],
    out: Path,
    how: Decoding,
    batch_size: int = 16,
    shard: tuple[int, int] | None = None,
    err: TextIO | None = None,
    progress: bool = False,
) -> tuple[int, int, int]:
    """Caption the paths (with shard=(i, n), the i-th of n contiguous blocks) into out (its shard file), skipping
    those it already holds from this model and decoding; returns (captioned, skipped, failed) of this run."""
    paths = unique(paths)
    if shard:
        lo, hi = shard_bounds(len(paths), *shard, batch_size)
        paths, out = paths[lo:hi], shard_file(out, *shard)
    cap.rules(how.lang)  # an unknown language fails before any file is opened
    f = RowFile(out)
    fields = run_fields(cap, how)
    done = {r["path"] for r in f.rows if all(r[k] == fields[k] for k in RUN_KEYS)}
    todo = [p for p in paths if p not in done]
    captioned = failed = 0
    try:
        with Ticker(len(todo), "caption", "img", quiet=not progress) as bar:
            for chunk, loaded in prefetched(todo, lambda p: load_image(cap, p), batch_size):
                rows = [row(p, g, fields) for p, g in zip(chunk, caption_loaded(cap, loaded, how), strict=True)]
                f.append(rows)
                for r in rows:
                    if "error" in r and err is not None:
                        print(f"{r['path']}\tERROR: {r['error']}", file=err)
                failed += sum("error" in r for r in rows)
                captioned += len(rows)
                bar.update(len(chunk))
    finally:
        f.close()
    return captioned, len(paths) - len(todo), failed


def merge(paths: list[str], out: Path, n: int) -> int:
    """Join the n shard files of out into out, in input order, once every input has its row; returns the rows."""
    paths = unique(paths)
    found: dict[str, dict[str, Any]] = {}
    for i in range(n):
        rows, _ = read_rows(shard_file(out, i, n))
        found |= {r["path"]: r for r in rows}
    missing = [p for p in paths if p not in found]
    if missing:
        raise CaptionerError(
            f"--merge {n}: {len(missing)} inputs have no row in {shard_file(out, 0, n).name} .. "
            f"{shard_file(out, n - 1, n).name} (first: {missing[0]}); finish those shards first"
        )
    write_bytes(out, "".join(json.dumps(found[p], ensure_ascii=False) + "\n" for p in paths).encode("utf-8"))
    return len(paths)
