"""Benchmark inputs: distinct JPEG photos cut from scikit-image's real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_photos(folder: Path, n: int, size: tuple[int, int] = (640, 480), captions: bool = True) -> list[Path]:
    """n distinct JPEGs (random crops of scikit-image photos, or noise if it is absent), with .txt captions."""
    try:
        import skimage.data as d

        photos = [d.chelsea(), d.coffee(), d.astronaut(), d.rocket()]
    except ImportError:
        photos = [np.random.default_rng(i).integers(0, 255, (512, 512, 3), np.uint8) for i in range(4)]
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        base = Image.fromarray(photos[i % len(photos)])
        w, h = base.size
        box = (int(rng.integers(0, w // 4)), int(rng.integers(0, h // 4)), w - int(rng.integers(0, w // 4)), h)
        path = folder / f"p{i:04d}.jpg"
        base.crop(box).resize(size).save(path, quality=90)
        if captions:
            path.with_suffix(".txt").write_text("a photo\n")
        out.append(path)
    return out
