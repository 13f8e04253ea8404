"""Photo or drawing: the photo test on the encoder's input square (flat patches are drawings' fills)."""

from __future__ import annotations

import numpy as np

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
