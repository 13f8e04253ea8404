"""`captioner export`: a checkpoint as ONNX graphs that any runtime can run, with the JSON that describes them.

Beside them: vocab.json, labels.json (the classifier's class names), encoder.json (the spec: preprocessing),
config.json and manifest.json (how the graphs connect, and each file's sha256 and size).

    encoder.onnx   image (B, 3, S, S), preprocessed as encoder.json says -> pooled (B, D), logits (B, 1000),
                   grid (B, cells, D)
    init.onnx      features -> the decoder's state before #START# (h, c; the copy path's offer; the attention
                   decoder's grid and keys)
    decoder.onnx   token (B,), state -> log-probabilities of the next word (B, V), the next state (names + "_next"),
                   and for attention decoders alpha (B, cells), where the step looked

init.onnx and decoder.onnx store their weights as float16, each cast back to float32 when the session opens, when
every weight is a float16 number already (a checkpoint saved in float16, as the bundled model is): the same numbers
in half the bytes, so their outputs are the fp32 graphs' exactly.
--int8 adds init.int8.onnx and decoder.int8.onnx (onnxruntime's dynamic int8 quantization) and
encoder.fp16.onnx (float16 weights: int8 spoils this encoder, see _half_weights); manifest.json's 'int8' names them.
manifest.json's 'source' has the sha256 of each checkpoint file the graphs came from: a checkpoint's own export in
CHECKPOINT/onnx (onnx_runtime.EXPORT_DIR, what runtime auto runs) is checked against them.

Decoding (greedy or beam search, #UNK# blocked) runs around decoder.onnx, as decode/search.py runs around
Decoder.step. `features` is the encoder's outputs joined as manifest.json's 'feature' says (e.g. pooled+logits).
Show-and-Tell, copy and attention decoders export; ensembles are not checkpoints and cannot be given."""

from __future__ import annotations

import hashlib
import logging
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from captioner.errors import CaptionerError
from captioner.features.encoders import Encoder, encoder_for
from captioner.files import write_json
from captioner.models import feature_kind
from captioner.policy import POLICY_FILE
from captioner.runtime.onnx_runtime import EXPORT_VERSION, SOURCE_FILES
from captioner.train.checkpoint import Checkpoint, load_checkpoint

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
    """Dynamic int8 quantization of the decoder's weights (onnxruntime's tool; it logs each tensor it skips on
    the root logger, which is kept to errors meanwhile)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    finally:
        root.level = level


def _half_weights(src: Path, dst: Path, exact_only: bool = False) -> bool:
    """The encoder for `--int8`: its weights stored as float16, each cast back to float32 by a Cast node that
    onnxruntime folds when the session opens, so it computes in float32 as the fp32 graph does. Post-training
    int8 changes EfficientNet-Lite0's features by 13% (relative L2, per-channel weights; 31% of captions stay
    the same with onnxruntime's dynamic quantization, 82% with weight-only int8), float16 by 0.4%; figures
    in docs/results.md. exact_only: write nothing unless every weight is a float16 number already (the graph's
    outputs are then unchanged); returns whether it wrote dst."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    g = model.graph
    weights = [t for t in g.initializer if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) >= 2]
    if exact_only and not all(_fp16_exact(numpy_helper.to_array(t)) for t in weights):
        return False
    casts = []
    for t in weights:  # biases and shapes stay as they are
        g.initializer.remove(t)
        g.initializer.append(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), f"{t.name}_fp16"))
        casts.append(helper.make_node("Cast", [f"{t.name}_fp16"], [t.name], to=onnx.TensorProto.FLOAT))
    nodes = [*casts, *g.node]  # the cast weights first, so the graph stays in topological order
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(dst))
    return True


def _fp16_exact(a: Any) -> bool:
    import numpy as np

    return bool(np.array_equal(a.astype(np.float16).astype(np.float32), a))


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
    compact = {"encoder": "encoder.fp16.onnx", "init": "init.int8.onnx", "decoder": "decoder.int8.onnx"}
    if int8:
        _half_weights(out / "encoder.onnx", out / compact["encoder"])
        for g in ("init", "decoder"):
            _quantize(out / f"{g}.onnx", out / compact[g])
        graphs += list(compact.values())
    for g in ("init", "decoder"):  # after quantizing, which reads the float32 weights
        _half_weights(out / f"{g}.onnx", out / f"{g}.onnx", exact_only=True)
    ck.vocab.save(out / "vocab.json")
    shutil.copyfile(ck.path / POLICY_FILE, out / POLICY_FILE)
    write_json(out / "labels.json", list(enc.labels))
    write_json(out / "encoder.json", ck.spec.to_json())
    write_json(out / "config.json", ck.config.to_json())
    manifest = {**_manifest(ck, out, graphs, feature, names), "step_outputs": step_out}
    if int8:
        manifest["int8"] = compact  # the graphs `--runtime onnx --int8` runs
    write_json(out / "manifest.json", manifest)
    return manifest


def _shape(ck: Checkpoint, feature: str) -> tuple[int, ...]:
    """One image's input to init.onnx: (F,) for pooled/logits features joined, (cells, D) for the grid."""
    if feature == "grid":
        return (ck.spec.grid_size**2, ck.spec.grid_dim)
    dims = {"pooled": ck.spec.pooled_dim, "logits": ck.spec.num_classes}
    return (sum(dims[k] for k in feature.split("+")),)


def _manifest(ck: Checkpoint, out: Path, graphs: list[str], feature: str, names: tuple[str, ...]) -> dict[str, Any]:
    files = [*graphs, "vocab.json", "labels.json", "encoder.json", "config.json", POLICY_FILE]
    present = [n for n in SOURCE_FILES if (ck.path / n).is_file()]  # a legacy checkpoint has model.pt
    source = {n: hashlib.sha256((ck.path / n).read_bytes()).hexdigest() for n in present}
    return {
        "version": EXPORT_VERSION,
        "checkpoint": str(ck.path),
        "kind": ck.config.model.kind,
        "feature": feature,  # how the encoder's outputs join into init.onnx's input
        "state": list(names),
        "max_len": ck.config.train.max_len,
        "files": {
            f: {"sha256": hashlib.sha256((out / f).read_bytes()).hexdigest(), "bytes": (out / f).stat().st_size}
            for f in files
        },  # fmt: skip
        "source": source,  # the checkpoint's files the export came from
    }
