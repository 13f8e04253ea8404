"""Captioning at volume, measured in one run on the same images: `captioner caption --out` in one process, the
same with `--shard I/2` in two processes at once (then `--merge 2`), and Ray Data (captioner.ray) with one actor
of all CPUs and with two actors of half each, on a local Ray instance. Each as images/s (wall clock of the whole
command, model loading included; for Ray, from the dataset's start, the running instance taken as given) and as a
ratio to the one CLI process, with the share of captions equal to the CLI's.

    python bench/scale.py [--images 400] [--cpus 2] [--no-people]

The images are the example and scikit-image photos, each cut into several crops and saved as JPEG at several
qualities, so that no two are alike."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import skimage.data as sd
from PIL import Image

ROOT = Path(__file__).parents[1]


def make_images(folder: Path, count: int) -> list[Path]:
    """count JPEG photos: crops of the example and scikit-image photos at varied sizes and qualities."""
    sources = sorted((ROOT / "examples" / "images").glob("*.jpg")) + sorted(Path(sd.__file__).parent.glob("*.png"))
    photos = [Image.open(p).convert("RGB") for p in sources]
    photos = [im for im in photos if min(im.size) >= 256]
    rng = np.random.default_rng(0)
    out = []
    for k in range(count):
        im = photos[k % len(photos)]
        w, h = im.size
        side = int(rng.integers(int(0.6 * min(w, h)), min(w, h) + 1))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        crop = im.crop((x, y, x + side, y + side)).resize((int(rng.integers(240, 640)),) * 2)
        path = folder / f"photo{k:05d}.jpg"
        crop.save(path, quality=int(rng.integers(40, 96)))
        out.append(path)
    return out


def _captioner(*args: str) -> list[str]:
    return [sys.executable, "-m", "captioner.cli", "caption", *args]


def cli(folder: Path, out: Path, extra: list[str]) -> float:
    """Seconds for one `captioner caption --out` process."""
    t = time.perf_counter()
    subprocess.run(_captioner(str(folder), "--out", str(out), *extra), check=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def shards(folder: Path, out: Path, extra: list[str], n: int = 2) -> float:
    """Seconds for n `--shard i/n` processes run at once, and the merge."""
    t = time.perf_counter()
    procs = [
        subprocess.Popen(_captioner(str(folder), "--out", str(out), "--shard", f"{i}/{n}", *extra),
                         stderr=subprocess.DEVNULL)
        for i in range(n)
    ]  # fmt: skip
    if any(p.wait() for p in procs):
        raise SystemExit("a shard failed")
    subprocess.run(_captioner(str(folder), "--out", str(out), "--merge", str(n)), check=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def ray_data(paths: list[Path], actors: int, cpus: int, people: bool) -> tuple[float, dict[str, str]]:
    """Seconds for captioner.ray with `actors` actors of cpus/actors CPUs each, and its captions by path."""
    import ray

    from captioner.ray import caption_dataset

    t = time.perf_counter()
    ds = ray.data.from_items([{"path": str(p)} for p in paths])
    rows = caption_dataset(ds, batch_size=16, concurrency=actors, num_cpus=cpus / actors, people=people).take_all()
    return time.perf_counter() - t, {r["path"]: r["caption"] for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=400, help="photos to caption")
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPUs of the local Ray instance")
    ap.add_argument("--no-people", action="store_true", help="caption without the people detectors")
    a = ap.parse_args()
    extra = ["--no-people"] if a.no_people else []
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "img").mkdir()
        paths = make_images(t / "img", a.images)
        ref = cli(t / "img", t / "cli.jsonl", extra)
        want = {r["path"]: r.get("caption") for r in map(json.loads, (t / "cli.jsonl").read_text().splitlines())}
        results = [("CLI, one process", ref, want)]
        sh = shards(t / "img", t / "shards.jsonl", extra)
        got = {r["path"]: r.get("caption") for r in map(json.loads, (t / "shards.jsonl").read_text().splitlines())}
        results.append(("CLI, --shard I/2 in two processes", sh, got))
        ray.init(num_cpus=a.cpus, include_dashboard=False, log_to_driver=False)
        try:
            for actors in (1, 2):
                secs, got = ray_data(paths, actors, a.cpus, not a.no_people)
                results.append((f"Ray Data, {actors} actor(s) of {a.cpus / actors:g} CPUs", secs, got))
        finally:
            ray.shutdown()
    print(f"{a.images} JPEG photos, {a.cpus} CPUs, people detectors {'off' if a.no_people else 'on'}")
    print("| way | images/s | ratio to the CLI | captions equal to the CLI's |")
    print("|---|---|---|---|")
    for name, secs, got in results:
        same = sum(got.get(p) == c for p, c in want.items()) / len(want)
        print(f"| {name} | {a.images / secs:.1f} | {ref / secs:.2f} | {same:.1%} |")


if __name__ == "__main__":
    main()
