"""Shared fixtures: tiny datasets in real schemas, one encoder per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from captioner.encoders import Encoder, load_encoder


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return load_encoder("efficientnet-lite0")


def make_image(path: Path, seed: int, size: tuple[int, int] = (64, 48)) -> Path:
    """A small random-blocks RGB image, different for each seed."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize(size, Image.Resampling.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


@pytest.fixture
def folder_dataset(tmp_path: Path) -> Path:
    """A folder of 12 images with same-named caption files."""
    src = tmp_path / "src"
    words = ["red", "blue", "green"]
    for i in range(12):
        make_image(src / f"img{i:02d}.png", i)
        (src / f"img{i:02d}.txt").write_text(f"A {words[i % 3]} square number {i}.\nline two ignored\n")
    return src
