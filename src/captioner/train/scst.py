"""Self-critical sequence training (Rennie et al. 2017): fine-tune a decoder on its own sampled captions,
rewarded by CIDEr-D against the image's references. Each sample's baseline is the mean reward of the other
samples of the same image (Luo 2020), so no greedy pass is needed and the baseline is unbiased."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from captioner.decode.search import rollout
from captioner.decode.stepper import TorchStepper, token_logprobs
from captioner.errors import CaptionerError
from captioner.models import Decoder
from captioner.text.metrics import CiderD
from captioner.text.vocab import START_IX, Vocab


def _draw(logp: np.ndarray) -> np.ndarray:
    """One word per row from exp(logp) (B, V), from PyTorch's generator (seeded and resumed with training)."""
    return torch.multinomial(torch.from_numpy(np.exp(logp.astype(np.float64))), 1)[:, 0].numpy()


def sample_with_logprob(
    model: Decoder, feats: torch.Tensor, max_len: int, first: int = START_IX
) -> tuple[torch.Tensor, torch.Tensor]:
    """One sampled caption per row of feats: tokens (B, T) padded after #END#, and the summed log-probability
    of the sampled words and #END# (B,) with the graph kept, masked as decoding masks them (#UNK# is never
    sampled). Sampling runs decoding's rollout; the log-probabilities come from teacher forcing on the
    sampled tokens. An #END# forced at max_len was not sampled, so its log-probability is left out of the sum."""
    st = TorchStepper(model, feats)
    st.first = first  # the caption's first input: #START#, or the language token of a multilingual model
    toks, _, _ = rollout(st, max_len, _draw)
    tokens = torch.from_numpy(toks).to(feats.device)  # (B, T)
    start = torch.full((tokens.shape[0], 1), first, dtype=torch.long, device=feats.device)
    lp = token_logprobs(model, feats, torch.cat([start, tokens], 1))  # (B, T)
    return tokens, lp[:, :max_len].sum(1)


def rewards(tokens: torch.Tensor, refs: Sequence[Sequence[str]], vocab: Vocab, cider: CiderD) -> torch.Tensor:
    """CIDEr-D of each sampled caption (row) against its references."""
    texts = [vocab.decode(row, articles=True) for row in tokens.tolist()]
    return torch.tensor([cider.score(t, r) for t, r in zip(texts, refs, strict=True)])


def scst_loss(
    model: Decoder,
    feats: torch.Tensor,
    refs: Sequence[Sequence[str]],
    vocab: Vocab,
    cider: CiderD,
    samples: int = 5,
    max_len: int = 20,
) -> tuple[torch.Tensor, float]:
    """Policy-gradient loss for a batch of images (feats (B, ...), refs per image) and the mean reward.

    loss = -mean over samples of (r - mean of the image's other samples' r) * log p(sample). The rewards are
    CIDEr-D in one language, so a model of several languages is an error."""
    if samples < 2:
        raise ValueError("SCST needs at least 2 samples per image for its baseline")
    if len(vocab.langs) > 1:
        raise CaptionerError(f"SCST rewards CIDEr-D in one language; this data has {', '.join(vocab.langs)}")
    feats = feats.repeat_interleave(samples, 0)
    tokens, logp = sample_with_logprob(model, feats, max_len, vocab.first())
    r = rewards(tokens, [ref for ref in refs for _ in range(samples)], vocab, cider).to(logp.device)
    r = r.view(-1, samples)
    baseline = (r.sum(1, keepdim=True) - r) / (samples - 1)
    advantage = (r - baseline).view(-1)
    return -(advantage * logp).mean(), float(r.mean())
