"""Several decoders trained on one vocabulary and one kind of features, decoding as one model.

At every step the next-word distribution is the mean of the members' distributions (their probabilities,
not their logits, so that copy decoders, which already give log-probabilities, mix like the others).
Members trained from different seeds make different mistakes on images unlike their training images, so
the mean is steadier than any one of them. The interface is a decoder's: init_state / step / forward;
attention members' mean attention is the state's 'alpha', so ensembles still draw where they looked."""

from __future__ import annotations

import math

import torch
from torch import nn

State = dict[str, torch.Tensor]


class Ensemble(nn.Module):
    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.attends = all(m.attends for m in members)  # then 'alpha' is the members' mean attention
        self.offers_classes = all(m.offers_classes for m in members)
        if self.offers_classes:  # copy decoders: the classes on offer are the encoder's, the same for all
            self.offered = members[0].offered

    def _mean(self, outs: list[torch.Tensor]) -> torch.Tensor:
        logp = torch.stack([o.float().log_softmax(-1) for o in outs])  # (M, ..., V)
        return torch.logsumexp(logp, 0) - math.log(len(outs))

    def init_state(self, feats: torch.Tensor) -> State:
        """Every member's state, its keys prefixed with the member's index ('0.h', '1.h', ...)."""
        return {f"{j}.{k}": v for j, m in enumerate(self.members) for k, v in m.init_state(feats).items()}

    def _member_state(self, state: State, j: int) -> State:
        prefix = f"{j}."
        return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """tokens (B,) -> log of the members' mean next-word distribution (B, V), and the next state."""
        outs, new = [], {}
        for j, m in enumerate(self.members):
            out, s = m.step(tokens, self._member_state(state, j))
            outs.append(out)
            new.update({f"{j}.{k}": v for k, v in s.items()})
        if self.attends:  # the members' mean attention, for pictures
            new["alpha"] = torch.stack([new[f"{j}.alpha"].float() for j in range(len(self.members))]).mean(0)
        return self._mean(outs), new

    def forward(self, feats: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: log of the members' mean distribution at every position, (B, T, V)."""
        return self._mean([m(feats, tokens) for m in self.members])
