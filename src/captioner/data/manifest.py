"""The manifest: one JSON object a line, the single normalized form of every dataset."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from captioner.errors import CaptionerError
from captioner.files import read_json, write_json, write_jsonl

SPLITS = ("train", "val", "test")
MANIFEST = "manifest.jsonl"
DATASET = "dataset.json"
MAX_CAPTION_CHARS = 2000


UNDETERMINED = "und"  # BCP-47 for "language not known"; manifests written before languages were recorded read so
_LANG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")  # a BCP-47 tag: language, then script/region/variant subtags


@dataclass(frozen=True)
class Item:
    """One image and its reference captions, each with the language it is written in (langs[i] for captions[i])."""

    image: str  # path relative to the dataset root, '/'-separated
    captions: list[str]
    split: str
    source: str = ""
    license: str = ""
    extra: dict = field(default_factory=dict)
    langs: list[str] = field(default_factory=list)  # BCP-47 tags, one per caption; empty means all undetermined

    def __post_init__(self) -> None:
        if not self.langs:
            object.__setattr__(self, "langs", [UNDETERMINED] * len(self.captions))

    def to_json(self) -> dict:
        d = asdict(self)
        return {k: v for k, v in d.items() if v not in ("", {})}


def check_lang(tag: str, where: str) -> str:
    """A BCP-47 language tag such as 'en', 'ru' or 'pt-BR', or an error naming where it came from."""
    if not isinstance(tag, str) or not _LANG.fullmatch(tag):
        raise CaptionerError(f"{where}: {tag!r} is not a BCP-47 language tag such as 'en', 'ru' or 'pt-BR'")
    return tag


def split_by_hash(key: str, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> str:
    """Deterministic train/val/test assignment from a stable hash of `key`."""
    h = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big") / 2**64
    if h < ratios[0]:
        return "train"
    return "val" if h < ratios[0] + ratios[1] else "test"


def parse_ratios(text: str) -> tuple[float, float, float]:
    """Parse 'train,val,test' fractions such as '0.8,0.1,0.1'."""
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError as e:
        raise CaptionerError(f"--split-ratio: expected three numbers like 0.8,0.1,0.1, got {text!r}") from e
    if len(parts) != 3 or any(p < 0 for p in parts) or abs(sum(parts) - 1) > 1e-6:
        raise CaptionerError(f"--split-ratio: three non-negative fractions summing to 1, got {text!r}")
    return parts  # type: ignore[return-value]


def clean_caption(text: str, where: str) -> str | None:
    """Collapse whitespace; None for an empty caption; an error for an absurdly long one."""
    text = " ".join(str(text).split())
    if not text:
        return None
    if len(text) > MAX_CAPTION_CHARS:
        raise CaptionerError(f"{where}: caption is {len(text)} characters (limit {MAX_CAPTION_CHARS})")
    return text


def check_relative(image: str, where: str, allow_outside_root: bool = False) -> str:
    """Reject image paths that escape the dataset root (absolute, or containing '..') unless allowed."""
    if not image.strip():
        raise CaptionerError(f"{where}: the image path is empty")
    p = PurePosixPath(image.replace("\\", "/"))
    if not allow_outside_root and (p.is_absolute() or ".." in p.parts):
        raise CaptionerError(
            f"{where}: image path {image!r} must be relative to the dataset root "
            "(prepare with --allow-outside-root to permit it)"
        )
    return str(p)


def _item_from_json(obj: object, where: str, allow_outside_root: bool = False) -> Item:
    if not isinstance(obj, dict):
        raise CaptionerError(f"{where}: expected a JSON object")
    for key, typ in (("image", str), ("captions", list), ("split", str)):
        if not isinstance(obj.get(key), typ):
            raise CaptionerError(f"{where}: field '{key}' missing or not a {typ.__name__}")
    if obj["split"] not in SPLITS:
        raise CaptionerError(f"{where}: split {obj['split']!r} is not one of {', '.join(SPLITS)}")
    if not all(isinstance(c, str) for c in obj["captions"]):
        raise CaptionerError(f"{where}: 'captions' must be a list of strings")
    langs = obj.get("langs", [UNDETERMINED] * len(obj["captions"]))
    if not isinstance(langs, list) or len(langs) != len(obj["captions"]):
        raise CaptionerError(f"{where}: 'langs' must list one language tag per caption")
    return Item(
        image=check_relative(obj["image"], where, allow_outside_root),
        captions=list(obj["captions"]),
        split=obj["split"],
        source=str(obj.get("source", "")),
        license=str(obj.get("license", "")),
        extra=dict(obj.get("extra", {})),
        langs=[check_lang(t, f"{where}: langs[{i}]") for i, t in enumerate(langs)],
    )


def read_manifest(path: str | Path) -> list[Item]:
    """Read and validate a manifest; errors name the file and line."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    try:
        # split on newlines only: str.splitlines() also breaks at U+0085/U+2028, which JSON strings may hold
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError as e:
        raise CaptionerError(f"{path}: manifest not found (run `captioner prepare` first)") from e
    except UnicodeDecodeError as e:
        raise CaptionerError(f"{path}: not UTF-8 text") from e
    meta = path.parent / DATASET
    allow = bool(meta.exists() and read_json(meta, "dataset description").get("allow_outside_root"))
    items, seen = [], set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise CaptionerError(f"{where}: invalid JSON ({e.msg})") from e
        item = _item_from_json(obj, where, allow)
        if item.image in seen:
            raise CaptionerError(f"{where}: image {item.image!r} appears twice")
        seen.add(item.image)
        items.append(item)
    if not items:
        raise CaptionerError(f"{path}: manifest is empty")
    return items


def write_manifest(out_dir: str | Path, items: Iterable[Item], root: str | Path, **meta: object) -> Path:
    """Write manifest.jsonl plus dataset.json (image root and provenance) atomically into out_dir."""
    out_dir = Path(out_dir)
    items = list(items)
    write_jsonl(out_dir / MANIFEST, (it.to_json() for it in items))
    write_json(out_dir / DATASET, {"root": _portable_root(Path(root), out_dir), **meta})
    return out_dir / MANIFEST


def _portable_root(root: Path, out_dir: Path) -> str:
    """Store the image root relative to the manifest folder when that is possible."""
    try:
        return os.path.relpath(root.resolve(), out_dir.resolve())
    except ValueError:
        return str(root.resolve())


def dataset_root(data_dir: str | Path) -> Path:
    """The image root recorded in data_dir/dataset.json (relative to data_dir)."""
    data_dir = Path(data_dir)
    meta = read_json(data_dir / DATASET, "dataset description")
    if not isinstance(meta, dict) or not isinstance(meta.get("root"), str):
        raise CaptionerError(f"{data_dir / DATASET}: field 'root' missing")
    return (data_dir / meta["root"]).resolve()


def group_captions(
    pairs: Iterable[tuple[str, str, str, str]], allow_outside_root: bool = False
) -> Iterator[tuple[str, list[str], list[str]]]:
    """Group (image, caption, language, where) rows by image, dropping empty captions; order of first sight.
    Yields (image, captions, their languages)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for image, caption, lang, where in pairs:
        text = clean_caption(caption, where)
        caps = groups.setdefault(check_relative(image, where, allow_outside_root), [])
        if text is not None:
            caps.append((text, check_lang(lang, where)))
    for image, caps in groups.items():
        if caps:
            yield image, [c for c, _ in caps], [lang for _, lang in caps]


def shard_bounds(total: int, i: int, n: int, batch_size: int) -> tuple[int, int]:
    """[lo, hi) of shard i of n: contiguous blocks cut at multiples of batch_size, so every batch matches
    the batches of a single-process run (and so do its bytes)."""
    if not 0 <= i < n:
        raise CaptionerError(f"--shard {i}/{n}: the index must be in 0..{n - 1}")
    batches = math.ceil(total / batch_size)
    return min(total, (batches * i // n) * batch_size), min(total, (batches * (i + 1) // n) * batch_size)
