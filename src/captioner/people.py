"""People in a photo, from the frontal-face detector that ships inside opencv-python-headless (Haar cascade
'frontalface_alt2', Lienhart et al. 2002); ImageNet has no class for a person, so the encoder cannot say one.

A face counts when at least MIN_NEIGHBOURS overlapping windows of the cascade agree on it (OpenCV's grouping
of detections; the number of windows is the detector's score). The detector reads the encoder's own input
square (224 x 224 for Lite0), so a face needs to be MIN_FACE pixels across there. bench/faces.py measures it
on scikit-image's faces (lfw_subset) and Tux Paint's photo stamps, bench/truth.py on the project's photos;
docs/results.md has the figures. OpenCV loads on the first photo (it is most of `import captioner`'s time)."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from .imagenet import _synset, _wordnet_nouns

CASCADE = "haarcascade_frontalface_alt2.xml"
MIN_NEIGHBOURS = 2
MIN_FACE = 24  # pixels
SCALE_STEP = 1.25  # window growth between scales; bench/faces.py weighs it against 1.1 (slower, more false hits)
PERSON_LEXFILE = 18  # WordNet's noun.person
GROUP_WORDS = frozenset("person people men women children boys girls kids persons couple family crowd group".split())


@cache
def _cascade() -> Any:
    import cv2

    c = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
    if c.empty():
        raise RuntimeError(f"OpenCV's {CASCADE} did not load from {cv2.data.haarcascades}")
    return c


def faces(rgb: np.ndarray, min_neighbours: int | None = None) -> list[int]:
    """(H, W, 3) uint8 RGB -> the score (agreeing windows) of each face the detector keeps at this threshold
    (None: MIN_NEIGHBOURS)."""
    import cv2

    min_neighbours = MIN_NEIGHBOURS if min_neighbours is None else min_neighbours
    grey = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2GRAY))
    _, counts = _cascade().detectMultiScale2(grey, SCALE_STEP, min_neighbours, minSize=(MIN_FACE, MIN_FACE))
    return [int(n) for n in np.ravel(counts)]


def count_people(rgb: np.ndarray, min_neighbours: int | None = None) -> int:
    """How many faces reach the detector's threshold."""
    return len(faces(rgb, min_neighbours))


@cache
def person_words() -> frozenset[str]:
    """Words that say a person or people: nouns whose first WordNet sense is a person ('officer', 'woman',
    'astronaut'), and GROUP_WORDS."""
    index, data = _wordnet_nouns()
    return GROUP_WORDS | frozenset(w for w, offs in index.items() if _synset(data[offs[0]])[0] == PERSON_LEXFILE)


def says_person(words: list[str]) -> bool:
    """Whether a caption's words name a person or people."""
    pw = person_words()
    return any(w in pw for w in words)
