"""Slow, end to end on real data where it is installed: a small model trained on a slice of the open corpus
(Debian's Tux Paint stamps) beats its own untrained start on validation CIDEr-D.

    python -m pytest -m slow tests/test_real_corpus.py     # needs tuxpaint-stamps-default and '.[corpus]'"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from captioner.config import load_config
from captioner.models import build_model
from captioner.train.checkpoint import load_checkpoint
from captioner.train.loop import load_data, train, validate

STAMPS = Path("/usr/share/tuxpaint/stamps")


@pytest.mark.slow
def test_small_model_on_the_real_corpus_beats_its_untrained_start(tmp_path: Path) -> None:
    pytest.importorskip("cairosvg", reason="pip install -e '.[corpus]'")
    if not STAMPS.is_dir():
        pytest.skip("apt-get install tuxpaint-stamps-default")
    from captioner.corpus.opencorpus import build_open_corpus

    build_open_corpus(tmp_path / "open", sources=["tuxpaint"], min_count=2)
    preset = Path(__file__).parents[1] / "configs" / "open_clipart.toml"
    overrides = [f"train.data={tmp_path / 'open'}", f"train.out={tmp_path / 'run'}", "train.epochs=8"]
    cfg = load_config(preset, [*overrides, "model.embed=64", "model.hidden=128", "train.patience=0"])
    d = load_data(cfg)
    torch.manual_seed(cfg.train.seed)
    untrained = build_model(cfg.model, len(d.vocab), d.store.get(d.kind, [0]).shape[1])
    untrained.class_word.copy_(torch.tensor(d.class_word))
    before = validate(untrained, d, cfg, torch.device("cpu"))["CIDEr-D"]
    train(cfg)
    after = validate(load_checkpoint(tmp_path / "run" / "best").model, d, cfg, torch.device("cpu"))["CIDEr-D"]
    assert after > before + 0.1, (before, after)
