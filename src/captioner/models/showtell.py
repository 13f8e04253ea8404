"""The seed's Show-and-Tell decoder: image -> LSTM initial state, then one word per step."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from ..text import PAD_IX

State = dict[str, torch.Tensor]  # every tensor has the batch on dim 0


class ShowTell(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int, feat_dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.embed, padding_idx=PAD_IX)
        self.drop = nn.Dropout(cfg.dropout)
        self.img_to_c = nn.Linear(feat_dim, cfg.hidden)
        self.img_to_h = nn.Linear(feat_dim, cfg.hidden) if cfg.init_hidden else None
        self.lstm = nn.LSTM(cfg.embed, cfg.hidden, batch_first=True)
        self.head = nn.Linear(cfg.hidden, vocab_size)

    def init_state(self, feats: torch.Tensor) -> State:
        """feats (B, D) -> LSTM state {h, c}: (B, H) each."""
        x = self.drop(feats)  # (B, D)
        c = self.img_to_c(x)  # (B, H)
        h = self.img_to_h(x) if self.img_to_h is not None else torch.zeros_like(c)  # (B, H)
        return {"h": h, "c": c}

    def forward(self, feats: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing. feats (B, D), tokens (B, T) = #START# w1 .. -> logits (B, T, V)."""
        s = self.init_state(feats)
        x = self.embed(tokens)  # (B, T, E)
        out, _ = self.lstm(x, (s["h"][None], s["c"][None]))  # (B, T, H); padding sits after the words
        return self.head(out)  # (B, T, V)

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One decoding step. tokens (B,) -> logits (B, V) and the next state."""
        x = self.embed(tokens)[:, None]  # (B, 1, E)
        out, (h, c) = self.lstm(x, (state["h"][None].contiguous(), state["c"][None].contiguous()))
        return self.head(out[:, 0]), {"h": h[0], "c": c[0]}  # (B, V)
