"""Decoders, and the one contract (Decoder) that training, decoding, evaluation and serving rely on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

from captioner.config import ModelConfig
from captioner.models.attend import Attend
from captioner.models.copy import CopyDecoder
from captioner.models.showtell import ShowTell

State = dict[str, torch.Tensor]  # every tensor has the batch on dim 0


class Decoder(Protocol):
    """A caption decoder. step and forward may give logits or log-probabilities (the copy decoder's mixture):
    decoding normalises both alike. Capabilities are declared as class attributes, never probed:

    attends: after each step the state holds 'alpha' (B, cells), the attention over the encoder's grid
    offers_classes: offered(feats) -> (probabilities, word ids), each (B, k), of the classifier's top-k classes,
        which photo naming and the copy loss weight use"""

    attends: bool
    offers_classes: bool

    def init_state(self, feats: torch.Tensor) -> State:
        """Image features (B, ...) -> the state before #START#."""
        ...

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """tokens (B,) -> next-word scores (B, V) and the next state."""
        ...

    def forward(self, feats: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: tokens (B, T) -> scores (B, T, V)."""
        ...

    def offered(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Only where offers_classes: the top classes' probabilities and word ids, (B, k) each."""
        ...


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
