"""The photo test on real files: how many photos it reads as photos in each encoding real files carry, and how many
drawings it reads as photos (the goal of the issue "Real photos": at least 97% and at most 3%).

    python bench/photo_test.py [--data DATA] [--checkpoint DIR]

Photos: scikit-image's camera photos, the example images and, when Debian's opencv-doc is installed, OpenCV's
sample photos (PHOTOS); each as stored and re-encoded as web photos are: JPEG at quality 40, WebP at quality 75,
downscaled to 320 px wide and saved as JPEG at quality 75, and grey. Drawings: the logos, line art and paintings
among those samples (DRAWINGS) and, with --data, the open corpus's validation drawings (OpenClipart, emoji, Tux
Paint stamps that are not photo cut-outs). Prints, per encoding, the share read as photos and the median
flat_share (the checkpoint's policy says the threshold)."""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import skimage.data as sd
from common import photo_stamp
from PIL import Image

from captioner.api import Captioner, default_model_path
from captioner.data.manifest import dataset_root, read_manifest
from captioner.features.images import open_image
from captioner.sights.photo import flat_share

ROOT = Path(__file__).parents[1]
SKIMAGE = Path(sd.__file__).parent
OPENCV = Path("/usr/share/doc/opencv-doc/examples/data")  # apt-get install opencv-doc
PHOTOS = {
    SKIMAGE: ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "camera.png", "motorcycle_left.png",
              "motorcycle_right.png", "coins.png", "moon.png", "brick.png", "grass.png", "gravel.png"),
    OPENCV: ("HappyFish.jpg", "aero1.jpg", "aero3.jpg", "apple.jpg", "baboon.jpg", "basketball1.png", "board.jpg",
             "box.png", "box_in_scene.png", "building.jpg", "butterfly.jpg", "ela_original.jpg", "fruits.jpg",
             "graf1.png", "home.jpg", "leuvenA.jpg", "licenseplate_motion.jpg", "messi5.jpg", "orange.jpg",
             "rubberwhale1.png", "smarties.png", "squirrel_cls.jpg", "left01.jpg"),
}  # fmt: skip
DRAWINGS = {
    SKIMAGE: ("logo.png", "horse.png", "color.png", "phantom.png"),
    OPENCV: ("LinuxLogo.jpg", "WindowsLogo.jpg", "opencv-logo.png", "pic1.png", "pic3.png", "pic5.png",
             "starry_night.jpg", "notes.png", "ml.png", "cards.png"),
}  # fmt: skip


def _saved(img: Image.Image, fmt: str, **opts: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, fmt, **opts)
    return open_image(buf.getvalue())


ENCODINGS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "as stored": lambda im: im,
    "JPEG q40": lambda im: _saved(im, "JPEG", quality=40),
    "WebP q75": lambda im: _saved(im, "WEBP", quality=75),
    "320 px, JPEG q75": lambda im: _saved(im.resize((320, max(1, round(im.height * 320 / im.width)))), "JPEG",
                                          quality=75),
    "grey": lambda im: im.convert("L").convert("RGB"),
}  # fmt: skip


def files(table: dict[Path, tuple[str, ...]]) -> list[Path]:
    """The listed files that are here."""
    return [folder / name for folder, names in table.items() for name in names if (folder / name).is_file()]


def corpus_drawings(data: Path) -> list[Image.Image]:
    """The open corpus's validation images that are drawings (everything but Tux Paint's photo cut-outs)."""
    root, out = dataset_root(data), []
    for it in read_manifest(data):
        if it.split == "val":
            img = open_image(root / it.image)
            if not (it.source == "tuxpaint" and photo_stamp(img)):
                out.append(img)
    return out


def read_as_photos(cap: Captioner, images: list[Image.Image]) -> tuple[float, float]:
    """(share read as photos, median flat_share) of the images under the model's photo test."""
    x = np.stack([cap.prepare(im) for im in images])
    flat = flat_share(x)
    return float((flat <= cap.runtime.policy.data["photo"]["flat"]).mean()), float(np.median(flat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="the open corpus: its validation drawings are counted too")
    ap.add_argument("--checkpoint", default=str(default_model_path()))
    a = ap.parse_args()
    cap = Captioner.load(a.checkpoint, people=False)
    photos = [open_image(p) for p in [*files(PHOTOS), *sorted((ROOT / "examples" / "images").glob("*.jpg"))]]
    drawings = [open_image(p) for p in files(DRAWINGS)] + (corpus_drawings(Path(a.data)) if a.data else [])
    print(f"{len(photos)} photos, {len(drawings)} drawings; photo test: flat_share <= "
          f"{cap.runtime.policy.data['photo']['flat']}")  # fmt: skip
    print("| encoding | photos read as photos | median flat_share | drawings read as photos |")
    print("|---|---|---|---|")
    for name, encode in ENCODINGS.items():
        p, pm = read_as_photos(cap, [encode(im) for im in photos])
        d, _ = read_as_photos(cap, [encode(im) for im in drawings])
        print(f"| {name} | {p:.1%} | {pm:.4f} | {d:.1%} |")


if __name__ == "__main__":
    main()
