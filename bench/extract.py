"""Throughput of `captioner extract` against the encoder's bare forward on the same tensors, one run.

    python bench/extract.py [--images 256] [--batch-size 32] [--workers 2]

Prints both rates and their ratio (goal: >= 0.9, i.e. decoding and I/O overlap with compute).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from captioner.encoders import load_encoder
from captioner.features import extract
from captioner.images import open_image
from captioner.prepare import prepare


def make_photos(folder: Path, n: int) -> None:
    """n distinct 640x480 JPEGs cut from scikit-image's real photos (or noise if it is absent)."""
    try:
        import skimage.data as d

        photos = [d.chelsea(), d.coffee(), d.astronaut(), d.rocket()]
    except ImportError:
        photos = [np.random.default_rng(i).integers(0, 255, (512, 512, 3), np.uint8) for i in range(4)]
    rng = np.random.default_rng(0)
    for i in range(n):
        base = Image.fromarray(photos[i % len(photos)])
        w, h = base.size
        box = (
            int(rng.integers(0, w // 4)),
            int(rng.integers(0, h // 4)),
            w - int(rng.integers(0, w // 4)),
            h,
        )
        base.crop(box).resize((640, 480)).save(folder / f"p{i:04d}.jpg", quality=90)
        (folder / f"p{i:04d}.txt").write_text("a photo\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    try:
        (tmp / "src").mkdir()
        make_photos(tmp / "src", a.images)
        prepare("folder", tmp / "src", tmp / "data", min_count=1, ratios=(1.0, 0.0, 0.0))
        enc = load_encoder()
        x = torch.stack([enc.preprocess(open_image(p)) for p in sorted((tmp / "src").glob("*.jpg"))])
        enc.forward_features(x[: a.batch_size])  # warm-up
        t0 = time.perf_counter()
        for s in range(0, len(x), a.batch_size):
            enc.forward_features(x[s : s + a.batch_size])
        bare = len(x) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        extract(tmp / "data", tmp / "f", enc, batch_size=a.batch_size, workers=a.workers)
        full = a.images / (time.perf_counter() - t0)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.images} JPEGs 640x480")
        print(f"bare encoder forward: {bare:6.1f} img/s")
        print(f"captioner extract:    {full:6.1f} img/s (decode, resize, forward, fp16 memmap write)")
        print(f"ratio extract/bare:   {full / bare:.3f}  (goal >= 0.9)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
