"""The PyTorch runtime of a Captioner: a checkpoint and the encoder it was trained on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from captioner.decode.stepper import TorchStepper
from captioner.features.encoders import encoder_for
from captioner.models import feature_kind
from captioner.train.checkpoint import load_ensemble


class TorchRuntime:
    """api.Runtime over a checkpoint (or an ensemble of them) and its encoder, on one device."""

    def __init__(
        self,
        path: Path,
        device: str,
        bf16: bool,
        name_threshold: float | None,
        ensemble: Sequence[str | Path],
        encoder_weights: str | Path | None,
    ) -> None:
        dev = torch.device(
            "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
        )
        self.ck = load_ensemble([path, *ensemble], dev).with_name_threshold(name_threshold)
        self.encoder = encoder_for(self.ck.spec, encoder_weights, f"checkpoint {path}").to(dev)
        self.encoder.bf16 = bf16
        self.device, self.kind = dev, feature_kind(self.ck.config.model)
        self.spec, self.vocab, self.policy = self.ck.spec, self.ck.vocab, self.ck.policy
        self.labels = self.encoder.labels
        self.max_len, self.name_threshold = self.ck.config.train.max_len, self.ck.config.model.name_threshold
        self.no_end = self.policy.no_end_mask()
        self.info: dict[str, Any] = {
            "runtime": "torch",
            "model": str(self.ck.path),
            **({"ensemble": self.ck.meta["ensemble"]} if "ensemble" in self.ck.meta else {}),
            "kind": self.ck.config.model.kind,
            "encoder": self.ck.spec.name,
            "sha256": self.ck.sha256,
        }

    @torch.inference_mode()
    def encode(self, x: np.ndarray) -> tuple[TorchStepper, np.ndarray, np.ndarray]:
        """A preprocessed batch (B, 3, S, S) -> the decoder over its features, the classifier's logits (B, C) and
        the pooled vectors (B, D)."""
        feats = self.encoder.forward_features(torch.from_numpy(x).to(self.device))
        inputs = torch.cat([getattr(feats, k).float() for k in self.kind.split("+")], dim=-1)  # e.g. pooled+logits
        st = TorchStepper(self.ck.model, inputs, self.no_end)
        return st, feats.logits.float().cpu().numpy(), feats.pooled.float().cpu().numpy()
