"""`captioner export`: a checkpoint as ONNX graphs that any runtime can run, with the JSON that describes them.

Beside them: vocab.json, labels.json (the classifier's class names), encoder.json (the spec: preprocessing),
config.json and manifest.json (how the graphs connect, and each file's sha256 and size).

    encoder.onnx   image (B, 3, S, S), preprocessed as encoder.json says -> pooled (B, D), logits (B, 1000),
                   grid (B, cells, D)
    init.onnx      features -> the decoder's state before #START# (h, c; the copy path's offer; the attention
                   decoder's grid and keys)
    decoder.onnx   token (B,), state -> log-probabilities of the next word (B, V), the next state (names + "_next"),
                   and for attention decoders alpha (B, cells), where the step looked

Decoding (greedy or beam search, #UNK# blocked) runs around decoder.onnx, as decoding.py runs around
Decoder.step. `features` is the encoder's outputs joined as manifest.json's 'feature' says (e.g. pooled+logits).
Show-and-Tell, copy and attention decoders export; ensembles are not checkpoints and cannot be given."""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import Checkpoint, load_checkpoint
from .encoders import Encoder, encoder_for
from .errors import CaptionerError
from .files import write_json
from .models import feature_kind
from .onnxrt import EXPORT_VERSION

log = logging.getLogger(__name__)
OPSET = 17
STATE = {  # the state tensors of each decoder kind, in graph order
    "showtell": ("h", "c"),
    "copy": ("h", "c", "copy_p", "copy_w"),
    "attend": ("grid", "keys", "h", "c"),
}


class _EncoderGraph(nn.Module):
    def __init__(self, enc: Encoder) -> None:
        super().__init__()
        self.enc = enc

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.enc.features(image)
        return f.pooled, f.logits, f.grid  # (B, D), (B, 1000), (B, S*S, D)


class _InitGraph(nn.Module):
    def __init__(self, model: nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, ...]:
        s = self.model.init_state(feats)
        return tuple(s[n] for n in self.names)


class _StepGraph(nn.Module):
    def __init__(self, model: nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, token: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        scores, s = self.model.step(token, dict(zip(self.names, state, strict=True)))
        logp = torch.log_softmax(scores.float(), -1)  # (B, V); the copy decoder's log-probabilities are unchanged
        return (logp, *(s[n] for n in self.names), *((s["alpha"],) if self.model.attends else ()))


def _onnx(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str]) -> None:
    """Trace module to path with a dynamic batch axis, and check the result with the ONNX checker."""
    import onnx

    axes = {n: {0: "batch"} for n in inputs + outputs}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on the LSTM and shape inference
        torch.onnx.export(
            module, args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=axes, opset_version=OPSET,
            dynamo=False,
        )  # fmt: skip
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def _quantize(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization of the weights (onnxruntime's tool; it logs each tensor it skips on the root
    logger, which is kept to errors meanwhile)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    finally:
        root.level = level


def export(
    checkpoint: str | Path, out: str | Path, int8: bool = False, encoder_weights: str | Path | None = None
) -> dict[str, Any]:
    """Write the ONNX graphs, vocabulary, encoder spec, config and a manifest of file hashes and sizes to out/.
    encoder_weights: for an encoder not installed from a package (googlenet-bvlc: blvc_googlenet.pkl)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise CaptionerError("export needs the onnx extra: pip install -e '.[onnx]'") from None
    ck = load_checkpoint(checkpoint)
    kind = ck.config.model.kind
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, names, feature = ck.model.eval(), STATE[kind], feature_kind(ck.config.model)
    enc = encoder_for(ck.spec, encoder_weights, f"checkpoint {ck.path}")
    s = ck.spec.input_size
    image = (torch.zeros(2, 3, s, s),)
    _onnx(_EncoderGraph(enc).eval(), image, out / "encoder.onnx", ["image"], ["pooled", "logits", "grid"])
    feats = torch.randn(2, *_shape(ck, feature))
    state = model.init_state(feats)
    _onnx(_InitGraph(model, names), (feats,), out / "init.onnx", ["features"], list(names))
    token = torch.full((2,), 2, dtype=torch.long)
    step_args = (token, *(state[n] for n in names))
    step_out = ["logp", *(f"{n}_next" for n in names), *(["alpha"] if model.attends else [])]
    _onnx(_StepGraph(model, names), step_args, out / "decoder.onnx", ["token", *names], step_out)
    graphs = ["encoder.onnx", "init.onnx", "decoder.onnx"]
    if int8:
        for g in graphs:
            _quantize(out / g, out / g.replace(".onnx", ".int8.onnx"))
        graphs += [g.replace(".onnx", ".int8.onnx") for g in graphs]
    ck.vocab.save(out / "vocab.json")
    write_json(out / "labels.json", list(enc.labels))
    write_json(out / "encoder.json", ck.spec.to_json())
    write_json(out / "config.json", ck.config.to_json())
    manifest = {**_manifest(ck, out, graphs, feature, names), "step_outputs": step_out}
    write_json(out / "manifest.json", manifest)
    return manifest


def _shape(ck: Checkpoint, feature: str) -> tuple[int, ...]:
    """One image's input to init.onnx: (F,) for pooled/logits features joined, (cells, D) for the grid."""
    if feature == "grid":
        return (ck.spec.grid_size**2, ck.spec.grid_dim)
    dims = {"pooled": ck.spec.pooled_dim, "logits": ck.spec.num_classes}
    return (sum(dims[k] for k in feature.split("+")),)


def _manifest(ck: Checkpoint, out: Path, graphs: list[str], feature: str, names: tuple[str, ...]) -> dict[str, Any]:
    files = [*graphs, "vocab.json", "labels.json", "encoder.json", "config.json"]
    return {
        "version": EXPORT_VERSION,
        "checkpoint": str(ck.path),
        "kind": ck.config.model.kind,
        "feature": feature,  # how the encoder's outputs join into init.onnx's input
        "state": list(names),
        "max_len": ck.config.train.max_len,
        "name_threshold": ck.config.model.name_threshold,
        "files": {
            f: {"sha256": hashlib.sha256((out / f).read_bytes()).hexdigest(), "bytes": (out / f).stat().st_size}
            for f in files
        },  # fmt: skip
    }
