"""Checkpoint folders: safetensors weights + JSON config, vocabulary, encoder spec; no pickle anywhere."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as safetensors_bytes
from torch import nn

from captioner.config import Config, config_from_dict
from captioner.corpus.prepare import with_concepts
from captioner.data.manifest import read_manifest
from captioner.errors import CaptionerError
from captioner.features.encoders import EncoderSpec
from captioner.files import read_json, temp_dir, write_bytes, write_json
from captioner.models import build_model, feature_kind
from captioner.models.ensemble import Ensemble
from captioner.policy import POLICY_FILE, POLICY_VERSION, Policy, build_policy, load_policy, policy_bytes, write_policy
from captioner.text.vocab import Vocab

FORMAT_VERSION = 1
FILES = ("model.safetensors", "config.json", "vocab.json", "encoder.json", "meta.json")


@dataclass
class Checkpoint:
    """A loaded checkpoint."""

    model: nn.Module
    config: Config
    vocab: Vocab
    spec: EncoderSpec
    meta: dict[str, Any]
    path: Path
    policy: Policy  # policy.json: the caption rules' contract, built when the checkpoint was saved
    sha256: str  # one hash of the weights, config, vocabulary, encoder spec and policy: what decides captions

    def with_name_threshold(self, threshold: float | None) -> Checkpoint:
        """The same checkpoint decoding with another model.name_threshold (None: keep its own)."""
        if threshold is None:
            return self
        model = dataclasses.replace(self.config.model, name_threshold=threshold)  # checks the range
        return dataclasses.replace(self, config=dataclasses.replace(self.config, model=model))


def load_ensemble(paths: list[str | Path], device: str | torch.device = "cpu") -> Checkpoint:
    """Checkpoints decoding as one model (models.ensemble); the first gives config and decoding settings.

    They must share vocabulary, encoder spec and feature kind; one path gives that checkpoint unchanged."""
    cks = [load_checkpoint(p, device) for p in paths]
    first = cks[0]
    if len(cks) == 1:
        return first
    for ck in cks[1:]:
        if ck.vocab.itos != first.vocab.itos:
            raise CaptionerError(f"{ck.path}: its vocabulary differs from {first.path}'s; an ensemble needs one")
        if feature_kind(ck.config.model) != feature_kind(first.config.model):
            raise CaptionerError(f"{ck.path}: reads other features than {first.path}; an ensemble needs the same")
        first.spec.check_same(ck.spec, f"ensemble: {first.path} vs {ck.path}")
    meta = {**first.meta, "ensemble": [str(ck.path) for ck in cks]}
    sha = hashlib.sha256("".join(ck.sha256 for ck in cks).encode()).hexdigest()
    return dataclasses.replace(first, model=Ensemble([ck.model for ck in cks]).eval(), meta=meta, sha256=sha)


def feat_dim(spec: EncoderSpec, kind: str) -> int:
    """Width of the feature vector a model of this kind reads."""
    dims = {"pooled": spec.pooled_dim, "logits": spec.num_classes, "grid": spec.grid_dim}
    return sum(dims[k] for k in kind.split("+"))


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    config: Config,
    vocab: Vocab,
    spec: EncoderSpec,
    meta: dict[str, Any],
    extra_tensors: dict[str, torch.Tensor] | None = None,
    extra_json: dict[str, Any] | None = None,
) -> None:
    """Write the folder atomically: build it beside `path`, then swap it in."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(path.parent, f".{path.name}.")
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        write_bytes(tmp / "model.safetensors", safetensors_bytes(state))  # safetensors' save_file writes 0600
        write_json(tmp / "config.json", config.to_json())
        vocab.save(tmp / "vocab.json")
        write_json(tmp / "encoder.json", spec.to_json())
        if extra_tensors is not None:
            extra = {k: v.detach().cpu().contiguous() for k, v in extra_tensors.items()}
            write_bytes(tmp / "train_state.safetensors", safetensors_bytes(extra))
            write_json(tmp / "train_state.json", extra_json or {})
        policy_sha = write_policy(tmp, build_policy(vocab, config.model.name_threshold, spec.name))
        write_json(tmp / "meta.json", {"format_version": FORMAT_VERSION, **meta, "policy_sha256": policy_sha})
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        old = path.with_name(path.name + ".old")
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CaptionerError(f"{path}: could not write checkpoint ({e.strerror})") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def resolve(path: str | Path) -> Path:
    """The checkpoint folder, falling back to the previous copy if a save was cut off mid-swap."""
    path = Path(path)
    old = path.with_name(path.name + ".old")
    if not path.exists() and old.exists():
        return old
    return path


def _load_safetensors(data: bytes, path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_safetensors(data)
    except (SafetensorError, OSError, json.JSONDecodeError) as e:
        raise CaptionerError(f"{path}: unreadable weights ({e})") from e


def _load_legacy(data: bytes, path: Path) -> dict[str, torch.Tensor]:
    """A state dict saved with torch.save, read with weights_only=True: tensors only, never code."""
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - the unpickler refuses anything but tensors and containers
        raise CaptionerError(f"{path}: refused to load (only plain tensors are accepted: {e})"[:400]) from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CaptionerError(f"{path}: not a state dict of tensors")
    return state


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load and check a checkpoint folder; errors name the missing or mismatched part."""
    path = resolve(path)
    if not path.is_dir():
        raise CaptionerError(f"{path}: checkpoint folder not found")
    legacy = not (path / "model.safetensors").exists() and (path / "model.pt").exists()
    missing = [f for f in FILES if not (path / f).is_file() and not (legacy and f == "model.safetensors")]
    if missing:
        hint = next((f"; did you mean {path / n}?" for n in ("best", "latest") if (path / n / FILES[0]).is_file()), "")
        raise CaptionerError(f"{path}: incomplete checkpoint, missing {', '.join(missing)}{hint}")
    meta = read_json(path / "meta.json", "checkpoint meta")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CaptionerError(
            f"{path}: checkpoint format {meta.get('format_version')!r}, this captioner reads {FORMAT_VERSION}"
        )
    config = config_from_dict(read_json(path / "config.json", "checkpoint config"))
    vocab = Vocab.load(path / "vocab.json")
    spec = EncoderSpec.from_json(read_json(path / "encoder.json", "encoder spec"), str(path / "encoder.json"))
    model = build_model(config.model, len(vocab), feat_dim(spec, feature_kind(config.model)))
    weights = path / ("model.pt" if legacy else "model.safetensors")
    data = weights.read_bytes()  # read once: loaded, and hashed into the model's identity
    state = _load_legacy(data, weights) if legacy else _load_safetensors(data, weights)
    want = model.state_dict()
    bad = [k for k in want if k not in state or state[k].shape != want[k].shape]
    extra = [k for k in state if k not in want]
    if bad or extra:
        k = (bad or extra)[0]
        got = tuple(state[k].shape) if k in state else "missing"
        raise CaptionerError(
            f"{path / 'model.safetensors'}: weights do not fit the config ({k}: "
            f"expected {tuple(want[k].shape) if k in want else 'absent'}, found {got})"
        )
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    policy = load_policy(path, vocab, meta.get("policy_sha256"))
    h = hashlib.sha256(hashlib.sha256(data).digest())
    for name in ("config.json", "vocab.json", "encoder.json"):
        h.update(hashlib.sha256((path / name).read_bytes()).digest())
    h.update(bytes.fromhex(policy.sha256))
    return Checkpoint(model.to(device).eval(), config, vocab, spec, meta, path, policy, h.hexdigest())


def upgrade(path: str | Path, dataset: str | Path | None = None) -> str:
    """Build the caption policy of a checkpoint made before policies (or with an older one) from its vocabulary
    and config, write it atomically and record its hash in meta.json; returns what was done. dataset: the
    folder it was trained on, whose training captions give the vocabulary its concept tables first
    (corpus.prepare.with_concepts; without it, a vocabulary made before them keeps none: the one-word
    translations it had, no article rule, no repeated words)."""
    path = resolve(path)
    for name in ("config.json", "vocab.json", "encoder.json", "meta.json"):
        if not (path / name).is_file():
            raise CaptionerError(f"{path}: not a checkpoint folder (no {name})")
    meta = read_json(path / "meta.json", "checkpoint meta")
    config = config_from_dict(read_json(path / "config.json", "checkpoint config"))
    vocab = Vocab.load(path / "vocab.json")
    if dataset is not None:
        tabled = with_concepts(vocab, read_manifest(dataset))
        if tabled != vocab:
            tabled.save(path / "vocab.json")
        vocab = tabled
    spec = EncoderSpec.from_json(read_json(path / "encoder.json", "encoder spec"), str(path))
    data = policy_bytes(build_policy(vocab, config.model.name_threshold, spec.name))
    sha = hashlib.sha256(data).hexdigest()
    current = path / POLICY_FILE
    if meta.get("policy_sha256") == sha and current.is_file() and current.read_bytes() == data:
        return f"{current}: already current (version {POLICY_VERSION})"
    write_bytes(current, data)
    write_json(path / "meta.json", {**meta, "policy_sha256": sha})
    return f"{path / POLICY_FILE}: written (version {POLICY_VERSION}, sha256 {sha[:12]})"
