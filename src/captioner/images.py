"""Image loading that copes with real files: EXIF rotation, alpha, palettes, CMYK, 16-bit, bombs."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .config import MAX_PIXELS


class ImageError(ValueError):
    """An image that cannot be used; the message says why."""


def to_rgb(img: Image.Image) -> Image.Image:
    """Normalize any PIL mode to 8-bit RGB; transparency is composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        img = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P" or img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def open_image(source: str | Path | bytes, max_pixels: int = MAX_PIXELS, draft: int = 0) -> Image.Image:
    """Open, check the pixel count before decoding, apply EXIF orientation and convert to RGB.

    draft > 0 (the encoder's input size): a JPEG is decoded at the smallest DCT scale (1/2, 1/4 or 1/8) that
    keeps both sides >= 3 * draft, which is where preprocessing's resize (reducing_gap 3) would first reduce it
    by at least that factor anyway; the pixels are then close to, not equal to, a full decode's (a 12-megapixel
    photo decodes about 10x faster). Other formats ignore it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(f"{w}x{h} = {w * h} pixels exceeds the limit of {max_pixels} (decompression bomb?)")
            if draft > 0:
                img.draft(img.mode, (3 * draft, 3 * draft))
            img.load()
            img = ImageOps.exif_transpose(img) or img
            return to_rgb(img)
    except FileNotFoundError as e:
        raise ImageError("file not found") from e
    except UnidentifiedImageError as e:
        raise ImageError("not an image PIL can read") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"refused as a decompression bomb ({e})") from e
    except (OSError, SyntaxError, ValueError) as e:
        if isinstance(e, ImageError):
            raise
        raise ImageError(f"corrupt or truncated image ({e})") from e


PHOTO_FLAT = 0.01  # photo_like: at most this share lies in exactly flat patches (93% of the training
# split's photo stamps, 8.6% of its drawings; measured on the open corpus's train split)


def flat_share(x: np.ndarray) -> np.ndarray:
    """x (B, 3, S, S) float32, any per-channel normalisation -> (B,) share of pixels, the most common colour (the
    background of a cut-out or a drawing) left out, whose right, lower and lower-right neighbours have
    exactly their colour. Flat fills make drawings and clip art high; sensor noise keeps photos near 0."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    core = x[:, :, :-1, :-1]
    same = ((core == x[:, :, 1:, :-1]) & (core == x[:, :, :-1, 1:]) & (core == x[:, :, 1:, 1:])).all(1)  # (B, S-1, S-1)
    bits = core.view(np.int32)  # (B, 3, S-1, S-1): equal colours, equal keys
    with np.errstate(over="ignore"):
        key = (bits[:, 0].astype(np.int64) * 1_000_003 + bits[:, 1]) * 1_000_033 + bits[:, 2]  # wraps, rarely collides
    out = np.zeros(len(x))
    for i, (k, flat) in enumerate(zip(key.reshape(len(x), -1), same.reshape(len(x), -1), strict=True)):
        s = np.sort(k)
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        bg = s[starts[np.diff(np.r_[starts, len(s)]).argmax()]]  # the commonest key; ties: the smallest
        fg = k != bg
        out[i] = (flat & fg).sum() / max(1, fg.sum())
    return out


def photo_like(x: np.ndarray, flat: float = PHOTO_FLAT) -> np.ndarray:
    """(B,) bool: the preprocessed images look like photographs rather than drawings: at most `flat` of their
    pixels lie in flat patches (flat_share)."""
    return flat_share(x) <= flat


def photo_settings() -> dict[str, float]:
    """The photo test's settings as the caption policy carries them."""
    return {"flat": PHOTO_FLAT}
