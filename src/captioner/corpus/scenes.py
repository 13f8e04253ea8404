"""`captioner data scenes`: seeded synthetic scenes of 1-3 objects, captioned from their scene graph.

Objects are coloured shapes and, where the Tux Paint stamps of the open corpus are installed, photo cut-outs
of a duck, a frog and an apple. Captions state count, colour and left-to-right position
("a red circle to the left of two ducks").
Scenes holding a held-out colour-shape combination never reach training: they form a separate 'novel'
dataset (out/novel/), so compositional generalisation is measured apart from in-distribution accuracy."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from captioner.corpus.opencorpus import TUXPAINT
from captioner.data.manifest import Item, split_by_hash, write_manifest
from captioner.features.imagenet import with_article
from captioner.files import write_bytes

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (40, 70, 220),
    "yellow": (235, 200, 20),
    "purple": (140, 50, 170),
    "orange": (245, 130, 20),
}
SHAPES = ("circle", "square", "triangle")
# Photo cut-outs from Debian's tuxpaint-stamps-default (part of the open corpus); they keep their own colours.
CUTOUTS = {"duck": "animals/birds/duck.png", "frog": "animals/amphibians/frog.png", "apple": "food/fruit/apple_red.png"}
CUTOUT_SHARE = 0.25  # chance that an object is a cut-out, when cut-outs are available
HELD_OUT = frozenset({("red", "triangle"), ("blue", "circle"), ("yellow", "square")})
NUMBERS = {2: "two", 3: "three"}
SIZE = 224

Obj = tuple[str, str]  # (colour, shape); colour is "" for a cut-out


def phrase(objs: Sequence[Obj]) -> str:
    """'a red circle', 'two blue squares', 'a duck' for a group of identical objects."""
    colour, shape = objs[0]
    name = f"{colour} {shape}".strip()
    if len(objs) == 1:
        return with_article(name)
    return f"{NUMBERS[len(objs)]} {name}s"


def caption(scene: Sequence[Obj]) -> str:
    """Objects listed left to right; identical neighbours are counted together."""
    groups: list[list[Obj]] = []
    for obj in scene:
        if groups and groups[-1][0] == obj:
            groups[-1].append(obj)
        else:
            groups.append([obj])
    parts = [phrase(g) for g in groups]
    if len(parts) == 1:
        return parts[0]
    return f"{parts[0]} to the left of {' and '.join(parts[1:])}"


def _background(rng: np.random.Generator) -> Image.Image:
    base = rng.integers(200, 256, 3)
    if rng.random() < 0.5:  # plain
        return Image.new("RGB", (SIZE, SIZE), tuple(int(c) for c in base))
    noise = rng.integers(-25, 26, (SIZE // 8, SIZE // 8, 1))  # coarse texture
    arr = np.clip(base + np.kron(noise, np.ones((8, 8, 1), int)), 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def load_cutouts(folder: Path) -> dict[str, Image.Image]:
    """The cut-out stamps as RGBA images, or {} when the folder does not have them all."""
    paths = {name: folder / rel for name, rel in CUTOUTS.items()}
    if not all(p.is_file() for p in paths.values()):
        return {}
    return {name: Image.open(p).convert("RGBA") for name, p in paths.items()}


def draw(scene: Sequence[Obj], rng: np.random.Generator, cutouts: dict[str, Image.Image] | None = None) -> Image.Image:
    """Render objects in left-to-right slots with a little jitter."""
    img = _background(rng)
    d = ImageDraw.Draw(img)
    slot = SIZE / len(scene)
    for k, (colour, shape) in enumerate(scene):
        r = int(min(slot, SIZE) * rng.uniform(0.28, 0.4))
        cx = int(slot * (k + 0.5) + rng.uniform(-0.08, 0.08) * slot)
        cy = int(SIZE / 2 + rng.uniform(-0.25, 0.25) * SIZE)
        box = (cx - r, cy - r, cx + r, cy + r)
        if not colour:  # a cut-out, scaled to fit the box
            stamp = (cutouts or {})[shape].copy()
            stamp.thumbnail((2 * r, 2 * r))
            img.paste(stamp, (cx - stamp.width // 2, cy - stamp.height // 2), stamp)
            continue
        fill = COLOURS[colour]
        if shape == "circle":
            d.ellipse(box, fill=fill)
        elif shape == "square":
            d.rectangle(box, fill=fill)
        else:
            d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    return img


def random_object(rng: np.random.Generator, cutouts: Sequence[str]) -> Obj:
    if cutouts and rng.random() < CUTOUT_SHARE:
        return ("", str(rng.choice(list(cutouts))))
    return (str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES)))


def random_scene(rng: np.random.Generator, cutouts: Sequence[str] = ()) -> list[Obj]:
    n = int(rng.integers(1, 4))
    objs = [random_object(rng, cutouts) for _ in range(n)]
    if n > 1 and rng.random() < 0.3:
        objs[1] = objs[0]  # identical neighbours, so counting happens
    return objs


def build_scenes(
    out: str | Path, count: int = 3000, seed: int = 0, cutout_dir: Path | None = TUXPAINT
) -> dict[str, int]:
    """Render `count` scenes into out/images; out/ gets train/val/test, out/novel/ the held-out combinations.

    Cut-outs come from `cutout_dir` (Tux Paint stamps); without them the scenes hold shapes only."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    cutouts = load_cutouts(cutout_dir) if cutout_dir else {}
    seen, novel = [], []
    for i in range(count):
        scene = random_scene(rng, sorted(cutouts))
        img = draw(scene, rng, cutouts)
        key = f"images/scene{i:05d}.png"
        path = out / key
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        img.save(buf, "PNG")
        write_bytes(path, buf.getvalue())
        if HELD_OUT & set(scene):
            novel.append(Item(key, [caption(scene)], "test", "scenes", "CC0", langs=["en"]))
        else:
            seen.append(Item(key, [caption(scene)], split_by_hash(key, (0.8, 0.1, 0.1)), "scenes", "CC0", langs=["en"]))
    extra = {"seed": seed, "cutouts": sorted(cutouts)}
    write_manifest(out, seen, out, format="scenes", **extra)
    write_manifest(out / "novel", novel, out, format="scenes-novel", held_out=sorted(map(list, HELD_OUT)), **extra)
    splits = {s: sum(it.split == s for it in seen) for s in ("train", "val", "test")}
    return {**splits, "novel": len(novel), "cutouts": len(cutouts)}
