"""The photo test on real files: how many photos it reads as photos in each encoding real files carry, and how many
drawings it reads as photos (the goal of the issue "Real photos": at least 97% and at most 3%).

    python bench/photo_test.py --data DATA [--checkpoint DIR]

Two sets, each in the encodings of common.encodings() (as stored, JPEG q40, WebP q75, 320 px at JPEG q75, grey):
- validation (tools/photo_probe.py chose its threshold here): the wallpapers common.split_of puts in 'val'
  (common.WALLPAPER_PHOTOS and WALLPAPER_DRAWINGS), OpenCV's sample photos and drawings (OPENCV_PHOTOS,
  OPENCV_DRAWINGS), GCompris's (GCOMPRIS_VAL_PHOTOS, GCOMPRIS_VAL_DRAWINGS) and the open corpus's validation
  drawings;
- check (never used to choose): scikit-image's photos (common.SKIMAGE), the example images, the corpus's
  validation and test Tux Paint photo cut-outs, the photos of people (common.people_set) as photos; the corpus's
  test drawings and scikit-image's drawings (SKIMAGE_DRAWINGS) as drawings.
Needs the Debian packages tools/photo_probe.py names."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import skimage.data as sd
from common import (
    GCOMPRIS_VAL_DRAWINGS,
    GCOMPRIS_VAL_PHOTOS,
    OPENCV_DRAWINGS,
    OPENCV_PHOTOS,
    SKIMAGE,
    WALLPAPER_DRAWINGS,
    WALLPAPER_PHOTOS,
    encodings,
    people_set,
    photo_stamp,
    rcc_images,
    split_of,
)
from PIL import Image

from captioner.api import Captioner, default_model_path
from captioner.data.manifest import dataset_root, read_manifest
from captioner.features.images import open_image
from captioner.sights.photo import photo_like

ROOT = Path(__file__).parents[1]
SKIMAGE_DRAWINGS = ("logo.png", "horse.png", "color.png", "phantom.png")


def corpus(data: Path, split: str) -> tuple[list[Image.Image], list[Image.Image]]:
    """(Tux Paint photo cut-outs, the other images: drawings) of one split of the open corpus."""
    root, photos, drawings = dataset_root(data), [], []
    for it in read_manifest(data):
        if it.split == split:
            img = open_image(root / it.image)
            (photos if it.source == "tuxpaint" and photo_stamp(img) else drawings).append(img)
    return photos, drawings


def sets(data: Path) -> dict[str, tuple[list[Image.Image], list[Image.Image]]]:
    """name -> (photos, drawings)."""
    here = lambda paths: [open_image(p) for p in paths if p.is_file()]  # noqa: E731
    _, val_drawings = corpus(data, "val")
    val_p = here([p for p in WALLPAPER_PHOTOS if split_of(p) == "val"] + list(OPENCV_PHOTOS))
    val_p += [im for a in GCOMPRIS_VAL_PHOTOS for im in rcc_images(a)]
    val_d = val_drawings + here([p for p in WALLPAPER_DRAWINGS if split_of(p) == "val"] + list(OPENCV_DRAWINGS))
    val_d += [im for a in GCOMPRIS_VAL_DRAWINGS for im in rcc_images(a)]
    sk = Path(sd.__file__).parent
    cut_val, _ = corpus(data, "val")
    cut_test, test_drawings = corpus(data, "test")
    check_p = here([sk / f"{n}.png" if (sk / f"{n}.png").is_file() else sk / f"{n}.jpg" for n in SKIMAGE])
    check_p += here(sorted((ROOT / "examples" / "images").glob("*.jpg"))) + cut_val + cut_test
    check_p += [im for im, _ in people_set()[:5]]  # the photos (the rest are Tux Paint's drawn people)
    return {"validation": (val_p, val_d), "check": (check_p, test_drawings + here([sk / n for n in SKIMAGE_DRAWINGS]))}


def read_as_photos(cap: Captioner, images: list[Image.Image]) -> float:
    """The share of the images the model's photo test reads as photos."""
    out = []
    for s in range(0, len(images), 32):
        x = np.stack([cap.prepare(im) for im in images[s : s + 32]])
        out.append(photo_like(x, cap.runtime.encode(x)[2], cap.runtime.policy.data["photo"]))
    return float(np.concatenate(out).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the open corpus (captioner data open-clipart)")
    ap.add_argument("--checkpoint", default=str(default_model_path()))
    a = ap.parse_args()
    cap = Captioner.load(a.checkpoint, people=False)
    for name, (photos, drawings) in sets(Path(a.data)).items():
        print(f"\n{name}: {len(photos)} photos, {len(drawings)} drawings")
        print("| encoding | photos read as photos | drawings read as photos |\n|---|---|---|")
        for enc, encode in encodings().items():
            p = read_as_photos(cap, [encode(im) for im in photos])
            d = read_as_photos(cap, [encode(im) for im in drawings])
            print(f"| {enc} | {p:.1%} | {d:.1%} |")


if __name__ == "__main__":
    main()
