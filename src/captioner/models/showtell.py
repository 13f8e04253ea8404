"""The seed's Show-and-Tell decoder: image -> LSTM initial state, then one word per step.

Its layers and its LSTM step are small functions, so the copy decoder builds on the same code."""

from __future__ import annotations

import torch
from torch import nn

from captioner.config import ModelConfig
from captioner.text.vocab import PAD_IX

State = dict[str, torch.Tensor]  # every tensor has the batch on dim 0


def add_lstm_layers(m: nn.Module, cfg: ModelConfig, vocab_size: int, feat_dim: int) -> None:
    """Give m the Show-and-Tell layers: embed, drop, img_to_c, img_to_h (with init_hidden), lstm, head."""
    m.embed = nn.Embedding(vocab_size, cfg.embed, padding_idx=PAD_IX)
    m.drop = nn.Dropout(cfg.dropout)
    m.img_to_c = nn.Linear(feat_dim, cfg.hidden)
    m.img_to_h = nn.Linear(feat_dim, cfg.hidden) if cfg.init_hidden else None
    m.lstm = nn.LSTM(cfg.embed, cfg.hidden, batch_first=True)
    m.head = nn.Linear(cfg.hidden, vocab_size)


def image_state(m: nn.Module, x: torch.Tensor) -> State:
    """Image vector x (B, D) -> Dropout -> Dense -> the LSTM's cell state (and hidden state, if learned)."""
    x = m.drop(x)  # (B, D)
    c = m.img_to_c(x)  # (B, H)
    h = m.img_to_h(x) if m.img_to_h is not None else torch.zeros_like(c)  # (B, H)
    return {"h": h, "c": c}


def run_lstm(m: nn.Module, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    """tokens (B, T) from state {h, c} -> LSTM outputs (B, T, H) and the state after the last token."""
    x = m.embed(tokens)  # (B, T, E)
    out, (h, c) = m.lstm(x, (state["h"][None].contiguous(), state["c"][None].contiguous()))  # (B, T, H)
    return out, {"h": h[0], "c": c[0]}


def lstm_step(m: nn.Module, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    """run_lstm for one token per row, tokens (B,) -> outputs (B, 1, H) and the state: the same cell through
    torch.lstm_cell, which skips nn.LSTM's per-call set-up (a third of a decoding step's time at batch 3)."""
    lstm = m.lstm
    h, c = torch.lstm_cell(
        m.embed(tokens), (state["h"], state["c"]), lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0,
        lstm.bias_hh_l0,
    )  # fmt: skip
    return h[:, None], {"h": h, "c": c}


class ShowTell(nn.Module):
    attends = False
    offers_classes = False

    def __init__(self, cfg: ModelConfig, vocab_size: int, feat_dim: int) -> None:
        super().__init__()
        add_lstm_layers(self, cfg, vocab_size, feat_dim)

    def init_state(self, feats: torch.Tensor) -> State:
        """feats (B, D) -> LSTM state {h, c}: (B, H) each."""
        return image_state(self, feats)

    def forward(self, feats: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing. feats (B, D), tokens (B, T) = #START# w1 .. -> logits (B, T, V)."""
        out, _ = run_lstm(self, tokens, self.init_state(feats))  # (B, T, H); padding sits after the words
        return self.head(out)  # (B, T, V)

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One decoding step. tokens (B,) -> logits (B, V) and the next state."""
        out, state = lstm_step(self, tokens, state)  # (B, 1, H)
        return self.head(out[:, 0]), state  # (B, V)
