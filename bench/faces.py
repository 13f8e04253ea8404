"""Which detector says "a person"? Each one on the encoder's 224 x 224 square.

    python bench/faces.py

Prints, for people.py's detector (MediaPipe's BlazeFace full range, ONNX) at its threshold and below, and for
OpenCV's detectors (opencv-python-headless, in the test extra): the default frontal-face cascade (5 neighbours),
the 'alt2' cascade that people.py used until 2026-12-03 at several window growths between scales and
thresholds, the whole-body and upper-body cascades and the HOG pedestrian detector:
how many of Tux Paint's photo stamps without people fire it (raster stamps outside 'cartoon' folders with more
than 1,000 colours, firemen and paratrooper left out), how many of scikit-image's 100 lfw_subset faces it
finds, how many of bench/truth.py's 8 people photos it fires on, and its time per stamp. (The stamps include
bench/truth.py's negatives: the setting is chosen here on false hits, lfw faces and time; truth.py's people
photos are reported, not chosen on.)"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import skimage.data as sd
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from truth import people_set  # noqa: E402

from captioner.api import default_model_path
from captioner.decode.rules import pixels
from captioner.features.images import open_image
from captioner.features.spec import EncoderSpec, preprocess
from captioner.sights.people import MIN_SCORE, detect

STAMPS = Path("/usr/share/tuxpaint/stamps")
PEOPLE = ("fireman", "paratrooper")


SPEC = EncoderSpec.from_json(json.loads((default_model_path() / "encoder.json").read_text()))


def square(img: Image.Image) -> np.ndarray:
    """The encoder's input square as the detector sees it in truth.look."""
    return pixels(preprocess(img, SPEC)[None], SPEC)[0]


def main() -> None:
    stamps = []
    for p in sorted(STAMPS.rglob("*.png")):
        if "cartoon" in p.parts or any(k in p.name for k in PEOPLE):
            continue
        rgba = np.asarray(Image.open(p).convert("RGBA")).reshape(-1, 4)
        if len(np.unique(rgba, axis=0)) > 1000:
            stamps.append(square(open_image(p)))
    persons = [square(im) for im, _ in people_set()]
    faces = [square(Image.fromarray((f * 255).round().astype(np.uint8)).convert("RGB")) for f in sd.lfw_subset()[:100]]
    default = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def grey(a: np.ndarray) -> np.ndarray:
        return cv2.equalizeHist(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY))

    def haar(a: np.ndarray) -> bool:
        return len(default.detectMultiScale(grey(a), 1.1, 5, minSize=(24, 24))) > 0

    def body(name: str) -> Callable[[np.ndarray], bool]:
        c = cv2.CascadeClassifier(cv2.data.haarcascades + f"haarcascade_{name}.xml")
        return lambda a: len(c.detectMultiScale(grey(a), 1.1, 3, minSize=(24, 24))) > 0

    def pedestrians(a: np.ndarray) -> bool:
        return len(hog.detectMultiScale(grey(a), winStride=(8, 8), padding=(8, 8), scale=1.05)[0]) > 0

    alt2_cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml")

    def alt2(step: float, neighbours: int) -> Callable[[np.ndarray], bool]:
        return lambda a: len(alt2_cascade.detectMultiScale(grey(a), step, neighbours, minSize=(24, 24))) > 0

    def blazeface(score: float) -> Callable[[np.ndarray], bool]:
        return lambda a: len(detect(a, score)) > 0

    detectors: dict[str, Callable[[np.ndarray], bool]] = {}
    for score in (MIN_SCORE, 0.5, 0.4):
        mark = " (people.py)" if score == MIN_SCORE else ""
        detectors[f"BlazeFace full range, score >= {score}{mark}"] = blazeface(score)
    detectors["frontalface_default, step 1.1, 5 neighbours"] = haar
    for step, n in [(1.1, 3), (1.1, 2), (1.2, 2), (1.25, 3), (1.25, 2), (1.3, 2)]:
        mark = " (people.py before)" if (step, n) == (1.25, 2) else ""
        detectors[f"frontalface_alt2, step {step}, {n} neighbours{mark}"] = alt2(step, n)
    detectors["fullbody cascade, step 1.1, 3 neighbours"] = body("fullbody")
    detectors["upperbody cascade, step 1.1, 3 neighbours"] = body("upperbody")
    detectors["HOG pedestrians"] = pedestrians
    print(f"{len(stamps)} Tux Paint photo stamps without people, {len(faces)} lfw_subset faces")
    for name, fires in detectors.items():
        t = time.perf_counter()
        hits = sum(map(fires, stamps))
        ms = (time.perf_counter() - t) / len(stamps) * 1e3
        print(f"{name:54s} fires on {hits:3d} stamps, finds {sum(map(fires, faces)):3d} faces and "
              f"{sum(map(fires, persons))} of {len(persons)} people photos, {ms:4.1f} ms a stamp")  # fmt: skip


if __name__ == "__main__":
    main()
