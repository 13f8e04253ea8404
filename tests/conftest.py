"""Shared fixtures: tiny datasets in real schemas, one encoder per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from captioner.features.encoders import Encoder, load_encoder


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


COLORS = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220), "yellow": (230, 230, 20)}


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    """24 drawn shapes ("a red circle", ...) prepared and extracted with the grid; about 3:1 train:val."""
    from PIL import ImageDraw

    from captioner.corpus.prepare import prepare
    from captioner.features.extract import extract

    root = tmp_path_factory.mktemp("shapes")
    (root / "src").mkdir()
    for name, rgb in COLORS.items():
        for shape in ("square", "circle"):
            for k in range(3):
                img = Image.new("RGB", (64, 64), (255, 255, 255))
                box = (8 + 3 * k, 8 + 2 * k, 56 - k, 56 - 2 * k)
                draw = ImageDraw.Draw(img)
                (draw.rectangle if shape == "square" else draw.ellipse)(box, fill=rgb)
                img.save(root / "src" / f"{name}_{shape}_{k}.png")
                (root / "src" / f"{name}_{shape}_{k}.txt").write_text(f"a {name} {shape}\n")
    prepare("folder", root / "src", root / "data", min_count=1, ratios=(0.75, 0.25, 0.0))
    extract(root / "data", root / "data" / "features", encoder, grid=True, workers=0)
    return root / "data"


@pytest.fixture(scope="session")
def tiny_checkpoint(shapes_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Show-and-Tell checkpoint trained for a few seconds on the shapes data (it learns them)."""
    from captioner.cli.main import main

    out = tmp_path_factory.mktemp("tinyrun")
    args = [
        f"train.data={shapes_data}",
        f"train.out={out}",
        "train.epochs=2",
        "train.steps_per_epoch=30",
        "train.batch_size=18",
        "train.lr=0.01",
        "model.dropout=0",
    ]
    assert main(["train", *args]) == 0
    return out / "best"


@pytest.fixture(scope="session")
def bundled_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled model exported with its int8 graphs (captioner export --int8)."""
    pytest.importorskip("onnxruntime")
    from captioner.runtime.export import export

    out = tmp_path_factory.mktemp("export")
    export(Path(__file__).parents[1] / "src" / "captioner" / "bundled" / "open-clipart", out, int8=True)
    return out
