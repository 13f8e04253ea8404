"""Show-and-Tell with a copy path over the encoder's ImageNet labels (in the spirit of LSTM-C, Yao et al. 2017).

At each step the next-word distribution mixes the decoder's vocabulary softmax with a copy distribution over
the words naming the image's top-k ImageNet classes, weighted by the classifier's probabilities. A learned
gate, fed the LSTM state and those probabilities, sets the mix. forward/step return log-probabilities.

With `copy_exclusive` the words the classes offer are removed from the vocabulary softmax (as Neural Baby
Talk fills its visual-word slots only from the detector): a caption word that a top-k class offers can only
come through the copy path, so the gate is trained on every such word instead of competing with the
vocabulary path, which learns those words from drawings as well."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from ..text import PAD_IX

State = dict[str, torch.Tensor]  # every tensor has the batch on dim 0
NUM_CLASSES = 1000


class CopyDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int, feat_dim: int) -> None:
        super().__init__()
        self.pooled_dim, self.k, self.exclusive = feat_dim - NUM_CLASSES, cfg.copy_k, cfg.copy_exclusive
        self.embed = nn.Embedding(vocab_size, cfg.embed, padding_idx=PAD_IX)
        self.drop = nn.Dropout(cfg.dropout)
        self.img_to_c = nn.Linear(self.pooled_dim, cfg.hidden)
        self.img_to_h = nn.Linear(self.pooled_dim, cfg.hidden) if cfg.init_hidden else None
        self.lstm = nn.LSTM(cfg.embed, cfg.hidden, batch_first=True)
        self.head = nn.Linear(cfg.hidden, vocab_size)
        self.gate = nn.Linear(cfg.hidden + cfg.copy_k, 1)
        self.register_buffer("class_word", torch.full((NUM_CLASSES,), PAD_IX, dtype=torch.long))  # class -> word id

    def init_state(self, feats: torch.Tensor) -> State:
        """feats (B, D + 1000) = pooled vector then ImageNet logits -> LSTM state and the top-k label words."""
        x = self.drop(feats[:, : self.pooled_dim])  # (B, D)
        c = self.img_to_c(x)  # (B, H)
        h = self.img_to_h(x) if self.img_to_h is not None else torch.zeros_like(c)
        p, w = self.offered(feats)
        return {"h": h, "c": c, "copy_p": p, "copy_w": w}

    def offered(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The top-k classes' probabilities and word ids (B, k) that the copy path offers for each image."""
        p, idx = feats[:, self.pooled_dim :].float().softmax(-1).topk(self.k, dim=-1)
        return p, self.class_word[idx]

    def mix(self, out: torch.Tensor, copy_p: torch.Tensor, copy_w: torch.Tensor) -> torch.Tensor:
        """out (..., H), copy_p/copy_w (..., k) -> log of (1 - g) p_vocab + g p_copy, shape (..., V)."""
        logits = self.head(out).float()  # (..., V)
        if self.exclusive:  # offered words (not padding) leave the vocabulary softmax
            offered = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, copy_w, True)
            offered[..., PAD_IX] = False
            logits = logits.masked_fill(offered, float("-inf"))
        p_vocab = logits.softmax(-1)
        g = torch.sigmoid(self.gate(torch.cat([out.float(), copy_p], -1)).float())  # (..., 1)
        p_copy = torch.zeros_like(p_vocab).scatter_add(-1, copy_w, copy_p / copy_p.sum(-1, keepdim=True))
        return torch.log((1 - g) * p_vocab + g * p_copy + 1e-12)  # (..., V)

    def forward(self, feats: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing. tokens (B, T) -> log-probabilities (B, T, V)."""
        s = self.init_state(feats)
        out, _ = self.lstm(self.embed(tokens), (s["h"][None], s["c"][None]))  # (B, T, H)
        t = tokens.shape[1]
        return self.mix(out, s["copy_p"][:, None].expand(-1, t, -1), s["copy_w"][:, None].expand(-1, t, -1))

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """tokens (B,) -> log-probabilities (B, V) and the next state."""
        x = self.embed(tokens)[:, None]  # (B, 1, E)
        out, (h, c) = self.lstm(x, (state["h"][None].contiguous(), state["c"][None].contiguous()))
        return self.mix(out[:, 0], state["copy_p"], state["copy_w"]), {**state, "h": h[0], "c": c[0]}
