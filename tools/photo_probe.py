"""Train the photo test: a logistic probe on EfficientNet-Lite0's pooled vector, photo against drawing, and write
it as the package data that every caption policy carries (src/captioner/data/photo_probe.json).

    apt-get install lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds plasma-workspace-wallpapers \
        ukui-wallpapers gnome-backgrounds sway-backgrounds opencv-doc tuxpaint-stamps-default gcompris-qt-data
    python tools/photo_probe.py --data OPEN_CORPUS --out src/captioner/data/photo_probe.json

Photos: the desktop wallpapers among these packages that are camera photos (WALLPAPER_PHOTOS; the others are renders
and drawings, WALLPAPER_DRAWINGS), OpenCV's other sample photos (OPENCV_TRAIN_PHOTOS) and frames of its videos
tree.avi and vtest.avi, GCompris's photos of objects, tools, fish and farm animals (GCOMPRIS_TRAIN_PHOTOS), and the
open corpus's train Tux Paint photo cut-outs, also cropped to their ink and pasted on a wallpaper photo (in_scene).
Drawings: the open corpus's other train images (OpenClipart, emoji in three styles, Tux Paint's drawn stamps), frames
of OpenCV's animated Megamind.avi and its Blender renders. Training images carry the damage real files carry (damage():
JPEG at quality 30-95 with or without chroma subsampling, WebP, downscales to 200-640 px, grey, borders, a photo shown
inside a screenshot); photos are also cropped at random. Validation: the wallpapers split_of() puts in 'val', OpenCV's
sample photos and drawings (bench/common.py's OPENCV_PHOTOS, OPENCV_DRAWINGS), GCompris's photos of landmarks, wild
animals and musicians and its cartoon drawings (GCOMPRIS_VAL_PHOTOS, GCOMPRIS_VAL_DRAWINGS: other activities than
training's) and the corpus's validation drawings, each in the five encodings of bench/photo_test.py. The threshold is
chosen there: the lowest logit that reads at most MAX_DRAWINGS of the validation drawings as photos in every encoding.
The check sets (scikit-image's photos, the example images, the corpus's validation and test photo cut-outs, the photos
of people) are never read here."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))  # a build tool beside the benchmarks
from common import (  # noqa: E402
    GCOMPRIS_TRAIN_PHOTOS,
    GCOMPRIS_VAL_DRAWINGS,
    GCOMPRIS_VAL_PHOTOS,
    OPENCV_DATA,
    OPENCV_DRAWINGS,
    OPENCV_PHOTOS,
    WALLPAPER_DRAWINGS,
    WALLPAPER_PHOTOS,
    encodings,
    photo_stamp,
    rcc_images,
    saved,
    split_of,
)

from captioner.data.manifest import dataset_root, read_manifest  # noqa: E402
from captioner.features.encoders import load_encoder  # noqa: E402
from captioner.features.images import open_image  # noqa: E402
from captioner.files import write_json  # noqa: E402
from captioner.sights.photo import PHOTO_FLAT, PROBE_ENCODER, decide, flat_share  # noqa: E402

MAX_DRAWINGS = 0.02  # validation drawings the probe alone reads as photos, in every encoding
MAX_DRAWINGS_WITH_FLAT = 0.03  # ... and with the flat-patch test beside it (the goal: at most 3%)
MARGINS = np.arange(0.0, 20.01, 0.5)  # the margins tried: the largest within MAX_DRAWINGS_WITH_FLAT is chosen
CROPS = 12  # random crops of each training photo
OPENCV_TRAIN_PHOTOS = tuple(
    OPENCV_DATA / f
    for f in (  # none of them a pair of a validation photo
        "aloeL.jpg",
        "aloeR.jpg",
        "chicky_512.png",
        "pca_test1.jpg",
        "stuff.jpg",
        "text_defocus.jpg",
        "text_motion.jpg",
    )
)
L2 = 1e-3


def damage(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """One random combination of what web files do to an image."""
    if rng.random() < 0.5:
        side = int(rng.integers(200, 641))
        s = side / min(img.size)
        if s < 1:
            img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.BILINEAR)
    if rng.random() < 0.15:
        img = img.convert("L").convert("RGB")
    if rng.random() < 0.1:
        img = ImageOps.expand(img, int(rng.integers(2, 30)), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    if rng.random() < 0.05:  # shown inside a screenshot: a flat page around it
        page = Image.new("RGB", (img.width + 120, img.height + 160), (245, 245, 245))
        page.paste(img, (60, 100))
        img = page
    r = rng.random()
    if r < 0.5:
        return saved(img, "JPEG", quality=int(rng.integers(30, 96)), subsampling=int(rng.choice([0, 2])))
    if r < 0.8:
        return saved(img, "WEBP", quality=int(rng.integers(40, 91)))
    return img


def crop(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random crop of 30-100% of the area, aspect 3:4 to 4:3."""
    w, h = img.size
    area, aspect = rng.uniform(0.3, 1.0) * w * h, np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    cw, ch = min(w, round((area * aspect) ** 0.5)), min(h, round((area / aspect) ** 0.5))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return img.crop((x, y, x + cw, y + ch))


def in_scene(stamp: Image.Image, background: Image.Image, rng: np.random.Generator) -> list[Image.Image]:
    """A photo cut-out (on white) as full-frame photos: cropped to its ink, and pasted on a background photo."""
    arr = np.asarray(stamp)
    ink = (arr < 250).any(-1)
    ys, xs = np.nonzero(ink)
    tight = stamp.crop((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    back = np.asarray(crop(background, rng).resize(stamp.size, Image.BILINEAR)).copy()
    back[ink] = arr[ink]
    return [damage(tight, rng), damage(Image.fromarray(back), rng)]


def frames(video: Path, every: int) -> list[Image.Image]:
    """Every `every`-th frame of a video file, as RGB images."""
    import cv2

    cap, out, i = cv2.VideoCapture(str(video)), [], 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            return out
        if i % every == 0:
            out.append(Image.fromarray(np.ascontiguousarray(bgr[..., ::-1])))
        i += 1


@torch.inference_mode()
def pooled(enc, images: list[Image.Image], flat: bool = False) -> np.ndarray:  # type: ignore[no-untyped-def]
    """(N, 1280) pooled vectors, 32 at a time; with flat, also each image's flat_share (N, 1281)."""
    out = []
    for i in range(0, len(images), 32):
        x = torch.stack([enc.preprocess(im) for im in images[i : i + 32]])
        v = enc.forward_features(x).pooled.float().numpy()
        out.append(np.c_[v, flat_share(x.numpy())] if flat else v)
    return np.concatenate(out)


def chosen_margin(scores: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> float:
    """The largest of MARGINS at which photo.photo_like's rule reads at most MAX_DRAWINGS_WITH_FLAT of the
    validation drawings as photos in every encoding; scores: encoding -> (photo logits, their flat shares,
    drawing logits, their flat shares), the logits already shifted to the chosen threshold."""
    def rate(s: np.ndarray, f: np.ndarray, m: float) -> float:
        return float(decide(s, f <= PHOTO_FLAT, m).mean())

    ok = [m for m in MARGINS if all(rate(ds, df, m) <= MAX_DRAWINGS_WITH_FLAT for _, _, ds, df in scores.values())]
    return float(max(ok, default=0.0))


def fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Class-balanced L2 logistic regression (LBFGS) on standardised inputs -> (weights, bias) on raw inputs."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt, yt = torch.from_numpy((x - mu) / sd).double(), torch.from_numpy(y).double()
    wt = torch.where(yt > 0, 0.5 / yt.mean(), 0.5 / (1 - yt.mean()))
    w, b = (
        torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True),
        torch.zeros(1, dtype=torch.float64, requires_grad=True),
    )
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (wt * torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt, reduction="none")).mean()
        loss = loss + L2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    wr = w.detach().numpy() / sd
    return wr, float(b.item() - (wr * mu).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the open corpus (captioner data open-clipart)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng, enc = np.random.default_rng(a.seed), load_encoder(PROBE_ENCODER)
    data, root = Path(a.data), dataset_root(Path(a.data))
    photos = {s: [p for p in WALLPAPER_PHOTOS if p.is_file() and split_of(p) == s] for s in ("train", "val")}
    walls = {s: [p for p in WALLPAPER_DRAWINGS if p.is_file() and split_of(p) == s] for s in ("train", "val")}
    backgrounds = [open_image(p) for p in photos["train"]]
    train_p, train_d, val_d = [], [], []
    for it in read_manifest(data):
        img = open_image(root / it.image)
        if it.source == "tuxpaint" and photo_stamp(img):
            if it.split == "train":
                back = backgrounds[int(rng.integers(len(backgrounds)))]
                train_p += [img, damage(img, rng), *in_scene(img, back, rng)]
        elif it.split == "train":
            train_d.append(damage(img, rng) if rng.random() < 0.7 else img)
        elif it.split == "val":
            val_d.append(img)
    for big in backgrounds + [open_image(p) for p in OPENCV_TRAIN_PHOTOS]:
        train_p += [damage(crop(big, rng), rng) for _ in range(CROPS)]
    for im in (im for a in GCOMPRIS_TRAIN_PHOTOS for im in rcc_images(a)):
        train_p += [damage(im, rng), damage(crop(im, rng), rng)]
    train_p += [damage(im, rng) for im in frames(OPENCV_DATA / "tree.avi", 5) + frames(OPENCV_DATA / "vtest.avi", 40)]
    train_d += [damage(im, rng) for im in frames(OPENCV_DATA / "Megamind.avi", 10)]
    renders = [open_image(OPENCV_DATA / f"Blender_Suzanne{i}.jpg") for i in (1, 2)]
    train_d += [damage(crop(im, rng), rng) for im in renders for _ in range(6)]
    for p in walls["train"]:
        big = open_image(p)
        train_d += [damage(crop(big, rng), rng) for _ in range(3)]
    val_p = [open_image(p) for p in photos["val"] + [q for q in OPENCV_PHOTOS if q.is_file()]]
    val_p += [im for a in GCOMPRIS_VAL_PHOTOS for im in rcc_images(a)]
    val_d += [open_image(p) for p in walls["val"] + [q for q in OPENCV_DRAWINGS if q.is_file()]]
    val_d += [im for a in GCOMPRIS_VAL_DRAWINGS for im in rcc_images(a)]
    print(f"train: {len(train_p)} photos, {len(train_d)} drawings; val: {len(val_p)} photos, {len(val_d)} drawings")
    x = np.concatenate([pooled(enc, train_p), pooled(enc, train_d)])
    w, b = fit(x, np.r_[np.ones(len(train_p)), np.zeros(len(train_d))].astype(np.float32))
    val = {name: (pooled(enc, [e(im) for im in val_p], True), pooled(enc, [e(im) for im in val_d], True))
           for name, e in encodings().items()}  # fmt: skip
    cut = max(float(np.quantile(d[:, :-1] @ w + b, 1 - MAX_DRAWINGS)) for _, d in val.values())
    scores = {n: (p[:, :-1] @ w + b - cut, p[:, -1], d[:, :-1] @ w + b - cut, d[:, -1]) for n, (p, d) in val.items()}
    margin = chosen_margin(scores)
    rule = lambda s, f: float(decide(s, f <= PHOTO_FLAT, margin).mean())  # noqa: E731
    print(f"margin {margin}\n| encoding | photos read as photos: probe / with flat | drawings: probe / with flat |")
    print("|---|---|---|")
    for name, (ps, pf, ds, df) in scores.items():
        print(f"| {name} | {(ps > 0).mean():.1%} / {rule(ps, pf):.1%} | {(ds > 0).mean():.1%} / {rule(ds, df):.1%} |")
    write_json(Path(a.out), {"encoder": PROBE_ENCODER, "weights": [round(float(v), 7) for v in w],
                             "bias": round(b - cut, 7), "margin": margin, "seed": a.seed,
                             "trained_on": {"photos": len(train_p), "drawings": len(train_d)},
                             "validation": {"photos": len(val_p), "drawings": len(val_d)}})  # fmt: skip

if __name__ == "__main__":
    main()
