"""Self-critical sequence training (Rennie et al. 2017): fine-tune a decoder on its own sampled captions,
rewarded by CIDEr-D against the image's references. Each sample's baseline is the mean reward of the other
samples of the same image (Luo 2020), so no greedy pass is needed and the baseline is unbiased."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .baselines import CiderD
from .decoding import masked_logprobs, only_end
from .text import END_IX, PAD_IX, START_IX, Vocab


def sample_with_logprob(model: nn.Module, feats: torch.Tensor, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One sampled caption per row of feats, keeping the graph: tokens (B, T) padded after #END#, and the
    summed log-probability of each caption's words and #END# (B,), masked as decoding masks them (#UNK#
    is never sampled)."""
    b = feats.shape[0]
    state = model.init_state(feats)
    tok = torch.full((b,), START_IX, dtype=torch.long, device=feats.device)
    done = torch.zeros(b, dtype=torch.bool, device=feats.device)
    total = torch.zeros(b, device=feats.device)
    out = []
    for step in range(max_len + 1):
        logits, state = model.step(tok, state)
        logp = masked_logprobs(logits, block_unk=True)  # (B, V)
        if step == max_len:  # out of room: only #END#, with its own score, as in decoding
            logp = only_end(logp)
        nxt = torch.multinomial(logp.detach().exp(), 1)[:, 0]
        total = total + torch.where(done, torch.zeros_like(total), logp.gather(1, nxt[:, None])[:, 0])
        nxt = torch.where(done, torch.full_like(nxt, PAD_IX), nxt)
        out.append(nxt)
        done = done | (nxt == END_IX)
        tok = nxt
        if bool(done.all()):
            break
    return torch.stack(out, 1), total


def rewards(tokens: torch.Tensor, refs: Sequence[Sequence[str]], vocab: Vocab, cider: CiderD) -> torch.Tensor:
    """CIDEr-D of each sampled caption (row) against its references."""
    texts = [vocab.decode(row, articles=True) for row in tokens.tolist()]
    return torch.tensor([cider.score(t, r) for t, r in zip(texts, refs, strict=True)])


def scst_loss(
    model: nn.Module,
    feats: torch.Tensor,
    refs: Sequence[Sequence[str]],
    vocab: Vocab,
    cider: CiderD,
    samples: int = 5,
    max_len: int = 20,
) -> tuple[torch.Tensor, float]:
    """Policy-gradient loss for a batch of images (feats (B, ...), refs per image) and the mean reward.

    loss = -mean over samples of (r - mean of the image's other samples' r) * log p(sample)."""
    if samples < 2:
        raise ValueError("SCST needs at least 2 samples per image for its baseline")
    feats = feats.repeat_interleave(samples, 0)
    tokens, logp = sample_with_logprob(model, feats, max_len)
    r = rewards(tokens, [ref for ref in refs for _ in range(samples)], vocab, cider).to(logp.device)
    r = r.view(-1, samples)
    baseline = (r.sum(1, keepdim=True) - r) / (samples - 1)
    advantage = (r - baseline).view(-1)
    return -(advantage * logp).mean(), float(r.mean())
