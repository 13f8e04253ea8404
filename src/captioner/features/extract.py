"""extract(): cached encoder features for every image of a manifest, as resumable fp16 memmaps."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap
from torch.utils.data import DataLoader, Dataset

from captioner.data.manifest import dataset_root, read_manifest, shard_bounds
from captioner.errors import CaptionerError
from captioner.features.encoders import Encoder, EncoderSpec, load_encoder, preprocess
from captioner.features.images import ImageError, open_image
from captioner.files import read_json, write_json
from captioner.ticker import Ticker

log = logging.getLogger(__name__)
INDEX, PROGRESS, SPEC = "index.json", "progress.json", "encoder.json"
FORMAT_VERSION = 1


class _Images(Dataset):
    def __init__(self, root: Path, images: list[str], spec: EncoderSpec, start: int) -> None:
        self.root, self.images, self.spec, self.start = root, images, spec, start

    def __len__(self) -> int:
        return len(self.images) - self.start

    def __getitem__(self, k: int) -> tuple[int, np.ndarray | None, str]:
        i = k + self.start
        try:
            return i, preprocess(open_image(self.root / self.images[i]), self.spec), ""
        except ImageError as e:
            return i, None, str(e)


def _collate(batch: list) -> tuple[list[int], torch.Tensor | None, dict[int, str]]:
    ok = [(i, x) for i, x, _ in batch if x is not None]
    failed = {i: err for i, x, err in batch if x is None}
    xs = torch.from_numpy(np.stack([x for _, x in ok])) if ok else None
    return [i for i, _ in ok], xs, failed


@dataclass
class ExtractReport:
    """What extract() did."""

    total: int
    extracted: int
    resumed_from: int
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _list_hash(images: list[str]) -> str:
    return hashlib.sha1("\n".join(images).encode("utf-8")).hexdigest()


def _shapes(spec: EncoderSpec, n: int, grid: bool) -> dict[str, tuple[int, ...]]:
    shapes = {"pooled": (n, spec.pooled_dim), "logits": (n, spec.num_classes)}
    if grid:
        shapes["grid"] = (n, spec.grid_size**2, spec.grid_dim)
    return shapes


def extract(
    data_dir: str | Path,
    out_dir: str | Path,
    encoder: str | Encoder = "efficientnet-lite0",
    grid: bool = False,
    batch_size: int = 32,
    workers: int = 2,
    shard: tuple[int, int] | None = None,
    encoder_weights: str | Path | None = None,
) -> ExtractReport:
    """Encode every manifest image into out_dir/{pooled,logits[,grid]}.npy; rerun to resume.

    With shard=(i, n), only the i-th of n contiguous, batch-aligned blocks of the manifest is encoded,
    into out_dir/shard-i-of-n/; merge_shards() joins them."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    items = read_manifest(data_dir)
    root = dataset_root(data_dir)
    images = [it.image for it in items]
    meta = {"version": FORMAT_VERSION, "images_sha1": _list_hash(images), "grid": grid}
    if shard:
        lo, hi = shard_bounds(len(images), *shard, batch_size)
        out_dir = out_dir / f"shard-{shard[0]}-of-{shard[1]}"
        meta["shard"] = [shard[0], shard[1], lo, hi]
        images = images[lo:hi]
    enc = load_encoder(encoder, encoder_weights) if isinstance(encoder, str) else encoder
    spec, n = enc.spec, len(images)
    meta["spec"] = spec.to_json()
    shapes = _shapes(spec, n, grid)
    start, failed = _resume_point(out_dir, meta)
    if start == n and (out_dir / INDEX).exists():
        log.info("%s: already complete (%d images)", out_dir, n)
        return ExtractReport(n, 0, n, failed)
    out_dir.mkdir(parents=True, exist_ok=True)
    mode = "r+" if start > 0 else "w+"
    arrays = {k: open_memmap(out_dir / f"{k}.npy", mode=mode, dtype=np.float16, shape=s) for k, s in shapes.items()}
    if start == 0:
        write_json(out_dir / SPEC, spec.to_json())
        write_json(out_dir / PROGRESS, {**meta, "done": 0, "failed": {}})
    loader = DataLoader(
        _Images(root, images, spec, start),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate,
        prefetch_factor=4 if workers else None,
    )
    t0, done = time.perf_counter(), start
    with Ticker(n, "extract", "img", start) as bar:
        for rows, xs, bad in loader:
            _store_batch(enc, arrays, rows, xs)
            for i, err in bad.items():
                log.warning("%s: skipped: %s", root / images[i], err)
                failed[images[i]] = err
            done += len(rows) + len(bad)
            write_json(out_dir / PROGRESS, {**meta, "done": done, "failed": failed})  # after the rows are flushed
            bar.update(len(rows) + len(bad))
    write_json(out_dir / INDEX, {**meta, "images": images, "failed": failed, "outputs": sorted(arrays)})
    (out_dir / PROGRESS).unlink(missing_ok=True)
    if failed:
        log.warning("%d of %d images were skipped (see warnings above)", len(failed), n)
    return ExtractReport(n, done - start - len(failed), start, failed, time.perf_counter() - t0)


def _store_batch(enc: Encoder, arrays: dict[str, np.ndarray], rows: list[int], xs: torch.Tensor | None) -> None:
    """Encode a batch into the given rows of every output array, and flush them to disk."""
    if xs is not None:
        feats = enc.forward_features(xs)
        for key in arrays:
            arrays[key][rows] = getattr(feats, key).float().numpy().astype(np.float16)
    for a in arrays.values():
        a.flush()  # type: ignore[attr-defined]


def write_store(out_dir: Path, images: list[str], kind: str, rows: np.ndarray, spec: EncoderSpec) -> None:
    """A feature store of precomputed rows (row i belongs to images[i]), values kept as given in float32."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = open_memmap(out_dir / f"{kind}.npy", mode="w+", dtype=np.float32, shape=(len(images), rows.shape[1]))
    for s in range(0, len(rows), 4096):  # in blocks: a 123k x 1000 store never sits in memory twice
        dst[s : s + 4096] = rows[s : s + 4096]
    dst.flush()
    meta = {"version": FORMAT_VERSION, "images_sha1": _list_hash(images), "grid": False, "spec": spec.to_json()}
    write_json(out_dir / SPEC, spec.to_json())
    write_json(out_dir / INDEX, {**meta, "images": images, "failed": {}, "outputs": [kind]})


def merge_shards(data_dir: str | Path, out_dir: str | Path, n: int) -> ExtractReport:
    """Check that all n shards under out_dir are complete and alike, then join them into out_dir."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    images = [it.image for it in read_manifest(data_dir)]
    parts = []
    for i in range(n):
        path = out_dir / f"shard-{i}-of-{n}" / INDEX
        if not path.exists():
            raise CaptionerError(
                f"{path.parent}: shard {i} of {n} is missing or unfinished; run extract --shard {i}/{n}"
            )
        parts.append((path.parent, read_json(path, "shard index")))
    first = parts[0][1]
    for d, idx in parts:
        if idx["images_sha1"] != _list_hash(images) or idx["spec"] != first["spec"] or idx["grid"] != first["grid"]:
            raise CaptionerError(f"{d}: made from another manifest or encoder settings than shard 0")
    joined = [im for _, idx in parts for im in idx["images"]]
    if joined != images:
        raise CaptionerError(
            f"{out_dir}: the {n} shards do not cover the manifest exactly ({len(joined)} vs {len(images)})"
        )
    failed = {k: v for _, idx in parts for k, v in idx["failed"].items()}
    for kind in first["outputs"]:
        srcs = [np.load(d / f"{kind}.npy", mmap_mode="r") for d, _ in parts]
        dst = open_memmap(out_dir / f"{kind}.npy", mode="w+", dtype=np.float16, shape=(len(images), *srcs[0].shape[1:]))
        row = 0
        for a in srcs:
            for s in range(0, len(a), 4096):  # copy in blocks: never the whole array in memory
                dst[row + s : row + s + len(a[s : s + 4096])] = a[s : s + 4096]
            row += len(a)
        dst.flush()
    meta = {
        "version": FORMAT_VERSION,
        "images_sha1": first["images_sha1"],
        "grid": first["grid"],
        "spec": first["spec"],
    }
    write_json(out_dir / SPEC, first["spec"])
    write_json(out_dir / INDEX, {**meta, "images": images, "failed": failed, "outputs": first["outputs"]})
    return ExtractReport(len(images), len(images) - len(failed), 0, failed)


def _resume_point(out_dir: Path, meta: dict) -> tuple[int, dict[str, str]]:
    """How many images a previous run of the same job finished (0 if none or a different job)."""
    for name in (INDEX, PROGRESS):
        path = out_dir / name
        if path.exists():
            prev = read_json(path, "extraction state")
            same = all(prev.get(k) == v for k, v in meta.items())
            if not same:
                log.warning("%s: made from other images or encoder settings; starting over", path)
                return 0, {}
            done = len(prev["images"]) if name == INDEX else int(prev["done"])
            return done, dict(prev.get("failed", {}))
    return 0, {}


class FeatureStore:
    """Read-only view of an extraction: rows by image path, memory-mapped (never loaded whole)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        index = read_json(self.path / INDEX, "feature index (is the extraction finished?)")
        if index.get("version") != FORMAT_VERSION:
            raise CaptionerError(f"{self.path / INDEX}: feature format {index.get('version')}, expected 1")
        self.spec = EncoderSpec.from_json(index["spec"], str(self.path / INDEX))
        self.images: list[str] = index["images"]
        self.failed: dict[str, str] = index["failed"]
        self.row = {im: i for i, im in enumerate(self.images) if im not in self.failed}
        self.arrays = {k: np.load(self.path / f"{k}.npy", mmap_mode="r") for k in index["outputs"]}

    def get(self, kind: str, rows: np.ndarray | list[int]) -> np.ndarray:
        """Float32 copy of the given rows of 'pooled', 'logits', 'grid', or a '+'-joined concatenation."""
        if "+" in kind:
            return np.concatenate([self.get(k, rows) for k in kind.split("+")], axis=1)
        if kind not in self.arrays:
            raise CaptionerError(f"{self.path}: no '{kind}' features (extract with --grid for attention)")
        return np.asarray(self.arrays[kind][rows], dtype=np.float32)
