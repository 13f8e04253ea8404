"""torchrun with 2 CPU processes (gloo): the loss trajectory matches one process at the same global batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from captioner.cli.main import main

ARGS = [
    "train.epochs=3",
    "train.steps_per_epoch=10",
    "train.batch_size=18",
    "train.lr=0.005",
    "model.dropout=0",
    "train.checkpoint_every=7",
]
TOLERANCE = 0.02  # relative, per epoch: ranks average their own token means, not the global token mean


def _history(out: Path) -> list[dict]:
    return json.loads((out / "latest" / "train_state.json").read_text())["history"]


def test_two_process_torchrun_matches_single_process(shapes_data: Path, tmp_path: Path) -> None:
    assert main(["train", f"train.data={shapes_data}", f"train.out={tmp_path / 'one'}", *ARGS]) == 0
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",
        "-m",
        "captioner.cli",
        "train",
        f"train.data={shapes_data}",
        f"train.out={tmp_path / 'two'}",
        *ARGS,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = _history(tmp_path / "one"), _history(tmp_path / "two")
    assert [h["step"] for h in one] == [h["step"] for h in two] == [10, 20, 30]
    for a, b in zip(one, two, strict=True):
        for key in ("train_loss", "val_loss"):
            assert abs(a[key] - b[key]) <= TOLERANCE * abs(a[key]), (key, a[key], b[key])
    assert (tmp_path / "two" / "best" / "model.safetensors").exists()
    # a distributed run resumes: two more epochs from its own checkpoint
    proc = subprocess.run([*cmd, "train.epochs=5", "--resume"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [h["epoch"] for h in _history(tmp_path / "two")] == [1, 2, 3, 4, 5]
