"""`captioner data scenes`: seeded synthetic scenes of 1-3 coloured shapes, captioned from their scene graph.

Captions state count, colour and left-to-right position ("a red circle to the left of two blue squares").
Scenes holding a held-out colour-shape combination never reach training: they form a separate 'novel'
dataset (out/novel/), so compositional generalisation is measured apart from in-distribution accuracy."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..files import write_bytes
from ..imagenet import with_article
from .manifest import Item, split_by_hash, write_manifest

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (40, 70, 220),
    "yellow": (235, 200, 20),
    "purple": (140, 50, 170),
    "orange": (245, 130, 20),
}
SHAPES = ("circle", "square", "triangle")
HELD_OUT = frozenset({("red", "triangle"), ("blue", "circle"), ("yellow", "square")})
NUMBERS = {2: "two", 3: "three"}
SIZE = 224

Obj = tuple[str, str]  # (colour, shape)


def phrase(objs: Sequence[Obj]) -> str:
    """'a red circle', 'two blue squares' for a group of identical objects."""
    colour, shape = objs[0]
    if len(objs) == 1:
        return with_article(f"{colour} {shape}")
    return f"{NUMBERS[len(objs)]} {colour} {shape}s"


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


def draw(scene: Sequence[Obj], rng: np.random.Generator) -> Image.Image:
    """Render objects in left-to-right slots with a little jitter."""
    img = _background(rng)
    d = ImageDraw.Draw(img)
    slot = SIZE / len(scene)
    for k, (colour, shape) in enumerate(scene):
        r = int(min(slot, SIZE) * rng.uniform(0.28, 0.4))
        cx = int(slot * (k + 0.5) + rng.uniform(-0.08, 0.08) * slot)
        cy = int(SIZE / 2 + rng.uniform(-0.25, 0.25) * SIZE)
        box = (cx - r, cy - r, cx + r, cy + r)
        fill = COLOURS[colour]
        if shape == "circle":
            d.ellipse(box, fill=fill)
        elif shape == "square":
            d.rectangle(box, fill=fill)
        else:
            d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    return img


def random_scene(rng: np.random.Generator) -> list[Obj]:
    n = int(rng.integers(1, 4))
    objs = [(str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES))) for _ in range(n)]
    if n > 1 and rng.random() < 0.3:
        objs[1] = objs[0]  # identical neighbours, so counting happens
    return objs


def build_scenes(out: str | Path, count: int = 3000, seed: int = 0) -> dict[str, int]:
    """Render `count` scenes into out/images; out/ gets train/val/test, out/novel/ the held-out combinations."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    seen, novel = [], []
    for i in range(count):
        scene = random_scene(rng)
        img = draw(scene, rng)
        key = f"images/scene{i:05d}.png"
        path = out / key
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        img.save(buf, "PNG")
        write_bytes(path, buf.getvalue())
        if HELD_OUT & set(scene):
            novel.append(Item(key, [caption(scene)], "test", "scenes", "CC0"))
        else:
            seen.append(Item(key, [caption(scene)], split_by_hash(key, (0.8, 0.1, 0.1)), "scenes", "CC0"))
    write_manifest(out, seen, out, format="scenes", seed=seed)
    write_manifest(out / "novel", novel, out, format="scenes-novel", seed=seed, held_out=sorted(map(list, HELD_OUT)))
    splits = {s: sum(it.split == s for it in seen) for s in ("train", "val", "test")}
    return {**splits, "novel": len(novel)}
