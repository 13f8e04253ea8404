"""Grey photographs and images.photo_like: how often is a grey image read right?

    python bench/grey_photos.py DATA

photo_like calls an image a photo when at most 1% of its foreground lies in exactly flat 2 x 2 blocks (all
three channels equal). A grey image has one channel, quantised to 8 bits, so equal neighbours are common and
grey photos read as drawings (scikit-image's camera, OpenCV's basketball1: the face rules then never look).
This prints, for windows of 2, 3 and 4 pixels (the block must be exactly equal in the one channel), the
percentiles of that flat share and the share of images read as photos (<= 1%) on: the grey drawings among the
first 3,000 training images of DATA (emoji and OpenClipart renders), the first 150 Tux Paint raster stamps with
more than 1,000 colours (outside 'cartoon' folders) made grey, scikit-image's grey photos and basketball1. Then
a second signal, the entropy of the grey levels: the value 2% of the grey drawings reach, and the share of each
set that reaches it."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
import skimage.data as sd
from PIL import Image

from captioner.api import Captioner
from captioner.features.images import open_image

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")  # apt-get install opencv-doc
SK_GREY = ("camera.png", "moon.png", "brick.png", "coins.png", "grass.png", "gravel.png", "clock_motion.png",
           "text.png", "page.png")  # fmt: skip


def flat(x: np.ndarray, n: int) -> float:
    """Share of the foreground (the commonest value left out) whose n x n block is exactly one value: on a grey
    image, images.flat_share generalised from 2 x 2 (n = 2 gives its value: camera 0.1173, moon 0.0217)."""
    g = x[0, 0]  # (S, S): grey, so one channel says all
    s = g.shape[0] - n + 1
    core = g[:s, :s]
    same = np.ones_like(core, dtype=bool)
    for dy in range(n):
        for dx in range(n):
            same &= core == g[dy : dy + s, dx : dx + s]
    values, counts = np.unique(core, return_counts=True)
    fg = core != values[counts.argmax()]
    return float((same & fg).sum() / max(1, fg.sum()))


def is_grey(im: Image.Image) -> bool:
    a = np.asarray(im).astype(np.int16)
    return bool(np.abs(a[..., 0] - a[..., 1]).max() <= 2 and np.abs(a[..., 1] - a[..., 2]).max() <= 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    root = Path(ap.parse_args().data)
    cap = Captioner.load()
    rows = [json.loads(line) for line in (root / "manifest.jsonl").open() if '"split": "train"' in line]
    random.Random(0).shuffle(rows)
    sets: dict[str, list[Image.Image]] = {"grey drawings": [], "photo stamps made grey": []}
    for r in rows[:3000]:
        im = open_image(root / r["image"])
        if r["source"] != "tuxpaint" and is_grey(im):
            sets["grey drawings"].append(im)
        elif r["source"] == "tuxpaint" and "/cartoon/" not in r["image"] and len(sets["photo stamps made grey"]) < 150:
            if len(np.unique(np.asarray(im).reshape(-1, 3), axis=0)) > 1000:
                sets["photo stamps made grey"].append(im.convert("L").convert("RGB"))
    sets["scikit-image grey photos"] = [open_image(Path(sd.__file__).parent / f) for f in SK_GREY]
    sets["basketball1 (opencv-doc)"] = [open_image(OPENCV_DATA / "basketball1.png")]
    print("| images | n | window | flat share p25 / p50 / p75 | read as photos |")
    print("|---|---|---|---|---|")
    for name, ims in sets.items():
        xs = [cap.preprocess(im)[None] for im in ims]
        for n in (2, 3, 4):
            v = np.array([flat(x, n) for x in xs])
            q = " / ".join(f"{np.percentile(v, p):.4f}" for p in (25, 50, 75))
            print(f"| {name} | {len(v)} | {n} | {q} | {np.mean(v <= 0.01):.0%} |")
    bits = {name: np.array([spread(cap.preprocess(im)) for im in ims]) for name, ims in sets.items()}
    top = np.sort(bits["grey drawings"])[::-1]
    t = float(np.ceil(top[int(0.02 * len(top))] * 100) / 100)
    print(f"grey-level entropy (bits, background left out); {t:.2f} is reached by 2% of the grey drawings:")
    for name, v in bits.items():
        q = " / ".join(f"{np.percentile(v, p):.2f}" for p in (25, 50, 75))
        print(f"  {name}: p25 / p50 / p75 {q}; >= {t:.2f}: {np.mean(v >= t):.0%}; {np.round(v[:9], 2).tolist()}")


def spread(x: np.ndarray) -> float:
    """Entropy in bits of the first channel's levels (for a grey image, its grey levels), the commonest left out."""
    _, counts = np.unique(x[0], return_counts=True)
    p = np.delete(counts, counts.argmax()) / max(1, counts.sum() - counts.max())
    return float(-(p[p > 0] * np.log2(p[p > 0])).sum())


if __name__ == "__main__":
    main()
