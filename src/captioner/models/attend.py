"""Soft attention over the encoder's spatial grid ("Show, Attend and Tell", Xu et al. 2015)."""

from __future__ import annotations

import torch
from torch import nn

from captioner.config import ModelConfig
from captioner.text.vocab import PAD_IX

State = dict[str, torch.Tensor]  # every tensor has the batch on dim 0


class Attend(nn.Module):
    attends = True  # the state's 'alpha' (B, S) is where the last step looked
    offers_classes = False

    def __init__(self, cfg: ModelConfig, vocab_size: int, feat_dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.embed, padding_idx=PAD_IX)
        self.drop = nn.Dropout(cfg.dropout)
        self.init_h = nn.Linear(feat_dim, cfg.hidden)
        self.init_c = nn.Linear(feat_dim, cfg.hidden)
        self.key = nn.Linear(feat_dim, cfg.attn_dim)
        self.query = nn.Linear(cfg.hidden, cfg.attn_dim)
        self.score = nn.Linear(cfg.attn_dim, 1)
        self.gate = nn.Linear(cfg.hidden, feat_dim)
        self.cell = nn.LSTMCell(cfg.embed + feat_dim, cfg.hidden)
        self.head = nn.Linear(cfg.hidden, vocab_size)

    def init_state(self, grid: torch.Tensor) -> State:
        """grid (B, S, D) -> state with the grid, its attention keys and {h, c}: (B, H)."""
        grid = self.drop(grid)  # (B, S, D)
        mean = grid.mean(1)  # (B, D)
        return {
            "grid": grid,
            "keys": self.key(grid),  # (B, S, A)
            "h": torch.tanh(self.init_h(mean)),  # (B, H)
            "c": torch.tanh(self.init_c(mean)),  # (B, H)
        }

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """tokens (B,) -> logits (B, V); the new state carries 'alpha' (B, S), where it looked."""
        h = state["h"]
        e = self.score(torch.tanh(state["keys"] + self.query(h)[:, None])).squeeze(-1)  # (B, S)
        alpha = torch.softmax(e, dim=1)  # (B, S)
        context = (alpha[..., None] * state["grid"]).sum(1)  # (B, D)
        context = torch.sigmoid(self.gate(h)) * context  # (B, D)
        x = torch.cat([self.embed(tokens), context], dim=1)  # (B, E + D)
        h, c = self.cell(x, (h, state["c"]))  # (B, H)
        return self.head(h), {**state, "h": h, "c": c, "alpha": alpha}

    def forward(self, grid: torch.Tensor, tokens: torch.Tensor, return_alpha: bool = False) -> torch.Tensor:
        """Teacher forcing. grid (B, S, D), tokens (B, T) -> logits (B, T, V)."""
        state = self.init_state(grid)
        logits, alphas = [], []
        for t in range(tokens.shape[1]):
            out, state = self.step(tokens[:, t], state)  # (B, V)
            logits.append(out)
            alphas.append(state["alpha"])
        out = torch.stack(logits, 1)  # (B, T, V)
        return (out, torch.stack(alphas, 1)) if return_alpha else out  # type: ignore[return-value]
