"""Would a better detector reach the people goal? MediaPipe's BlazeFace, BlazePose and person segmentation.

    python3.11 -m venv /tmp/mpv && /tmp/mpv/bin/pip install mediapipe==0.10.14 scikit-image
    /tmp/mpv/bin/python bench/people_mediapipe.py

MediaPipe 0.10.14 (Apache-2.0) is the last release whose wheel carries its models (face_detection_*.tflite);
later ones download them. It is not a dependency of captioner: it pulls in jax, jaxlib and a second OpenCV
build (opencv-contrib-python beside opencv-python-headless, both installing cv2; 1.1 GB in the venv), so it
runs in a venv of its own. Photos: bench/truth.py's eight people photos (scikit-image's astronaut and camera,
matplotlib's grace_hopper, OpenCV's messi5 and basketball1 from Debian's opencv-doc, Tux Paint's two firemen
and paratrooper) and, as negatives, scikit-image's other
photos and the first 60 Tux Paint animal photo stamps (flattened on white, as captioner reads them). Prints,
per detector setting, the people photos it fires on and the negatives it fires on: BlazeFace (faces),
BlazePose (a whole-body pose: its detector, then the landmark model, static images) and selfie segmentation
(a person mask; it fires where the mask covers at least the smallest share it covers on a people photo)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.cbook as cb
import mediapipe as mp
import numpy as np
import skimage.data as sd
from PIL import Image

SK = Path(sd.__file__).parent
STAMPS = Path("/usr/share/tuxpaint/stamps")
PEOPLE = [SK / "astronaut.png", SK / "camera.png", Path(cb.get_sample_data("grace_hopper.jpg", asfileobj=False))]
PEOPLE += [Path("/usr/share/doc/opencv-doc/examples/data") / f for f in ("messi5.jpg", "basketball1.png")]
PEOPLE += [STAMPS / "people/fireman200b.png", STAMPS / "people/fireman240a.png", STAMPS / "military/paratrooper.png"]


def rgb(path: Path) -> np.ndarray:
    """The image on white, as RGB uint8."""
    im = Image.open(path).convert("RGBA")
    flat = Image.new("RGBA", im.size, (255, 255, 255, 255))
    flat.alpha_composite(im)
    return np.ascontiguousarray(np.asarray(flat.convert("RGB")))


def main() -> None:
    skip = {"astronaut.png", "camera.png"}
    negatives = [p for p in sorted(SK.glob("*.png")) + sorted(SK.glob("*.jpg")) if p.name not in skip]
    negatives += sorted(STAMPS.glob("animals/*/*.png"))[:60]
    images = {p: rgb(p) for p in PEOPLE + negatives}
    fd = mp.solutions.face_detection
    for model, name in ((0, "short range"), (1, "full range")):
        for thr in (0.3, 0.5):
            with fd.FaceDetection(model_selection=model, min_detection_confidence=thr) as det:
                hit = {p: bool(det.process(a).detections) for p, a in images.items()}
            report(f"BlazeFace {name}, score >= {thr}", hit, negatives)
    for thr in (0.5, 0.6, 0.7, 0.8):
        with mp.solutions.pose.Pose(static_image_mode=True, min_detection_confidence=thr) as pose:
            hit = {p: pose.process(a).pose_landmarks is not None for p, a in images.items()}
        report(f"BlazePose, score >= {thr}", hit, negatives)
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        share = {p: float(np.mean(seg.process(a).segmentation_mask > 0.5)) for p, a in images.items()}
    least = min(share[p] for p in PEOPLE)
    report(f"selfie segmentation, mask share >= {least:.3f}", {p: s >= least for p, s in share.items()}, negatives)


def report(name: str, hit: dict[Path, bool], negatives: list[Path]) -> None:
    found = [p.name for p in PEOPLE if hit[p]]
    false = [p.name for p in negatives if hit[p]]
    print(f"{name}: people photos {len(found)}/{len(PEOPLE)} {found}; negatives {len(false)}/{len(negatives)} {false}")


if __name__ == "__main__":
    main()
