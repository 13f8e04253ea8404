"""What several benchmarks share: their common arguments, generated photos, and the check sets of real photos
(named photos, photos of people, video frames), each with the words a right caption says.

The scripts beside this one import it by name (`from common import ...`): Python puts a script's own folder first
on its path, so `python bench/NAME.py` finds it with no path changes."""

from __future__ import annotations

import argparse
import hashlib
import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from captioner.data.manifest import dataset_root, read_manifest
from captioner.features.imagenet import naming_nouns
from captioner.features.images import ImageError, open_image
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
            words = TUXPAINT.get(stem) or {[t for t in tokenize(it.captions[0]) if t.isalpha()][-1]}
            out.append((img, nouns(words), it.image))
    return out


def named(caption: str, nouns: set[str]) -> bool:
    return bool(set(tokenize(caption)) & nouns)


PEOPLE_STAMPS = ("people/fireman200b.png", "people/fireman240a.png", "military/paratrooper.png")
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")  # apt-get install opencv-doc
OPENCV_PEOPLE = ("messi5.jpg", "basketball1.png")  # (basketball2.png is the next video frame of the second)
OPENCV_PHOTOS = tuple(OPENCV_DATA / f for f in (
    "aero1.jpg", "aero3.jpg", "apple.jpg", "baboon.jpg", "board.jpg", "box.png", "box_in_scene.png", "building.jpg",
    "butterfly.jpg", "ela_original.jpg", "fruits.jpg", "graf1.png", "home.jpg", "leuvenA.jpg",
    "licenseplate_motion.jpg", "orange.jpg", "rubberwhale1.png", "smarties.png", "squirrel_cls.jpg",
    "left01.jpg"))  # fmt: skip
OPENCV_DRAWINGS = tuple(OPENCV_DATA / f for f in (
    "HappyFish.jpg", "LinuxLogo.jpg", "WindowsLogo.jpg", "opencv-logo.png", "pic1.png", "pic3.png", "pic5.png",
    "starry_night.jpg", "notes.png", "ml.png", "cards.png"))  # fmt: skip
# Desktop wallpapers from Debian (lomiri-wallpapers-16.04/-20.04, mate-backgrounds, plasma-workspace-wallpapers,
# ukui-wallpapers, gnome-backgrounds, sway-backgrounds; CC-BY-SA, GPL-2+, Expat): the camera photos among them, and
# the renders and drawings. The photo probe trains on some and validates on the others (tools/photo_probe.py).
_BG, _KDE = Path("/usr/share/backgrounds"), Path("/usr/share/wallpapers")
WALLPAPER_PHOTOS = tuple(
    _BG / f
    for f in (
        "Bridge_by_Sander_Klootwijk.jpg",
        "Dragonfly_by_Bolly.jpg",
        "Picture_0B_by_freespace.jpg",
        "Picture_1A_by_freespace.jpg",
        "Wine_by_Jakkub_Mede.jpg",
        "aitzgorri_by_Aitzol_Berasategi.jpg",
        "friends_by_Aitzol_Berasategi.jpg",
        "life_by_Aitzol_Berasategi.jpg",
        "picosdeeuropa_by_Aitzol_Berasategi.jpg",
        "seeding_by_Clements_Engelhardt.jpg",
        "sunset_by_Aitzol_Berasategi.jpg",
        "Kleiber_by_Lukas_Baubkus.jpg",
        *(
            f"mate/nature/{n}.jpg"
            for n in (
                "Aqua",
                "Blinds",
                "Dune",
                "FreshFlower",
                "Garden",
                "GreenMeadow",
                "LadyBird",
                "RainDrops",
                "Storm",
                "TwoWings",
                "YellowFlower",
            )
        ),
    )
) + tuple(
    _KDE / f"{n}/contents/images/1280x1024.jpg"
    for n in (
        "BytheWater",
        "ColdRipple",
        "EveningGlow",
        "FallenLeaf",
        "Grey",
        "Kite",
        "OneStandsOut",
        "Path",
        "summer_1am",
    )
)
WALLPAPER_DRAWINGS = tuple(_BG / f for f in (
    *(f"gnome/{n}-{s}.webp" for n in ("adwaita", "grid", "licorice", "pixels", "symbolic", "truchet", "vnc", "wood")
      for s in "dl"),
    "analogpattern_by_Peter_Nerlich.jpg",
    "umang_by_Abhishek_Mudgal.jpg", "Fossa_by_Jasper_Roks.jpg", "Painting-Colors_by__herobrine7gamer.jpg",
    *(f"mate/abstract/{n}" for n in ("Arc-Colors-Transparent-Wallpaper.png", "Elephants.jpg", "Flow.png",
                                     "Gulp.png", "Silk.png", "Spring.png", "Waves.png")),
    *(f"mate/desktop/{n}" for n in ("Float-into-MATE.png", "GreenTraditional.jpg", "MATE-Stripes-Dark.png",
                                    "Stripes.png", "Ubuntu-Mate-Cold-no-logo.png", "Ubuntu-Mate-Warm-no-logo.png")),
    "sway/Sway_Wallpaper_Blue_1920x1080.png", "2004default.jpg", "calla.png", "city.png", "desert.png",
    "firstgeneration.jpg", "fluent-color.png", "focal-ubuntukylin.png", "goldfish.png", "rhythm.jpg",
    "rollpaper.png", "string.jpg", "the-mouse.jpg",
)) + tuple(_KDE / f for f in (
    "Altai/contents/images/1080x1920.png", "Autumn/contents/images/1280x1024.jpg",
    "Canopee/contents/images/3840x2160.png", "Cascade/contents/images/3840x2160.png",
    "Cluster/contents/images/3840x2160.png", "ColorfulCups/contents/images/2560x1600.jpg",
    "Elarun/contents/images/2560x1600.png", "Flow/contents/images/5120x2880.jpg",
    "FlyingKonqui/contents/images/1280x1024.png", "Honeywave/contents/images/1080x1920.jpg",
    "IceCold/contents/images/5120x2880.png", "Kay/contents/images/1080x1920.png",
    "Kokkini/contents/images/3840x2160.png", "Opal/contents/images/3840x2160.png",
    "PastelHills/contents/images/1280x1024.jpg", "Patak/contents/images/1080x1920.png",
    "SafeLanding/contents/images/1622x2880.jpg", "Shell/contents/images/5120x2880.jpg"))  # fmt: skip


# GCompris's activity images (Debian gcompris-qt-data, GPL-3+ / CC-BY-SA, inside Qt resource files): camera photos
# of objects, tools, fish, animals, landmarks and musicians, and the cartoon drawings of its vocabulary activity.
GCOMPRIS = Path("/usr/share/gcompris-qt/rcc")  # apt-get install gcompris-qt-data
GCOMPRIS_TRAIN_PHOTOS = ("categorization", "erase", "explore_farm_animals", "leftright")
GCOMPRIS_VAL_PHOTOS = ("explore_monuments", "explore_world_animals", "explore_world_music")  # other activities
GCOMPRIS_VAL_DRAWINGS = ("lang",)  # a cartoon style no training set has


def rcc_images(activity: str) -> list[Image.Image]:
    """The JPEG, PNG and WebP images (at least 64 px a side) stored in GCompris's ACTIVITY.rcc: Qt's resource
    format keeps each file's bytes after a 4-byte big-endian length; compressed entries (SVG, text) are skipped."""
    blob, out, at = (GCOMPRIS / f"{activity}.rcc").read_bytes(), [], 0
    magics = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF")
    while True:
        hits = [p for p in (blob.find(m, at) for m in magics) if p >= 4]
        if not hits:
            return out
        p = min(hits)
        size = int.from_bytes(blob[p - 4 : p], "big")
        try:
            img = open_image(blob[p : p + size])
        except ImageError:  # not a stored file: magic bytes inside another one
            at = p + 4
            continue
        if min(img.size) >= 64:
            out.append(img)
        at = p + size


def split_of(path: Path) -> str:
    """The photo probe's split of a wallpaper: 'val' for about a third (by the hash of the file name), else 'train'."""
    return "val" if hashlib.sha1(path.name.encode()).digest()[0] % 3 == 0 else "train"


def saved(img: Image.Image, fmt: str, **opts: int) -> Image.Image:
    """The image saved in this format and read back."""
    buf = io.BytesIO()
    img.save(buf, fmt, **opts)
    return open_image(buf.getvalue())


def encodings() -> dict[str, Callable[[Image.Image], Image.Image]]:
    """The encodings real web files carry, by name: as stored, JPEG q40, WebP q75, 320 px wide at JPEG q75, grey."""
    return {
        "as stored": lambda im: im,
        "JPEG q40": lambda im: saved(im, "JPEG", quality=40),
        "WebP q75": lambda im: saved(im, "WEBP", quality=75),
        "320 px, JPEG q75": lambda im: saved(im.resize((320, max(1, round(im.height * 320 / im.width)))), "JPEG",
                                              quality=75),
        "grey": lambda im: im.convert("L").convert("RGB"),
    }  # fmt: skip


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
