"""End-to-end caption speed, from JPEG on disk to caption, against the bare encoder forward in the same run.

    python bench/caption_speed.py [--checkpoint DIR] [--images 200]

Single image: decode + resize + encoder + beam-3 decoding at batch 1, best of 10 runs.
Folder: `captioner caption` over N JPEGs (640x480) at batch 16, with decoding overlapped.
Both are printed as ratios to the bare encoder forward on the same tensors, in fp32 and with the
encoder under bf16 autocast (the share of captions that stay identical is printed too).
Goals on 2 cores: pipeline overhead <= 25% over the encoder, <= 50 ms per single image, >= 40 img/s.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import torch
from photos import make_photos

from captioner.api import Captioner
from captioner.caption import caption_paths
from captioner.images import open_image


def best_of(fn, reps: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run(cap: Captioner, paths: list[Path], batch: int) -> tuple[dict[str, float], list[str]]:
    x1 = cap.encoder.preprocess(open_image(paths[0]))[None]
    xb = torch.stack([cap.encoder.preprocess(open_image(p)) for p in paths[:batch]])
    enc1 = best_of(lambda: cap.encoder.forward_features(x1), 10)
    encb = best_of(lambda: cap.encoder.forward_features(xb), 3) / batch
    single = best_of(lambda: caption_paths(cap, [str(paths[0])], io.StringIO(), io.StringIO(), batch_size=1), 10)
    out = io.StringIO()
    t = time.perf_counter()
    caption_paths(cap, [str(p) for p in paths], out, io.StringIO(), batch_size=batch)
    folder = (time.perf_counter() - t) / len(paths)
    caps = [line.split("\t", 1)[1] for line in out.getvalue().splitlines()]
    return {"enc1_ms": enc1 * 1e3, "single_ms": single * 1e3, "encb_ips": 1 / encb, "folder_ips": 1 / folder}, caps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", help="default: the bundled model")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_photos(Path(tmp), a.images, captions=False)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.images} JPEGs 640x480, beam 3")
        results = {}
        for bf16 in (False, True):
            cap = Captioner.load(a.checkpoint, bf16=bf16)
            r, caps = run(cap, paths, a.batch_size)
            results[bf16] = caps
            name = "bf16 encoder" if bf16 else "fp32"
            print(
                f"{name}: single image {r['single_ms']:.1f} ms end to end vs encoder {r['enc1_ms']:.1f} ms "
                f"(ratio {r['single_ms'] / r['enc1_ms']:.2f}); folder {r['folder_ips']:.1f} img/s vs encoder "
                f"{r['encb_ips']:.1f} img/s (ratio {r['folder_ips'] / r['encb_ips']:.2f})"
            )
        same = sum(a == b for a, b in zip(results[False], results[True], strict=True)) / len(results[False])
        print(f"captions identical between fp32 and bf16 encoder: {same:.1%}")
        print("goals: ratio single <= 1.25 and folder >= 0.8; single <= 50 ms; folder >= 40 img/s")


if __name__ == "__main__":
    main()
