"""Image loading: every mode and orientation real files come in, and bad files named as such."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from captioner.features.images import ImageError, open_image


def test_modes_become_rgb(tmp_path: Path) -> None:
    Image.new("L", (8, 6), 100).save(tmp_path / "gray.png")
    assert open_image(tmp_path / "gray.png").getpixel((0, 0)) == (100, 100, 100)

    rgba = Image.new("RGBA", (8, 6), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    rgba.save(tmp_path / "rgba.png")
    img = open_image(tmp_path / "rgba.png")
    assert img.getpixel((0, 0)) == (255, 0, 0) and img.getpixel((1, 1)) == (255, 255, 255)  # white behind

    pal = Image.new("P", (8, 6), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pal.save(tmp_path / "pal.png")
    assert open_image(tmp_path / "pal.png").getpixel((3, 3)) == (10, 200, 30)

    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)
    r, g, b = open_image(tmp_path / "cmyk.jpg").getpixel((3, 3))
    assert r > 200 and g < 60 and b < 60

    Image.fromarray(np.full((6, 8), 65535 // 2, np.uint16)).save(tmp_path / "g16.png")
    assert abs(open_image(tmp_path / "g16.png").getpixel((0, 0))[0] - 128) <= 1


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    img.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    assert open_image(tmp_path / "rot.jpg").size == (20, 40)


def test_bad_files_raise_image_error(tmp_path: Path) -> None:
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ImageError, match="not an image"):
        open_image(tmp_path / "text.jpg")
    Image.new("RGB", (200, 200), (1, 2, 3)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageError, match="corrupt or truncated"):
        open_image(tmp_path / "trunc.jpg")
    with pytest.raises(ImageError, match="file not found"):
        open_image(tmp_path / "missing.png")


def test_decompression_bomb_refused_before_decoding(tmp_path: Path) -> None:
    Image.new("1", (12000, 12000)).save(tmp_path / "bomb.png")  # tiny file, 144 Mpx
    assert (tmp_path / "bomb.png").stat().st_size < 100_000
    with pytest.raises(ImageError, match="decompression bomb"):
        open_image(tmp_path / "bomb.png")
    Image.new("1", (7000, 7000)).save(tmp_path / "big.png")  # over our 40 Mpx limit, under PIL's own
    with pytest.raises(ImageError, match="49000000 pixels exceeds the limit"):
        open_image(tmp_path / "big.png")


@given(
    st.sampled_from(["PNG", "JPEG", "GIF", "TIFF", "BMP"]),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    st.integers(0, 10_000),
)
@settings(max_examples=300, deadline=None)
def test_mutated_image_files_only_raise_image_error(fmt: str, flips: list[tuple[int, int]], cut: int) -> None:
    """A small in-CI version of bench/fuzz.py: corrupted real files never escape as other exceptions."""
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 50, 20)).save(buf, fmt)
    data = bytearray(buf.getvalue())
    for pos, val in flips:
        data[pos % len(data)] = val
    try:
        open_image(bytes(data[: max(1, len(data) - cut % len(data))]), 4_000_000)
    except ImageError:
        pass


def test_flat_share_counts_flat_pixels_outside_the_background() -> None:
    from captioner.sights.photo import flat_share

    x = np.full((2, 3, 20, 20), 1.0, np.float32)  # white background
    x[:, :, 5:15, 5:15] = -0.5  # a flat 10x10 square: its 9x9 interior has equal right/lower neighbours
    x[1] = x[1] * 0.5 + 0.1  # another per-channel normalisation changes nothing
    want = 81 / 100  # of the 19x19 core, the 100 square pixels are foreground; 81 of them are flat
    assert flat_share(x).tolist() == pytest.approx([want, want])
    noisy = x + 0.01 * np.random.default_rng(0).normal(size=x.shape).astype(np.float32)  # sensor noise
    assert flat_share(noisy).tolist() == [0.0, 0.0]  # no two neighbours are equal


def test_photo_like_is_the_probe_or_few_flat_patches_within_its_margin() -> None:
    from captioner.sights.photo import photo_like, photo_scores

    x = np.full((4, 3, 20, 20), 1.0, np.float32)
    x[:, :, 5:15, 5:15] = -0.5  # flat: 81% of the foreground
    noisy = x + 0.01 * np.random.default_rng(0).normal(size=x.shape).astype(np.float32)  # no flat patch
    xs = np.concatenate([x[:2], noisy[:2]])  # flat, flat, noisy, noisy
    probe = {"weights": [1.0, -2.0], "bias": 0.5, "margin": 2.0}
    pooled = np.array([[1.0, 0.0, 9.0], [0.0, 1.0, 9.0], [0.0, 1.0, 9.0], [0.0, 2.0, 9.0]], np.float32)  # '-hc': 3rd
    assert photo_scores(pooled, probe).tolist() == [1.5, -1.5, -1.5, -3.5]
    settings = {"flat": 0.01, "probe": probe}
    # the probe says photo / flat and unsure / not flat, unsure: a photo / not flat, sure it is a drawing
    assert photo_like(xs, pooled, settings).tolist() == [True, False, True, False]
    assert photo_like(xs, pooled, {"flat": 0.01, "probe": None}).tolist() == [False, False, True, True]


def test_draft_decodes_big_jpegs_at_the_scale_resize_would_reduce_to(tmp_path: Path) -> None:
    from captioner.features.spec import EncoderSpec, preprocess

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (30, 40, 3), np.uint8)
    big = Image.fromarray(small).resize((4000, 3000), Image.Resampling.BICUBIC)
    big.save(tmp_path / "big.jpg", quality=92)
    big.save(tmp_path / "big.png")
    assert open_image(tmp_path / "big.jpg", draft=224).size == (1000, 750)  # 1/4: the smallest scale >= 672
    assert open_image(tmp_path / "big.jpg", draft=400).size == (2000, 1500)  # 1/8 would fall below 1200
    assert open_image(tmp_path / "big.png", draft=224).size == (4000, 3000)  # not a JPEG: decoded whole
    Image.fromarray(small).resize((1000, 700)).save(tmp_path / "mid.jpg")
    assert open_image(tmp_path / "mid.jpg", draft=224).size == (1000, 700)  # resize would not reduce: whole
    spec = EncoderSpec("x", "x", 224, "shorter-side+center-crop", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 1, 1, 1, 1)
    full = preprocess(open_image(tmp_path / "big.jpg"), spec)
    fast = preprocess(open_image(tmp_path / "big.jpg", draft=224), spec)
    assert np.abs(full - fast).mean() < 2.0  # close on the 0..255 scale, not equal
