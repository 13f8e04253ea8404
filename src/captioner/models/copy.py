"""Show-and-Tell with a copy path over the encoder's ImageNet labels (in the spirit of LSTM-C, Yao et al. 2017).

At each step the next-word distribution mixes the decoder's vocabulary softmax with a copy distribution over
the words naming the image's top-k ImageNet classes, weighted by the classifier's probabilities. A learned
gate, fed the LSTM state and those probabilities, sets the mix. forward/step return log-probabilities.
Two variants were tried and retired (docs/results.md has their figures and the commit that had them): words
on offer taken out of the vocabulary softmax, and a third path pointing into the nearest training captions."""

from __future__ import annotations

import torch
from torch import nn

from captioner.config import ModelConfig
from captioner.models.showtell import State, add_lstm_layers, image_state, lstm_step, run_lstm
from captioner.text.vocab import PAD_IX

NUM_CLASSES = 1000


class CopyDecoder(nn.Module):
    attends = False
    offers_classes = True

    def __init__(self, cfg: ModelConfig, vocab_size: int, feat_dim: int) -> None:
        super().__init__()
        self.pooled_dim, self.k = feat_dim - NUM_CLASSES, cfg.copy_k
        add_lstm_layers(self, cfg, vocab_size, self.pooled_dim)
        self.gate = nn.Linear(cfg.hidden + cfg.copy_k, 1)
        self.register_buffer("class_word", torch.full((NUM_CLASSES,), PAD_IX, dtype=torch.long))  # class -> word id

    def init_state(self, feats: torch.Tensor) -> State:
        """feats (B, D + 1000) = pooled vector then ImageNet logits -> LSTM state and the top-k label words."""
        p, w = self.offered(feats)  # (B, k) each
        return {**image_state(self, feats[:, : self.pooled_dim]), "copy_p": p, "copy_w": w}

    def offered(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The top-k classes' probabilities and word ids (B, k) that the copy path offers for each image."""
        p, idx = feats[:, self.pooled_dim :].float().softmax(-1).topk(self.k, dim=-1)
        return p, self.class_word[idx]

    def mix(self, out: torch.Tensor, s: State) -> torch.Tensor:
        """out (B, T, H) -> log of the gated mixture of the vocabulary and class-copy distributions, (B, T, V)."""
        t = out.shape[1]
        copy_p, copy_w = s["copy_p"][:, None].expand(-1, t, -1), s["copy_w"][:, None].expand(-1, t, -1)
        p_vocab = self.head(out).float().softmax(-1)  # (B, T, V)
        p_copy = torch.zeros_like(p_vocab).scatter_add(-1, copy_w, copy_p / copy_p.sum(-1, keepdim=True))
        g = torch.sigmoid(self.gate(torch.cat([out.float(), copy_p], -1)).float())  # (B, T, 1)
        return torch.log((1 - g) * p_vocab + g * p_copy + 1e-12)

    def forward(self, feats: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing. tokens (B, T) -> log-probabilities (B, T, V)."""
        s = self.init_state(feats)
        out, _ = run_lstm(self, tokens, s)  # (B, T, H)
        return self.mix(out, s)

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """tokens (B,) -> log-probabilities (B, V) and the next state."""
        out, hc = lstm_step(self, tokens, state)  # (B, 1, H)
        return self.mix(out, state)[:, 0], {**state, **hc}
