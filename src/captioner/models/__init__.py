"""Decoders. Each exposes forward(feats, tokens) -> logits for training and
init_state(feats) / step(tokens, state) -> (logits, state) for decoding."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..config import ModelConfig
from .attend import Attend
from .copy import CopyDecoder
from .showtell import ShowTell

BUILDERS: dict[str, Callable[[ModelConfig, int, int], nn.Module]] = {
    "showtell": ShowTell,
    "attend": Attend,
    "copy": CopyDecoder,
}


def build_model(cfg: ModelConfig, vocab_size: int, feat_dim: int) -> nn.Module:
    """Instantiate the decoder named by cfg.kind."""
    return BUILDERS[cfg.kind](cfg, vocab_size, feat_dim)


def feature_kind(cfg: ModelConfig) -> str:
    """Which cached feature array the model reads."""
    return {"attend": "grid", "copy": "pooled+logits"}.get(cfg.kind, cfg.feature)
