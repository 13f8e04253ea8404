"""Importers: one small function per dataset format, each yielding manifest Items."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from captioner.data.manifest import Item, check_lang, check_relative, clean_caption, group_captions, split_by_hash
from captioner.data.seed import seed
from captioner.errors import CaptionerError
from captioner.files import read_json

log = logging.getLogger(__name__)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
Ratios = tuple[float, float, float]


def _field(obj: object, key: str, typ: type | tuple[type, ...], where: str) -> object:
    if not isinstance(obj, dict) or key not in obj:
        raise CaptionerError(f"{where}: missing field '{key}'")
    if not isinstance(obj[key], typ):
        raise CaptionerError(f"{where}.{key}: wrong type {type(obj[key]).__name__}")
    return obj[key]


def karpathy(src: Path, keep_restval: bool = False, allow_outside_root: bool = False, **_: object) -> Iterator[Item]:
    """Karpathy-split JSON (dataset_coco/flickr8k/flickr30k.json); restval folds into train by default."""
    data = read_json(src, "Karpathy split JSON")
    images = _field(data, "images", list, str(src))
    seen: set[str] = set()
    for i, im in enumerate(images):  # type: ignore[arg-type]
        where = f"{src}: images[{i}]"
        name = str(_field(im, "filename", str, where))
        image = check_relative(f"{im['filepath']}/{name}" if im.get("filepath") else name, where, allow_outside_root)
        split = str(_field(im, "split", str, where))
        if split == "restval" and not keep_restval:
            split = "train"
        if split not in ("train", "val", "test", "restval"):
            raise CaptionerError(f"{where}.split: unknown split {split!r}")
        if image in seen:
            raise CaptionerError(f"{where}: duplicate image {image!r}")
        seen.add(image)
        caps = []
        for j, s in enumerate(_field(im, "sentences", list, where)):  # type: ignore[arg-type]
            raw = s.get("raw") if isinstance(s, dict) else None
            if raw is None and isinstance(s, dict) and isinstance(s.get("tokens"), list):
                raw = " ".join(s["tokens"])
            if not isinstance(raw, str):
                raise CaptionerError(f"{where}.sentences[{j}]: needs 'raw' text or 'tokens'")
            text = clean_caption(raw, f"{where}.sentences[{j}]")
            if text:
                caps.append(text)
        if caps:
            extra = {"id": im["cocoid"]} if "cocoid" in im else {}
            split = split if split != "restval" else "train"
            yield Item(image, caps, split, src.stem, extra=extra, langs=["en"] * len(caps))


def coco(
    src: Path, split: str | None = None, ratios: Ratios = (0.8, 0.1, 0.1), allow_outside_root: bool = False, **_: object
) -> Iterator[Item]:
    """COCO captions JSON (captions_*.json); the split is given, or drawn by hash with `ratios`."""
    data = read_json(src, "COCO captions JSON")
    files: dict[int, str] = {}
    for i, im in enumerate(_field(data, "images", list, str(src))):  # type: ignore[arg-type]
        where = f"{src}: images[{i}]"
        iid = _field(im, "id", int, where)
        if iid in files:
            raise CaptionerError(f"{where}: duplicate image id {iid}")
        files[iid] = str(_field(im, "file_name", str, where))  # type: ignore[index]
    pairs = []
    for i, ann in enumerate(_field(data, "annotations", list, str(src))):  # type: ignore[arg-type]
        where = f"{src}: annotations[{i}]"
        iid = _field(ann, "image_id", int, where)
        if iid not in files:
            raise CaptionerError(f"{where}: image_id {iid} is not in 'images'")
        pairs.append((files[iid], str(_field(ann, "caption", str, where)), "en", where))  # type: ignore[index]
    ids = {name: iid for iid, name in files.items()}
    for image, caps, langs in group_captions(pairs, allow_outside_root):
        yield Item(image, caps, split or split_by_hash(image, ratios), src.stem, extra={"id": ids[image]}, langs=langs)


def flickr8k(
    src: Path, ratios: Ratios = (0.8, 0.1, 0.1), allow_outside_root: bool = False, **_: object
) -> Iterator[Item]:
    """Flickr8k: Flickr8k.token.txt plus Flickr_8k.{train,dev,test}Images.txt in the folder `src`."""
    folder = src if src.is_dir() else src.parent
    token_file = src if src.is_file() else folder / "Flickr8k.token.txt"
    lists = {"train": "trainImages", "val": "devImages", "test": "testImages"}
    split_of: dict[str, str] = {}
    for split, stem in lists.items():
        f = folder / f"Flickr_8k.{stem}.txt"
        if f.exists():
            for line in _read_lines(f):
                if line.strip():
                    split_of[line.strip()] = split
    if not split_of:
        log.warning("%s: no Flickr_8k.*Images.txt lists; splitting by hash", folder)
    pairs = []
    for n, line in enumerate(_read_lines(token_file), 1):
        if not line.strip():
            continue
        where = f"{token_file}:{n}"
        key, tab, caption = line.partition("\t")
        if not tab or "#" not in key:
            raise CaptionerError(f"{where}: expected '<file>#<n><TAB><caption>'")
        pairs.append((key.rsplit("#", 1)[0], caption, "en", where))
    dropped = 0
    for image, caps, langs in group_captions(pairs, allow_outside_root):
        split = split_of.get(image) if split_of else split_by_hash(image, ratios)
        if split is None:
            dropped += 1
            continue
        yield Item(image, caps, split, "flickr8k", langs=langs)
    if dropped:
        log.warning("%s: %d images are in no split list and were left out", token_file, dropped)


def _read_lines(path: Path) -> list[str]:
    try:
        return [line.rstrip("\r") for line in path.read_text(encoding="utf-8").split("\n")]
    except FileNotFoundError as e:
        raise CaptionerError(f"{path}: file not found") from e
    except UnicodeDecodeError as e:
        raise CaptionerError(f"{path}: not UTF-8 text (byte {e.start})") from e


def _row_split(row: dict, image: str, ratios: Ratios, where: str) -> str:
    split = str(row.get("split") or "").strip() or split_by_hash(image, ratios)
    split = {"restval": "train", "dev": "val"}.get(split, split)
    if split not in ("train", "val", "test"):
        raise CaptionerError(f"{where}: unknown split {split!r}")
    return split


def table(
    src: Path, ratios: Ratios = (0.8, 0.1, 0.1), allow_outside_root: bool = False, lang: str = "en", **_: object
) -> Iterator[Item]:
    """CSV (header with image,caption[,split][,lang]) or JSONL ({"image", "caption" or "captions"[, "split"]
    [, "lang"]}); a row without a language is in `lang` (--lang, default English)."""
    rows: list[tuple[dict, str]] = []
    if src.suffix.lower() in (".jsonl", ".ndjson"):
        for n, line in enumerate(_read_lines(src), 1):
            if line.strip():
                try:
                    rows.append((json.loads(line), f"{src}:{n}"))
                except json.JSONDecodeError as e:
                    raise CaptionerError(f"{src}:{n}: invalid JSON ({e.msg})") from e
    else:
        lines = _read_lines(src)
        reader = csv.DictReader(lines)
        if not reader.fieldnames or "image" not in reader.fieldnames:
            raise CaptionerError(f"{src}: CSV header must name an 'image' and a 'caption' column")
        try:
            rows = [(r, f"{src}:{n}") for n, r in enumerate(reader, 2)]
        except csv.Error as e:
            raise CaptionerError(f"{src}: malformed CSV ({e})") from e
    pairs, splits = [], {}
    for row, where in rows:
        if not isinstance(row, dict) or not isinstance(row.get("image"), str):
            raise CaptionerError(f"{where}: field 'image' missing or not a string")
        caps = row.get("captions", row.get("caption"))
        caps = [caps] if isinstance(caps, str) else caps
        if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
            raise CaptionerError(f"{where}: field 'caption' missing or not text")
        splits.setdefault(row["image"], _row_split(row, row["image"], ratios, where))
        row_lang = str(row.get("lang") or "").strip() or lang
        pairs += [(row["image"], c, row_lang, where) for c in caps]
    for image, caps, langs in group_captions(pairs, allow_outside_root):
        yield Item(image, caps, splits.get(image) or split_by_hash(image, ratios), src.stem, langs=langs)


def folder(src: Path, ratios: Ratios = (0.8, 0.1, 0.1), lang: str = "en", **_: object) -> Iterator[Item]:
    """A folder of images, each with a same-named .txt whose first line is the caption, in `lang` (--lang)."""
    check_lang(lang, "--lang")
    if not src.is_dir():
        raise CaptionerError(f"{src}: not a folder")
    missing = 0
    for path in sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_EXTS):
        txt = path.with_suffix(".txt")
        if not txt.exists():
            missing += 1
            continue
        lines = _read_lines(txt)
        caption = clean_caption(lines[0], f"{txt}:1") if lines else None
        if caption:
            rel = path.relative_to(src).as_posix()
            yield Item(rel, [caption], split_by_hash(rel, ratios), "folder", langs=[lang])
    if missing:
        log.warning("%s: %d images have no .txt caption and were left out", src, missing)


IMPORTERS: dict[str, Callable[..., Iterator[Item]]] = {
    "seed": seed,
    "karpathy": karpathy,
    "coco": coco,
    "flickr8k": flickr8k,
    "csv": table,
    "jsonl": table,
    "folder": folder,
}
