"""The arguments several bench scripts take: a checkpoint and the open corpus it was trained on."""

from __future__ import annotations

import argparse
from pathlib import Path


def checkpoint_and_data(doc: str | None) -> tuple[str, Path]:
    """Parse `SCRIPT CHECKPOINT --data DATA` (the script's docstring as its help) -> (checkpoint, DATA)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", required=True, help="the open corpus the checkpoint was trained on")
    a = ap.parse_args()
    return a.checkpoint, Path(a.data)
