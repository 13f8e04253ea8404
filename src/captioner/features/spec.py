"""The encoder spec and the preprocessing it describes, in numpy: PyTorch and onnxruntime paths share it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from captioner.errors import CaptionerError

SPEC_VERSION = 1


@dataclass(frozen=True)
class EncoderSpec:
    """Everything needed to rebuild the exact preprocessing and network that made a feature set."""

    name: str
    weights: str  # package==version the weights came from
    input_size: int
    resize: str  # "shorter-side" then "center-crop"
    mean: tuple[float, float, float]  # on the 0..255 scale
    std: tuple[float, float, float]
    pooled_dim: int
    grid_dim: int
    grid_size: int
    num_classes: int
    version: int = SPEC_VERSION
    channels: str = "RGB"  # channel order the network takes; mean and std are given in this order

    def to_json(self) -> dict:
        """A plain-JSON dict (tuples as lists), equal to what json.load gives back."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, obj: dict, where: str = "encoder spec") -> EncoderSpec:
        try:
            spec = cls(**{**obj, "mean": tuple(obj["mean"]), "std": tuple(obj["std"])})
        except (TypeError, KeyError) as e:
            raise CaptionerError(f"{where}: not a valid encoder spec ({e})") from e
        if spec.version != SPEC_VERSION:
            raise CaptionerError(f"{where}: encoder spec version {spec.version}, expected {SPEC_VERSION}")
        return spec

    def check_same(self, other: EncoderSpec, what: str) -> None:
        """Raise if two specs would not give the same features."""
        a, b = self.to_json(), other.to_json()
        diff = [k for k in a if a[k] != b[k]]
        if diff:
            raise CaptionerError(f"{what}: encoder mismatch in {', '.join(diff)}: {a[diff[0]]!r} vs {b[diff[0]]!r}")


def preprocess(img: Image.Image, spec: EncoderSpec) -> np.ndarray:
    """RGB PIL image -> (3, S, S) float32: the shorter side resized to input_size (Pillow's bicubic, reducing
    by whole factors first while 3x larger), a centred square cropped, then (x - mean) / std."""
    if spec.resize == "seminar":
        return _preprocess_seminar(img, spec)
    if spec.resize != "shorter-side+center-crop":
        raise CaptionerError(f"encoder spec: unknown resize rule {spec.resize!r}")
    s = spec.input_size
    w, h = img.size
    scale = s / min(w, h)
    nw, nh = max(s, round(w * scale)), max(s, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BICUBIC, reducing_gap=3.0)
    left, top = (nw - s) // 2, (nh - s) // 2
    img = img.crop((left, top, left + s, top + s))
    arr = np.asarray(img, dtype=np.float32)  # (S, S, 3)
    arr = (arr - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))  # (3, S, S)


def _bilinear_rows(n_in: int, n_out: int, first: int, count: int) -> np.ndarray:
    """(count, n_in) weights of output samples first..first+count-1 when n_in samples are stretched to n_out:
    sample centres (i + 0.5) * n_in / n_out - 0.5, linear between neighbours, zero outside the input."""
    pos = (np.arange(first, first + count) + 0.5) * n_in / n_out - 0.5
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    m = np.zeros((count, n_in + 2))  # one column of zeros either side for samples outside
    rows = np.arange(count)
    np.add.at(m, (rows, lo + 1), 1 - frac)
    np.add.at(m, (rows, lo + 2), frac)
    return m[:, 1:-1]


def _preprocess_seminar(img: Image.Image, spec: EncoderSpec) -> np.ndarray:
    """The seminar's preprocess(): shorter side to S with the longer side floored, bilinear with no anti-aliasing
    and zeros outside the image (skimage.transform.resize order=1, mode='constant'), crop rows and columns
    h//2 - S//2 onwards, channels in the spec's order, minus the mean, divided by std."""
    s = spec.input_size
    x = np.asarray(img, dtype=np.float64).transpose(2, 0, 1)  # (3, H, W)
    h, w = x.shape[-2:]
    nh, nw = (s, w * s // h) if h < w else (h * s // w, s)
    ry = _bilinear_rows(h, nh, nh // 2 - s // 2, s)  # (S, H): only the rows and columns the crop keeps
    rx = _bilinear_rows(w, nw, nw // 2 - s // 2, s)  # (S, W)
    x = np.einsum("yh,chw,xw->cyx", ry, x, rx, optimize=True)  # (3, S, S)
    if spec.channels == "BGR":
        x = x[::-1]
    mean, std = np.array(spec.mean)[:, None, None], np.array(spec.std)[:, None, None]
    return np.ascontiguousarray(((x - mean) / std).astype(np.float32))  # (3, S, S)
