"""COCO-scale memory: train 200 steps on a synthetic feature store the size of MS-COCO and report peak RSS.

    python bench/memory.py [--dir /tmp/coco-synth] [--images 123287] [--steps 200]

Builds 123,287 images x 1280 pooled fp16 features (random) and a 7x7x1280 grid file (a sparse file of zeros:
writing 15 GB of random numbers would only measure the disk), a manifest with 5 captions each, then trains
the pooled Show-and-Tell model and the attention model for 200 steps each in a child process, and prints the
child's peak RSS against the feature files' sizes. Goals: < 3 GB (pooled); < 25% of the grid file (attention).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from captioner.corpus.prepare import build_vocab
from captioner.features.encoders import load_encoder
from captioner.features.extract import FORMAT_VERSION, INDEX, SPEC, _list_hash
from captioner.files import write_json

WORDS = "a the man woman dog cat red blue small big on in with near table street car bus tree grass".split()


def build(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    images = [f"COCO_train2014_{i:012d}.jpg" for i in range(n)]
    spec = load_encoder().spec
    feats = root / "features"
    feats.mkdir(parents=True, exist_ok=True)
    pooled = open_memmap(feats / "pooled.npy", mode="w+", dtype=np.float16, shape=(n, 1280))
    for s in range(0, n, 8192):
        pooled[s : s + 8192] = rng.normal(size=(min(8192, n - s), 1280)).astype(np.float16)
    pooled.flush()
    open_memmap(feats / "logits.npy", mode="w+", dtype=np.float16, shape=(n, 1000)).flush()
    open_memmap(feats / "grid.npy", mode="w+", dtype=np.float16, shape=(n, 49, 1280)).flush()  # sparse zeros
    meta = {"version": FORMAT_VERSION, "images_sha1": _list_hash(images), "grid": True, "spec": spec.to_json()}
    write_json(feats / SPEC, spec.to_json())
    write_json(feats / INDEX, {**meta, "images": images, "failed": {}, "outputs": ["grid", "logits", "pooled"]})
    with open(root / "manifest.jsonl", "w") as f:
        for i, im in enumerate(images):
            caps = [" ".join(rng.choice(WORDS, size=int(rng.integers(6, 14)))) for _ in range(5)]
            f.write(json.dumps({"image": im, "captions": caps, "split": "val" if i < 500 else "train"}) + "\n")
    (root / "dataset.json").write_text(json.dumps({"root": "."}))
    from captioner.data.manifest import read_manifest

    build_vocab(read_manifest(root), 5)[0].save(root / "vocab.json")


def train_child(root: Path, kind: str, steps: int) -> float:
    """Peak RSS (GB) of a child process that trains `steps` steps."""
    out = root / f"run-{kind}"
    shutil.rmtree(out, ignore_errors=True)
    code = (
        "import resource, sys; from captioner.cli.main import main; "
        f"main(['train', 'train.data={root}', 'train.out={out}', 'model.kind={kind}', 'train.epochs=1', "
        f"'train.steps_per_epoch={steps}', 'train.val_images=100', 'train.patience=0']); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(proc.stdout.strip().splitlines()[-1]) / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", default="/tmp/coco-synth")
    ap.add_argument("--images", type=int, default=123_287)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--keep", action="store_true", help="keep the synthetic store afterwards")
    a = ap.parse_args()
    root = Path(a.dir)
    try:
        build(root, a.images)
        sizes = {k: (root / "features" / f"{k}.npy").stat().st_size / 1024**3 for k in ("pooled", "grid")}
        print(f"{a.images} images x 5 captions; pooled.npy {sizes['pooled']:.2f} GB, grid.npy {sizes['grid']:.2f} GB")
        rss = train_child(root, "showtell", a.steps)
        print(f"showtell (pooled): peak RSS {rss:.2f} GB after {a.steps} steps (goal < 3 GB)")
        rss = train_child(root, "attend", a.steps)
        print(f"attend (grid):     peak RSS {rss:.2f} GB = {rss / sizes['grid']:.1%} of grid.npy (goal < 25%)")
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
