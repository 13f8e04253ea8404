"""Photo or drawing, from two readings of an image: a logistic probe on the encoder's pooled vector
(tools/photo_probe.py trains it on photos and drawings carrying the damage web files carry, and writes
data/photo_probe.json), and the share of its pixels in exactly flat patches (drawings' fills; sensor noise keeps
photos near 0). An image is a photo where the probe says so, or where it has few flat patches and the probe is not
sure it is a drawing (its logit above -margin). The probe alone reads many photos of things the corpus mostly draws
(a cup, a portrait) as drawings; the flat test alone reads compressed and small photos as drawings. The caption
policy carries both settings."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

PROBE_ENCODER = "efficientnet-lite0"  # the encoder whose pooled vector the probe reads
PROBE_READERS = (PROBE_ENCODER, PROBE_ENCODER + "-hc")  # encoders whose pooled vector starts with that one
PROBE_FILE = "photo_probe.json"
PHOTO_FLAT = 0.01  # at most this share of pixels in flat patches (93% of the open corpus's train photo stamps,
# 8.6% of its drawings)


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


@cache
def _probe() -> dict[str, Any]:
    """data/photo_probe.json's weights, bias and margin, read once."""
    p = json.loads(resources.files("captioner.data").joinpath(PROBE_FILE).read_text("utf-8"))
    return {"weights": p["weights"], "bias": p["bias"], "margin": p["margin"]}


def photo_settings(encoder: str) -> dict[str, Any]:
    """The photo test as the caption policy of a model on this encoder carries it: the flat-patch threshold, and
    the probe's weights, bias and margin (chosen on validation by tools/photo_probe.py), or probe None where no
    probe reads the encoder's vector (the flat test alone then decides)."""
    if encoder not in PROBE_READERS:
        return {"flat": PHOTO_FLAT, "probe": None}
    return {"flat": PHOTO_FLAT, "probe": _probe()}


def photo_scores(pooled: np.ndarray, probe: Mapping[str, Any]) -> np.ndarray:
    """(B, D) pooled vectors -> (B,) the probe's logits (above 0: a photo). The probe reads the first of its
    width of the D dimensions (a '-hc' vector starts with the plain one)."""
    w = np.asarray(probe["weights"], np.float64)
    return np.asarray(pooled, np.float64)[:, : len(w)] @ w + float(probe["bias"])


def decide(score: np.ndarray, few_flat: np.ndarray, margin: float) -> np.ndarray:
    """The module docstring's rule: (B,) probe logits and (B,) bool few flat patches -> (B,) bool photo."""
    return (score > 0) | (few_flat & (score > -margin))


def photo_like(x: np.ndarray, pooled: np.ndarray, settings: Mapping[str, Any]) -> np.ndarray:
    """(B,) bool: the preprocessed images x (B, 3, S, S), with their pooled vectors (B, D), look like photographs
    under the policy's photo settings (photo_settings; decide's rule). The flat share is computed only for the
    images the probe leaves unsure (logit in (-margin, 0]): the others' verdict does not depend on it."""
    probe = settings["probe"]
    if probe is None:
        return flat_share(x) <= settings["flat"]
    score, margin = photo_scores(pooled, probe), float(probe["margin"])
    few_flat = np.zeros(len(score), bool)
    unsure = (score <= 0) & (score > -margin)
    if unsure.any():
        few_flat[unsure] = flat_share(x[unsure]) <= settings["flat"]
    return decide(score, few_flat, margin)
