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

import torch
from common import make_photos

from captioner.corpus.prepare import prepare
from captioner.features.encoders import load_encoder
from captioner.features.extract import extract
from captioner.features.images import open_image


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
