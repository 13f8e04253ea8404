"""Image loading that copes with real files: EXIF rotation, alpha, palettes, CMYK, 16-bit, bombs."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from captioner.config import MAX_PIXELS


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
