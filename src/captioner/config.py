"""Configuration: frozen dataclasses with documented, checked fields; TOML presets plus overrides."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from captioner.errors import CaptionerError

MAX_PIXELS = 40_000_000  # images larger than this are refused before decoding (decompression bombs)
RERANK_WEIGHT = 0.5  # evaluate's reranker: weight of neighbours' CIDEr-D next to the model's mean log-probability
RERANK_TAU = 0.02  # evaluate's reranker: temperature of the neighbours' cosine similarities; both chosen on val


@dataclass(frozen=True)
class ModelConfig:
    """Decoder architecture."""

    kind: str = "showtell"  # "showtell" (the seed's LSTM), "attend" (soft attention), "copy" (copies label words)
    embed: int = 128  # word embedding size
    hidden: int = 200  # LSTM units
    dropout: float = 0.5  # dropout on the image features before the Linear into the LSTM state
    init_hidden: bool = False  # showtell: the image also sets h0 (the seed sets only the cell state c0)
    feature: str = "pooled"  # showtell input: "pooled" (1280-d) or "logits" (1000 ImageNet scores)
    attn_dim: int = 256  # attend: size of the attention projection
    copy_k: int = 5  # copy: how many of the encoder's top ImageNet classes offer their words
    copy_weight: float = 1.0  # copy: loss weight of caption words that one of those classes offers (a rare signal)
    name_threshold: float = 0.0  # copy, decoding: say the top class's word when its probability reaches this (0: off)

    def __post_init__(self) -> None:
        _check(self.kind in ("showtell", "attend", "copy"), "model.kind", "must be 'showtell', 'attend' or 'copy'")
        _check(self.feature in ("pooled", "logits"), "model.feature", "must be 'pooled' or 'logits'")
        _check(self.copy_weight > 0, "model.copy_weight", "must be positive")
        _check(0 <= self.name_threshold <= 1, "model.name_threshold", "must be in [0, 1] (0: off)")
        for name in ("embed", "hidden", "attn_dim", "copy_k"):
            _check(getattr(self, name) > 0, f"model.{name}", "must be positive")
        _check(0 <= self.dropout < 1, "model.dropout", "must be in [0, 1)")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, batching, validation and checkpointing."""

    data: str = ""  # folder written by `captioner prepare` (manifest.jsonl, vocab.json)
    features: str = ""  # features folder (default: DATA/features)
    out: str = "runs/model"  # where checkpoints go
    seed: int = 0
    batch_size: int = 50
    batch_mode: str = "random"  # "random": the seed's random (image, caption) draws; "epoch": every caption once
    steps_per_epoch: int = 0  # random mode: steps between validations (0: train captions / batch size)
    epochs: int = 20
    lr: float = 1e-3  # Adam learning rate
    schedule: str = "constant"  # "constant" or "cosine" (with linear warm-up)
    warmup_steps: int = 0
    clip: float = 10.0  # gradient-norm clipping (the seed clips at 10)
    label_smoothing: float = 0.0
    max_len: int = 20  # captions are truncated to this many words
    bf16: bool = False  # bfloat16 autocast (CPU and GPU)
    fp16: bool = False  # float16 autocast with a GradScaler (GPUs without bf16)
    compile: bool = False  # torch.compile the decoder
    checkpoint_every: int = 200  # steps between 'latest' checkpoints
    patience: int = 5  # stop after this many validations without a better CIDEr-D (0: never)
    val_images: int = 1000  # at most this many validation images are decoded for BLEU/CIDEr (0: none; best by val loss)
    init: str = ""  # start from this checkpoint's weights (same data and vocabulary), e.g. for SCST fine-tuning
    scst_samples: int = 0  # 0: cross-entropy; n >= 2: self-critical training with n sampled captions per image
    device: str = "cpu"  # "cpu", "cuda", or "auto"

    def __post_init__(self) -> None:
        _check(self.batch_mode in ("random", "epoch"), "train.batch_mode", "must be 'random' or 'epoch'")
        _check(self.schedule in ("constant", "cosine"), "train.schedule", "must be 'constant' or 'cosine'")
        _check(self.device in ("cpu", "cuda", "auto"), "train.device", "must be 'cpu', 'cuda' or 'auto'")
        for name in ("batch_size", "epochs", "max_len", "checkpoint_every"):
            _check(getattr(self, name) > 0, f"train.{name}", "must be positive")
        _check(self.lr > 0 and self.clip > 0, "train.lr/clip", "must be positive")
        _check(0 <= self.label_smoothing < 1, "train.label_smoothing", "must be in [0, 1)")
        _check(not (self.bf16 and self.fp16), "train.bf16/fp16", "choose one")
        _check(self.scst_samples == 0 or self.scst_samples >= 2, "train.scst_samples", "must be 0 or at least 2")
        for name in ("val_images", "patience", "steps_per_epoch", "warmup_steps"):
            _check(getattr(self, name) >= 0, f"train.{name}", "must be 0 or positive")


@dataclass(frozen=True)
class Config:
    """A whole run: [model] and [train] sections."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def onnx_session_options() -> Any:
    """The options of every onnxruntime session captioner opens (the exported graphs, the people detectors): errors
    only; intra-op threads OMP_NUM_THREADS when it is set (Ray sets it to an actor's num_cpus, and PyTorch reads it
    too), else one per core; the threads do not spin between runs, because spinning ones steal the cores from the
    next graph and from image decoding (bench/caption_speed.py: one image 47.8 -> 27.3 ms end to end)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", "0"))
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def _check(ok: bool, name: str, why: str) -> None:
    if not ok:
        raise CaptionerError(f"config field {name}: {why}")


def _build(cls: type, values: dict[str, Any], section: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    for key, value in values.items():
        if key not in known:
            raise CaptionerError(f"unknown config key {section}.{key}; known: {', '.join(known)}")
        want = type(known[key].default)
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise CaptionerError(f"config field {section}.{key}: expected {want.__name__}, got {value!r}")
        values[key] = value
    return cls(**values)


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare string such as runs/x


def config_from_dict(obj: dict[str, Any]) -> Config:
    """Build a Config from {"model": {...}, "train": {...}}, rejecting unknown keys and wrong types."""
    unknown = set(obj) - {"model", "train"}
    if unknown:
        raise CaptionerError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    return Config(
        _build(ModelConfig, dict(obj.get("model", {})), "model"),
        _build(TrainConfig, dict(obj.get("train", {})), "train"),
    )


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:  # type: ignore[assignment]
    """A TOML preset (or the defaults) plus `section.key=value` overrides."""
    obj: dict[str, Any] = {}
    if path:
        try:
            obj = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise CaptionerError(f"{path}: config file not found") from e
        except tomllib.TOMLDecodeError as e:
            raise CaptionerError(f"{path}: invalid TOML ({e})") from e
    for item in overrides:
        key, eq, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not eq or not dot:
            raise CaptionerError(f"override {item!r}: expected section.key=value, e.g. train.lr=3e-4")
        obj.setdefault(section, {})[name] = _parse_value(value.strip())
    return config_from_dict(obj)


@dataclass(frozen=True)
class Limits:
    """What the service accepts."""

    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = MAX_PIXELS
    max_batch: int = 16
    batch_wait_s: float = 0.01  # how long the batcher waits for more requests to join a batch
    max_beam: int = 10
    body_timeout_s: float = 30.0  # a client that has not sent its whole upload by then gets 408
