"""What several benchmarks share: their common arguments, generated photos, and the check sets of real photos
(named photos, photos of people, video frames), each with the words a right caption says.

The scripts beside this one import it by name (`from common import ...`): Python puts a script's own folder first
on its path, so `python bench/NAME.py` finds it with no path changes."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from captioner.data.manifest import dataset_root, read_manifest
from captioner.features.imagenet import naming_nouns
from captioner.features.images import open_image
from captioner.text.vocab import tokenize

STAMPS = Path("/usr/share/tuxpaint/stamps")


def checkpoint_and_data(doc: str | None) -> tuple[str, Path]:
    """Parse `SCRIPT CHECKPOINT --data DATA` (the script's docstring as its help) -> (checkpoint, DATA)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", required=True, help="the open corpus the checkpoint was trained on")
    a = ap.parse_args()
    return a.checkpoint, Path(a.data)


def make_photos(folder: Path, n: int, size: tuple[int, int] = (640, 480), captions: bool = True) -> list[Path]:
    """n distinct JPEGs (random crops of scikit-image photos, or noise if it is absent), with .txt captions."""
    try:
        import skimage.data as d

        photos = [d.chelsea(), d.coffee(), d.astronaut(), d.rocket()]
    except ImportError:
        photos = [np.random.default_rng(i).integers(0, 255, (512, 512, 3), np.uint8) for i in range(4)]
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        base = Image.fromarray(photos[i % len(photos)])
        w, h = base.size
        box = (int(rng.integers(0, w // 4)), int(rng.integers(0, h // 4)), w - int(rng.integers(0, w // 4)), h)
        path = folder / f"p{i:04d}.jpg"
        base.crop(box).resize(size).save(path, quality=90)
        if captions:
            path.with_suffix(".txt").write_text("a photo\n")
        out.append(path)
    return out


SKIMAGE = {  # file in skimage/data -> nouns naming what its loader's docstring says the photo shows
    "astronaut": {"astronaut", "woman", "person", "man", "girl", "lady"},
    "chelsea": {"cat", "kitten"},
    "coffee": {"coffee", "cup", "espresso", "mug"},
    "rocket": {"rocket", "missile", "shuttle"},
    "camera": {"camera", "man", "photographer", "cameraman", "person"},
    "motorcycle_left": {"motorcycle", "motorbike", "bike", "scooter"},
    "coins": {"coin", "coins", "money"},
    "moon": {"moon"},
    "brick": {"brick", "bricks", "wall"},
    "grass": {"grass", "lawn"},
    "retina": {"eye", "retina"},
    "hubble_deep_field": {"galaxy", "galaxies", "space", "star", "stars", "sky"},
}


# Tux Paint photo stamp (file stem) -> the main object's noun, from the stamp's caption.
TUXPAINT = {
    "adelaide-rosella": {"rosella"}, "crowned_crane": {"crane"}, "drake": {"drake"}, "gander": {"gander"},
    "nandou": {"rhea"}, "peacock": {"peacock"}, "pink_flamingo": {"flamingo"}, "turkey": {"turkey"},
    "butterflyfish": {"butterflyfish"}, "european-bear": {"bear"}, "gnu-baby": {"gnu"}, "horse": {"horse"},
    "abalone": {"abalone"}, "Cherry_Stella": {"cherry"}, "Strawberry2": {"strawberry"}, "apple_red": {"apple"},
    "binoculars": {"binoculars"}, "rubberduck": {"duck"}, "measuring_tape": {"tape measure"},
    "toolbox": {"toolbox"}, "wrench_plumbers": {"wrench"}, "chemparathi": {"hibiscus"},
    "daffodil": {"daffodil"}, "flower7": {"flower"}, "chuvanna_plastic_poo": {"flower"},
    "whitestar-petunia": {"petunia"}, "tree336": {"tree"}, "chick-in-egg": {"chick", "egg"},
    "grave-a": {"gravestone"}, "5_jupiter": {"planet", "jupiter"}, "010": {"coin"}, "no_uturn": {"sign"},
    "xing_school": {"sign"}, "beetle": {"car"}, "motorbike": {"motorcycle"}, "pink_tricycle": {"tricycle"},
    "garbagetruck": {"truck"}, "chineseJunk": {"ship", "junk"},
}  # fmt: skip


def nouns(words: set[str]) -> set[str]:
    """The accepted words for these nouns, with plurals."""
    ok = set(words).union(*(naming_nouns(w) for w in words))
    return ok | {w + "s" for w in ok} | {w + "es" for w in ok} | {w[:-1] + "ies" for w in ok if w.endswith("y")}


def photo_stamp(img: Image.Image) -> bool:
    """A Tux Paint stamp that is a photo cut-out: more than 1,000 colours (8 levels a channel) in its ink, the
    pixels that are not near-white."""
    arr = np.asarray(img).reshape(-1, 3)
    ink = arr[(arr < 250).any(1)]
    return bool(len(ink)) and len(np.unique(ink // 8, axis=0)) > 1000


def photo_set(data: Path) -> list[tuple[Image.Image, set[str], str]]:
    """(image, right nouns, name) for the scikit-image photos and the Tux Paint photo cut-outs."""
    import skimage.data as sd

    files = {p.stem: p for p in Path(sd.__file__).parent.iterdir() if p.suffix in (".png", ".jpg")}
    out = [(open_image(files[name]), nouns(n), name) for name, n in SKIMAGE.items()]
    root = dataset_root(data)
    for it in read_manifest(data):
        if it.source != "tuxpaint" or it.split == "train" or "cartoon" in it.image:
            continue
        img = open_image(root / it.image)
        if photo_stamp(img):
            stem = Path(it.image).stem
            nouns = TUXPAINT.get(stem) or {[t for t in tokenize(it.captions[0]) if t.isalpha()][-1]}
            out.append((img, nouns(nouns), it.image))
    return out


def named(caption: str, nouns: set[str]) -> bool:
    return bool(set(tokenize(caption)) & nouns)


PEOPLE_STAMPS = ("people/fireman200b.png", "people/fireman240a.png", "military/paratrooper.png")
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")  # apt-get install opencv-doc
OPENCV_PEOPLE = ("messi5.jpg", "basketball1.png")  # (basketball2.png is the next video frame of the second)


def people_set() -> list[tuple[Image.Image, str]]:
    import matplotlib.cbook as cb
    import skimage.data as sd

    sk = Path(sd.__file__).parent
    out = [(open_image(sk / f), f) for f in ("astronaut.png", "camera.png")]
    out.append((open_image(Path(cb.get_sample_data("grace_hopper.jpg", asfileobj=False))), "grace_hopper.jpg"))
    if not (OPENCV_DATA / OPENCV_PEOPLE[0]).is_file():
        raise SystemExit(f"{OPENCV_DATA}: OpenCV's sample photos are missing; apt-get install opencv-doc")
    out += [(open_image(OPENCV_DATA / f), f) for f in OPENCV_PEOPLE]
    return out + [(open_image(STAMPS / s), s) for s in PEOPLE_STAMPS]


VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def vtest_frames() -> list[tuple[int, Image.Image]]:
    """(frame number, RGB image) of frames 0, 80, ..., 720 of OpenCV's vtest.avi."""
    import cv2

    video = cv2.VideoCapture(str(VTEST))
    if not video.isOpened():
        raise SystemExit(f"{VTEST}: missing; apt-get install opencv-doc")
    out = []
    for frame in range(0, 800, 80):
        video.set(cv2.CAP_PROP_POS_FRAMES, frame)
        ok, bgr = video.read()
        if not ok:
            raise SystemExit(f"{VTEST}: cannot read frame {frame}")
        out.append((frame, Image.fromarray(np.ascontiguousarray(bgr[..., ::-1]))))
    return out


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    """GFLOP/s of an n x n matmul."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9
