"""What the pixels show, read without the caption model: for each image a Sight, off the encoder's own input square and
pooled vector: whether it is a photo (photo.photo_like: the policy's probe and flat-patch test), which colours its
centre shows (colours.py) and, in photos, how many people people.py finds (BlazeFace's faces or NanoDet's persons,
the larger count; a grey image read as a drawing is a photo where NanoDet finds persons at the grey threshold).
Every setting comes from the caption policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from captioner.features.spec import EncoderSpec
from captioner.sights.colours import centre, colour_shares, shown
from captioner.sights.people import people_counts
from captioner.sights.photo import photo_like


@dataclass(frozen=True)
class Sight:
    """What one image shows, read without the caption model."""

    photo: bool
    colours: frozenset[str]  # colours.shown of the centre of the encoder's square
    people: int | None  # people found (photos only; 0 for drawings); None: not looked for (people=False)


def pixels(x: np.ndarray, spec: EncoderSpec) -> np.ndarray:
    """The encoder's input (B, 3, S, S) back to (B, S, S, 3) uint8 RGB."""
    mean, std = np.array(spec.mean, np.float32)[:, None, None], np.array(spec.std, np.float32)[:, None, None]
    rgb = x * std + mean
    if spec.channels == "BGR":
        rgb = rgb[:, ::-1]
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def look(
    x: np.ndarray, pooled: np.ndarray, spec: EncoderSpec, policy: Mapping[str, Any], people: bool = True
) -> list[Sight]:
    """Sights of a preprocessed batch (B, 3, S, S), whose pooled vectors (B, D) the encoder gave, under the
    model's caption policy (policy.json's JSON: its photo probe, colour rule and detector thresholds);
    people=False skips the people detectors (counts None). A grey image read as a drawing in which
    people.grey_people finds persons is a photo of them."""
    p, c, d = policy["photo"], policy["colours"], policy["detectors"]
    ims, photos = pixels(x, spec), photo_like(x, pooled, p)
    settings = d["face"]["min_score"], d["person"]["min_score"], d["person"]["grey_min_score"]
    counts = people_counts(ims, photos, *settings) if people else None
    out = []
    for i, (im, ph) in enumerate(zip(ims, photos, strict=True)):
        colours = shown(colour_shares(centre(im, c["centre"]), rule=c["rule"]), c["present"])
        if counts is None:  # not looked for: None in photos, 0 in drawings
            out.append(Sight(bool(ph), colours, None if ph else 0))
        else:
            out.append(Sight(bool(ph) or counts[i] > 0, colours, counts[i]))
    return out
