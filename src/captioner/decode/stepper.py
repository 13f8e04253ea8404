"""A PyTorch decoder seen through decoding's Stepper, and teacher-forced log-probabilities on decoding's scale."""

from __future__ import annotations

import numpy as np
import torch

from captioner.decode.search import NEG, banned
from captioner.models import Decoder, State
from captioner.text.vocab import PAD_IX, START_IX


class TorchStepper:
    """decoding.Stepper over a Decoder and one batch of its input features (B, ...); runs in inference mode.
    no_end: the vocabulary's ending rule (Vocab.no_end_mask()), or None; first: the token captions start from
    (Vocab.first: #START#, or a language's token); forbid: decoding.Stepper's."""

    def __init__(
        self, model: Decoder, feats: torch.Tensor, no_end: np.ndarray | None = None, first: int = START_IX
    ) -> None:
        self.model, self.feats, self.no_end, self.first = model, feats, no_end, first
        self.batch, self.attends = feats.shape[0], model.attends
        self.forbid: np.ndarray | None = None
        self.repeat: np.ndarray | None = None

    def _ix(self, rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64)).to(self.feats.device)

    @torch.inference_mode()
    def start(self, rows: np.ndarray) -> State:
        return self.model.init_state(self.feats.index_select(0, self._ix(rows)))

    @torch.inference_mode()
    def step(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        scores, state = self.model.step(self._ix(tokens), state)
        return scores.float().cpu().numpy(), state

    def select(self, state: State, idx: np.ndarray) -> State:
        ix = self._ix(idx)
        return {k: v.index_select(0, ix) for k, v in state.items()}

    def alpha(self, state: State) -> np.ndarray:
        return state["alpha"].float().cpu().numpy()

    @torch.inference_mode()
    def offered(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.model.offers_classes:
            return None
        p, w = self.model.offered(self.feats)
        return p.float().cpu().numpy(), w.cpu().numpy()


def masked_logprobs(scores: torch.Tensor, block_unk: bool) -> torch.Tensor:
    """search.masked_logprobs in PyTorch, keeping the graph: (..., V) -> log-probabilities, banned ids out."""
    ban = torch.zeros(scores.shape[-1], dtype=torch.bool, device=scores.device)
    ban[banned(block_unk)] = True
    return torch.log_softmax(scores.float().masked_fill(ban, NEG), dim=-1)


def token_logprobs(model: Decoder, feats: torch.Tensor, tokens: torch.Tensor, block_unk: bool = True) -> torch.Tensor:
    """Teacher forcing, keeping the graph: tokens (B, T) = #START# w1 .. #END# padded with #PAD# -> the masked
    log-probability of each predicted token (B, T-1), 0 at padding."""
    logp = masked_logprobs(model(feats, tokens[:, :-1]), block_unk)  # (B, T-1, V)
    target = tokens[:, 1:]
    return logp.gather(-1, target[..., None])[..., 0] * (target != PAD_IX)


@torch.inference_mode()
def sequence_logprob(model: Decoder, feats: torch.Tensor, tokens: torch.Tensor, block_unk: bool = True) -> torch.Tensor:
    """Mean log-probability per predicted token (words and #END#) of given captions under the model, on the
    scale decoding uses: for a caption decoding produced, this equals its Caption.confidence, and a caption
    holding a banned word (#UNK# with block_unk) scores about NEG.

    feats (B, ...), tokens (B, T) = #START# w1 .. wn #END# padded with #PAD# -> (B,)."""
    lp = token_logprobs(model, feats, tokens, block_unk)
    return lp.sum(1) / (tokens[:, 1:] != PAD_IX).sum(1).clamp(min=1)
