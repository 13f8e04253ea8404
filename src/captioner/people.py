"""People in a photo, from MediaPipe's BlazeFace full-range face detector (Apache-2.0; its weights ship in the
mediapipe 0.10.14 wheel on PyPI, converted to ONNX by tools/blazeface_onnx.py into data/blazeface_full_range.onnx,
run by onnxruntime). ImageNet has no class for a person, so the encoder cannot say one.

The detector reads the encoder's own input square resized to 192 x 192, scaled to [-1, 1]. Each of its 48 x 48
anchors gives a box and a score (a sigmoid); a face counts when its score reaches MIN_SCORE (MediaPipe's own
threshold for this model) and it does not overlap a stronger face by more than NMS_IOU. bench/faces.py measures
it beside OpenCV's cascades (which people.py used until 2026-12-03), bench/truth.py on the project's photos;
docs/results.md has the figures."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np
from PIL import Image

from .imagenet import _synset, _wordnet_nouns

MODEL = "blazeface_full_range.onnx"
SIZE = 192  # the detector's input square
GRID = 48  # anchors per side (stride 4); each anchor a unit square at its cell's centre
MIN_SCORE = 0.6
NMS_IOU = 0.3
PERSON_LEXFILE = 18  # WordNet's noun.person
GROUP_WORDS = frozenset("person people men women children boys girls kids persons couple family crowd group".split())


@cache
def _session() -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(files("captioner") / "data" / MODEL), opts, providers=["CPUExecutionProvider"])


def _boxes(raw: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """(K, 16) raw regressions of the given anchors (K,) -> (K, 4) boxes (x0, y0, x1, y1) in [0, 1] of the square."""
    row, col = np.divmod(anchors, GRID)  # anchors run row-major over the 48 x 48 grid
    ay, ax = (row + 0.5) / GRID, (col + 0.5) / GRID
    cx, cy = raw[:, 0] / SIZE + ax, raw[:, 1] / SIZE + ay
    w, h = raw[:, 2] / SIZE, raw[:, 3] / SIZE
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0, y0 = np.maximum(box[0], others[:, 0]), np.maximum(box[1], others[:, 1])
    x1, y1 = np.minimum(box[2], others[:, 2]), np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1]) + (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area - inter, 1e-9)


def detect(rgb: np.ndarray, min_score: float | None = None) -> list[tuple[float, np.ndarray]]:
    """(H, W, 3) uint8 RGB -> (score, box (x0, y0, x1, y1) in [0, 1] of the image) of each face the detector keeps
    at this threshold (None: MIN_SCORE), strongest first."""
    min_score = MIN_SCORE if min_score is None else min_score
    im = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).resize((SIZE, SIZE), Image.BILINEAR)
    x = (np.asarray(im, np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]  # (1, 3, 192, 192)
    raw, logits = _session().run(None, {"image": x})  # (1, 2304, 16), (1, 2304, 1)
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits[0, :, 0].astype(np.float64), -100.0, 100.0)))
    keep = np.flatnonzero(scores >= min_score)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    boxes = _boxes(raw[0, keep], keep)
    kept: list[int] = []
    for i in range(len(keep)):
        if not kept or _iou(boxes[i], boxes[kept]).max() <= NMS_IOU:
            kept.append(i)
    return [(float(scores[keep[i]]), boxes[i]) for i in kept]


def faces(rgb: np.ndarray, min_score: float | None = None) -> list[float]:
    """The score of each face detect() keeps at this threshold, strongest first."""
    return [score for score, _ in detect(rgb, min_score)]


def count_people(rgb: np.ndarray, min_score: float | None = None) -> int:
    """How many faces reach the detector's threshold."""
    return len(faces(rgb, min_score))


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
