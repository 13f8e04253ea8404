"""Time per epoch of the seed preset on a store the size of the seminar's (123,287 images x 1000 codes).

    python bench/seed_epoch.py [--rows 123287] [--steps 300]

Writes a synthetic data/ folder in the seminar's formats (a protocol-2 caption pickle, as Python 2 writes them but
with unicode strings, 5 captions per row
drawn from a Zipf vocabulary of 27,929 words, about 10.4k of them seen 5+ times as in the seminar's COCO
captions, mean length about 10.5; float32 codes), imports it with
`captioner prepare --format seed`, then trains configs/seed.toml for --steps steps. Prints the import time, the
vocabulary size, the seconds per step and per epoch (an epoch in random mode is one pass worth of captions:
ceil(captions / 50) steps), and the step's achieved GFLOP/s as a share of the 2048^2 fp32 matmul peak measured
in the same run."""

from __future__ import annotations

import argparse
import math
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import matmul_peak

from captioner.cli.main import main as cli  # noqa: E402
from captioner.text.vocab import Vocab  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def write_seed(d: Path, rows: int, seed: int = 0) -> None:
    """caption_tokens.pcl and image_codes.npy in the seminar's structures, synthetic content."""
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(27_929)])
    p = 1.0 / np.arange(1, len(words) + 1) ** 1.38  # about 10.4k words seen 5+ times, as in COCO
    p /= p.sum()
    caps = []
    for _ in range(rows):
        lens = rng.integers(8, 14, size=5)
        caps.append([" ".join(words[rng.choice(len(words), size=n, p=p)]) for n in lens])
    d.mkdir(parents=True)
    (d / "caption_tokens.pcl").write_bytes(pickle.dumps(caps, protocol=2))
    codes = np.lib.format.open_memmap(d / "image_codes.npy", mode="w+", dtype=np.float32, shape=(rows, 1000))
    for s in range(0, rows, 8192):
        codes[s : s + 8192] = rng.normal(size=(min(8192, rows - s), 1000)).astype(np.float32)
    codes.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=123_287)
    ap.add_argument("--steps", type=int, default=300, help="steps to time (an epoch is extrapolated from them)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_seed(Path(tmp) / "data", a.rows)
        print(f"wrote the synthetic seminar files: {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        assert cli(["prepare", "--format", "seed", f"{tmp}/data", "--out", f"{tmp}/d"]) == 0
        print(f"prepare --format seed: {time.perf_counter() - t:.0f} s")
        vocab = Vocab.load(f"{tmp}/d/vocab.json")
        peak = matmul_peak(torch.float32)
        overrides = [f"train.data={tmp}/d", "train.val_images=0", "train.patience=0", "train.epochs=1"]
        times = []
        for steps in (20, 20 + a.steps):  # the difference removes start-up and the end-of-epoch save
            t = time.perf_counter()
            out = [f"train.out={tmp}/run{steps}", f"train.steps_per_epoch={steps}"]
            assert cli(["train", str(ROOT / "configs" / "seed.toml"), *overrides, *out]) == 0
            times.append(time.perf_counter() - t)
        per_step = (times[1] - times[0]) / a.steps
        epoch_steps = math.ceil(a.rows * 5 / 50)
        tokens = 50 * 11.5  # mean caption length + #END#
        flops = 3 * 2 * tokens * (4 * 200 * (128 + 200) + 200 * len(vocab))  # forward + backward of LSTM and head
        print(f"vocabulary {len(vocab)} entries; {per_step * 1000:.1f} ms per step of 50 captions")
        print(f"epoch ({epoch_steps} steps): {per_step * epoch_steps / 60:.1f} min")
        print(
            f"step GFLOP/s {flops / per_step / 1e9:.1f} = {flops / per_step / 1e9 / peak:.2f} x matmul peak {peak:.0f}"
        )


if __name__ == "__main__":
    main()
