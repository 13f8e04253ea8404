"""The seminar's data: caption_tokens.pcl (or .pkl) and image_codes.npy, rows aligned, no image files.

The pickle is a Python 2 list of 123,287 lists of 5-7 tokenized caption strings; it is read by a restricted
unpickler that builds only lists and strings. The rows follow Karpathy's dataset_coco.json; with that file the
Karpathy split is used after every row's captions are checked against its tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from captioner.data.manifest import Item, split_by_hash
from captioner.errors import CaptionerError
from captioner.files import read_json
from captioner.unpickle import safe_unpickle

CAPTION_FILES = ("caption_tokens.pcl", "caption_tokens.pkl")  # the tarball's name, and the notebook's
CODES = "image_codes.npy"
Ratios = tuple[float, float, float]


def caption_file(src: Path) -> Path:
    """The captions pickle in the seminar's data folder, under either of its names."""
    for name in CAPTION_FILES:
        if (src / name).is_file():
            return src / name
    raise CaptionerError(f"{src}: no {' or '.join(CAPTION_FILES)} (the seminar's data/ folder)")


def read_captions(path: Path) -> list[list[str]]:
    """The captions pickle as a list (one per image) of lists of caption strings."""
    obj = safe_unpickle(path.read_bytes(), str(path), arrays=False)
    if not isinstance(obj, list):
        raise CaptionerError(f"{path}: expected a list of caption lists, got {type(obj).__name__}")
    for i, caps in enumerate(obj):
        if not isinstance(caps, list) or not caps or not all(isinstance(c, str) for c in caps):
            raise CaptionerError(f"{path}: row {i} is not a non-empty list of caption strings")
    return obj


def read_codes(src: Path, rows: int) -> np.ndarray:
    """image_codes.npy memory-mapped (never unpickled), checked to have one float row per caption row."""
    path = src / CODES
    try:
        codes = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise CaptionerError(f"{path}: not found (the seminar's GoogLeNet codes)") from None
    except ValueError as e:
        raise CaptionerError(f"{path}: not a numeric .npy array ({e})") from None
    if codes.ndim != 2 or codes.dtype.kind != "f" or len(codes) != rows:
        raise CaptionerError(
            f"{path}: shape {codes.shape} {codes.dtype}, expected ({rows}, D) floats: one row per caption row"
        )
    return codes


def karpathy_rows(path: Path, captions: list[list[str]]) -> list[tuple[str, str]]:
    """(image path, split) per row from dataset_coco.json, after checking it matches the captions row by row."""
    data = read_json(path, "Karpathy split JSON")
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list) or len(images) != len(captions):
        got = len(images) if isinstance(images, list) else "no"
        raise CaptionerError(f"{path}: {got} images, but the captions pickle has {len(captions)} rows")
    out = []
    for i, (im, caps) in enumerate(zip(images, captions, strict=True)):
        try:
            theirs = [" ".join(s["tokens"]) for s in im["sentences"]]
            image, split = f"{im['filepath']}/{im['filename']}", str(im["split"])
        except (KeyError, TypeError):
            raise CaptionerError(f"{path}: images[{i}] lacks filepath, filename, split or sentences' tokens") from None
        if theirs != caps:
            raise CaptionerError(
                f"{path}: images[{i}] ({image}) does not match caption row {i}: "
                f"{theirs[:1]!r} vs {caps[:1]!r}; the rows must follow dataset_coco.json"
            )
        out.append((image, "train" if split == "restval" else split))
    return out


def seed(
    src: Path, ratios: Ratios = (0.8, 0.1, 0.1), karpathy: str | Path | None = None, **_: object
) -> Iterator[Item]:
    """Items for the seminar's data folder; images are row ids (seed/000000) or Karpathy's file paths."""
    if not src.is_dir():
        raise CaptionerError(f"{src}: not a folder (give the seminar's data/ folder)")
    captions = read_captions(caption_file(src))
    read_codes(src, len(captions))
    if karpathy:
        rows = karpathy_rows(Path(karpathy), captions)
    else:
        names = [f"seed/{i:06d}" for i in range(len(captions))]
        rows = [(n, split_by_hash(n, ratios)) for n in names]
    for (image, split), caps in zip(rows, captions, strict=True):
        yield Item(image, list(caps), split, "seed", langs=["en"] * len(caps))  # COCO's English captions
