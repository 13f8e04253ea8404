"""Show-and-Tell with a copy path over the encoder's ImageNet labels (in the spirit of LSTM-C, Yao et al. 2017).

At each step the next-word distribution mixes the decoder's vocabulary softmax with a copy distribution over
the words naming the image's top-k ImageNet classes, weighted by the classifier's probabilities. A learned
gate, fed the LSTM state and those probabilities, sets the mix. forward/step return log-probabilities.

With `copy_exclusive` the words the classes offer are removed from the vocabulary softmax (as Neural Baby
Talk fills its visual-word slots only from the detector): a caption word that a top-k class offers can only
come through the copy path, so the gate is trained on every such word instead of competing with the
vocabulary path, which learns those words from drawings as well.

With `retrieve_k` > 0 a third path points into the captions of the image's `retrieve_k` nearest training
images (cosine similarity of the pooled vectors; the model carries that index as buffers, set by
`set_index`). Each neighbour token is keyed by its word, the word before it and the neighbour's similarity,
and the LSTM state attends over them, so the decoder can copy a neighbour's caption word by word, edit it,
or ignore it (retrieve-and-edit). In training mode neighbours more similar than `retrieve_exclude` are left
out: the image itself and its near-duplicates, which the corpus keeps in one split, so training sees the
neighbours a test image will see."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..config import ModelConfig
from ..errors import CaptionerError
from ..text import PAD_IX, START_IX

State = dict[str, torch.Tensor]  # every tensor has the batch on dim 0
NUM_CLASSES = 1000
NEIGHBOUR_LEN = 12  # tokens kept of each neighbour's caption (words and #END#)


class CopyDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int, feat_dim: int) -> None:
        super().__init__()
        self.pooled_dim, self.k, self.exclusive = feat_dim - NUM_CLASSES, cfg.copy_k, cfg.copy_exclusive
        self.retrieve_k, self.exclude = cfg.retrieve_k, cfg.retrieve_exclude
        self.embed = nn.Embedding(vocab_size, cfg.embed, padding_idx=PAD_IX)
        self.drop = nn.Dropout(cfg.dropout)
        self.img_to_c = nn.Linear(self.pooled_dim, cfg.hidden)
        self.img_to_h = nn.Linear(self.pooled_dim, cfg.hidden) if cfg.init_hidden else None
        self.lstm = nn.LSTM(cfg.embed, cfg.hidden, batch_first=True)
        self.head = nn.Linear(cfg.hidden, vocab_size)
        extra = cfg.retrieve_k + cfg.embed + 1 if cfg.retrieve_k else 0  # similarities, pointer context, best match
        self.gate = nn.Linear(cfg.hidden + cfg.copy_k + extra, 3 if cfg.retrieve_k else 1)
        self.register_buffer("class_word", torch.full((NUM_CLASSES,), PAD_IX, dtype=torch.long))  # class -> word id
        if cfg.retrieve_k:
            self.ptr_query = nn.Linear(cfg.hidden, cfg.embed)
            self.ptr_key = nn.Linear(2 * cfg.embed + 1, cfg.embed)
            self.register_buffer("index_feats", torch.zeros(0, self.pooled_dim))  # (N, D) unit rows
            self.register_buffer("index_tokens", torch.zeros(0, NEIGHBOUR_LEN, dtype=torch.long))  # (N, L)

    def set_index(self, feats: np.ndarray, captions: list[list[int]]) -> None:
        """The training images' pooled vectors (N, D) and one encoded caption each (#START# .. #END#)."""
        if len(captions) <= self.retrieve_k:  # training leaves each image itself out
            raise CaptionerError(f"model.retrieve_k: {self.retrieve_k} needs more than {len(captions)} training images")
        x = torch.as_tensor(np.asarray(feats, np.float32))
        tok = torch.full((len(captions), NEIGHBOUR_LEN), PAD_IX, dtype=torch.long)
        for i, c in enumerate(captions):
            words = c[1:][: NEIGHBOUR_LEN - 1] + ([] if len(c) - 1 <= NEIGHBOUR_LEN - 1 else [c[-1]])
            tok[i, : len(words)] = torch.tensor(words)
        dev = self.class_word.device
        self.index_feats = F.normalize(x, dim=-1).to(dev)
        self.index_tokens = tok.to(dev)

    def fit_index(self, state: dict[str, torch.Tensor]) -> None:
        """Size the index buffers like those in a saved state dict, before loading it."""
        if self.retrieve_k and "index_feats" in state:
            self.index_feats = torch.zeros_like(state["index_feats"], dtype=torch.float32)
            self.index_tokens = torch.zeros_like(state["index_tokens"], dtype=torch.long)

    def init_state(self, feats: torch.Tensor) -> State:
        """feats (B, D + 1000) = pooled vector then ImageNet logits -> LSTM state and the top-k label words."""
        x = self.drop(feats[:, : self.pooled_dim])  # (B, D)
        c = self.img_to_c(x)  # (B, H)
        h = self.img_to_h(x) if self.img_to_h is not None else torch.zeros_like(c)
        p, w = self.offered(feats)
        state = {"h": h, "c": c, "copy_p": p, "copy_w": w}
        if self.retrieve_k:
            state.update(self.neighbours(feats[:, : self.pooled_dim]))
        return state

    def offered(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The top-k classes' probabilities and word ids (B, k) that the copy path offers for each image."""
        p, idx = feats[:, self.pooled_dim :].float().softmax(-1).topk(self.k, dim=-1)
        return p, self.class_word[idx]

    def neighbours(self, pooled: torch.Tensor) -> State:
        """The nearest training captions' tokens (B, k*L), their pointer keys (B, k*L, E) and similarities (B, k)."""
        if not len(self.index_tokens):
            raise RuntimeError("retrieval copy decoder without an index: call set_index first")
        sim = F.normalize(pooled.float(), dim=-1) @ self.index_feats.T  # (B, N)
        if self.training:  # leave out the image itself and its near-duplicates
            sim = sim.masked_fill(sim > self.exclude, -2.0)
        s, idx = sim.topk(self.retrieve_k, dim=-1)  # (B, k)
        tok = self.index_tokens[idx]  # (B, k, L)
        prev = torch.cat([torch.full_like(tok[..., :1], START_IX), tok[..., :-1]], -1)
        key_in = torch.cat([self.embed(tok), self.embed(prev), s[..., None, None].expand(*tok.shape, 1)], -1)
        b, n = tok.shape[0], tok[0].numel()
        return {"nb_tok": tok.reshape(b, n), "nb_key": self.ptr_key(key_in).reshape(b, n, -1), "nb_sim": s}

    def mix(self, out: torch.Tensor, s: State) -> torch.Tensor:
        """out (B, T, H) -> log of the gated mixture of vocabulary, class-copy and neighbour paths, (B, T, V)."""
        t = out.shape[1]
        copy_p, copy_w = s["copy_p"][:, None].expand(-1, t, -1), s["copy_w"][:, None].expand(-1, t, -1)
        logits = self.head(out).float()  # (B, T, V)
        if self.exclusive:  # offered words (not padding) leave the vocabulary softmax
            offered = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, copy_w, True)
            offered[..., PAD_IX] = False
            logits = logits.masked_fill(offered, float("-inf"))
        p_vocab = logits.softmax(-1)
        p_copy = torch.zeros_like(p_vocab).scatter_add(-1, copy_w, copy_p / copy_p.sum(-1, keepdim=True))
        gate_in = [out.float(), copy_p]
        if not self.retrieve_k:
            g = torch.sigmoid(self.gate(torch.cat(gate_in, -1)).float())  # (B, T, 1)
            return torch.log((1 - g) * p_vocab + g * p_copy + 1e-12)
        score = torch.einsum("bte,bne->btn", self.ptr_query(out), s["nb_key"]).float()  # (B, T, N)
        score = score.masked_fill((s["nb_tok"] == PAD_IX)[:, None], float("-inf"))
        att = score.softmax(-1)
        p_ptr = torch.zeros_like(p_vocab).scatter_add(-1, s["nb_tok"][:, None].expand(-1, t, -1), att)
        context = att @ s["nb_key"].float()  # (B, T, E): what the pointer would say
        gate_in += [s["nb_sim"][:, None].expand(-1, t, -1), context, score.max(-1, keepdim=True).values]
        g = self.gate(torch.cat(gate_in, -1)).float().softmax(-1)
        return torch.log(g[..., :1] * p_vocab + g[..., 1:2] * p_copy + g[..., 2:] * p_ptr + 1e-12)

    def forward(self, feats: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing. tokens (B, T) -> log-probabilities (B, T, V)."""
        s = self.init_state(feats)
        out, _ = self.lstm(self.embed(tokens), (s["h"][None], s["c"][None]))  # (B, T, H)
        return self.mix(out, s)

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """tokens (B,) -> log-probabilities (B, V) and the next state."""
        x = self.embed(tokens)[:, None]  # (B, 1, E)
        out, (h, c) = self.lstm(x, (state["h"][None].contiguous(), state["c"][None].contiguous()))
        return self.mix(out, state)[:, 0], {**state, "h": h[0], "c": c[0]}
