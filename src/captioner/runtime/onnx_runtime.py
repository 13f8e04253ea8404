"""The onnxruntime runtime of a Captioner: a folder written by `captioner export`, run with no PyTorch import.

The folder's manifest.json says how the graphs connect (export.py); each file the runtime uses is checked
against its sha256 (a graph from the same bytes its session opens), so a half-copied or edited export is a
clear error, not a wrong caption."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from captioner.config import config_from_dict, onnx_session_options
from captioner.errors import CaptionerError
from captioner.features.spec import EncoderSpec
from captioner.files import read_json, write_bytes, write_json
from captioner.policy import POLICY_FILE, policy_from_bytes
from captioner.text.vocab import START_IX, Vocab

EXPORT_VERSION = 2  # of the folder `captioner export` writes (export.py imports it from here)
GRAPHS = ("encoder", "init", "decoder")
SOURCE_FILES = ("model.safetensors", "config.json", "vocab.json", "encoder.json", POLICY_FILE)  # manifest 'source'
EXPORT_DIR = "onnx"  # a checkpoint's own export: CHECKPOINT/onnx, what runtime auto runs (own_export)
State = dict[str, np.ndarray]


def _session(graph: bytes) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(graph, onnx_session_options(), providers=["CPUExecutionProvider"])


def read_manifest(folder: Path) -> dict[str, Any]:
    """manifest.json of an export, its version checked."""
    m = read_json(folder / "manifest.json", "export manifest")
    if not isinstance(m, dict) or m.get("version") != EXPORT_VERSION or not isinstance(m.get("files"), dict):
        raise CaptionerError(
            f"{folder / 'manifest.json'}: not a captioner export (version {EXPORT_VERSION}); "
            "write one with `captioner export CHECKPOINT --out DIR`"
        )
    return m


def verified(folder: Path, manifest: dict[str, Any], name: str) -> bytes:
    """The bytes of one file the manifest lists, read once and checked against its sha256."""
    p, entry = folder / name, manifest["files"].get(name)
    if entry is None:
        raise CaptionerError(f"{folder / 'manifest.json'}: does not list {name}")
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise CaptionerError(f"{p}: listed in manifest.json but missing") from None
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise CaptionerError(f"{p}: sha256 differs from manifest.json (a changed or half-copied file)")
    return data


def own_export(checkpoint: Path) -> Path | None:
    """The checkpoint's own export (CHECKPOINT/onnx, written by `captioner export CHECKPOINT --out
    CHECKPOINT/onnx`), or None when it has none; an export of other files of the checkpoint is an error naming the
    file that changed."""
    folder = checkpoint / EXPORT_DIR
    if not (folder / "manifest.json").is_file():
        return None
    source = read_manifest(folder).get("source") or {"manifest.json's source": None}
    changed = _changed(checkpoint, source, list(source))
    if changed:
        raise CaptionerError(
            f"{folder}: exported from another {changed[0]} than {checkpoint / changed[0]}; rerun `captioner export "
            f"{checkpoint} --out {folder}` (or caption with --runtime torch)"
        )
    return folder


def _changed(checkpoint: Path, source: dict[str, Any], names: list[str]) -> list[str]:
    """Those of the checkpoint's files `names` that are missing or whose sha256 is not the export's `source`'s."""
    return [
        n
        for n in names
        if not (checkpoint / n).is_file() or hashlib.sha256((checkpoint / n).read_bytes()).hexdigest() != source.get(n)
    ]


def refresh_own_export(checkpoint: Path) -> str | None:
    """After `captioner upgrade`: the checkpoint's own export given the checkpoint's policy.json and vocab.json as
    they are now (the graphs read neither: upgrade changes rules and word tables, never the words), their hashes
    in its manifest; returns what was done, None when it has no own export. An export whose graphs came from other
    weights, config, encoder or words is left as it is, and the answer names the command that rewrites it."""
    folder = checkpoint / EXPORT_DIR
    if not (folder / "manifest.json").is_file():
        return None
    m = read_manifest(folder)
    source = m.get("source", {})
    graphs_from = [n for n in SOURCE_FILES if n not in ("vocab.json", POLICY_FILE)]
    words = Vocab.load(checkpoint / "vocab.json").itos == Vocab.load(folder / "vocab.json").itos
    if _changed(checkpoint, source, graphs_from) or not words:
        return f"{folder}: exported from other weights or words; rerun `captioner export {checkpoint} --out {folder}`"
    for name in ("vocab.json", POLICY_FILE):
        data = (checkpoint / name).read_bytes()
        write_bytes(folder / name, data)
        sha = hashlib.sha256(data).hexdigest()
        m["files"][name] = {"sha256": sha, "bytes": len(data)}
        source[name] = sha
    write_json(folder / "manifest.json", {**m, "source": source})
    return f"{folder}: its policy.json and vocab.json are the checkpoint's now"


class OnnxStepper:
    """decoding.Stepper over init.onnx and decoder.onnx for one batch of joined features (B, ...). init.onnx runs
    once, over the batch's images; every start() selects its rows (a row's state depends on its image alone)."""

    def __init__(
        self, init: Any, decoder: Any, names: list[str], feats: np.ndarray, attends: bool, no_end: np.ndarray | None
    ) -> None:
        self.init, self.decoder, self.names, self.feats = init, decoder, names, feats
        self.batch, self.attends, self.no_end = len(feats), attends, no_end
        self.forbid: np.ndarray | None = None
        self.first, self.repeat = START_IX, None
        self._images: State | None = None  # init.onnx's state of each image, once asked for

    def start(self, rows: np.ndarray) -> State:
        if self._images is None:
            self._images = dict(zip(self.names, self.init.run(self.names, {"features": self.feats}), strict=True))
        return self.select(self._images, rows)

    def step(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        outs = [f"{n}_next" for n in self.names] + (["alpha"] if self.attends else [])
        logp, *rest = self.decoder.run(
            ["logp", *outs], {"token": tokens.astype(np.int64), **{n: state[n] for n in self.names}}
        )
        nxt = dict(zip(self.names, rest[: len(self.names)], strict=True))
        if self.attends:
            nxt["alpha"] = rest[-1]
        return logp, nxt

    def select(self, state: State, idx: np.ndarray) -> State:
        return {k: v[idx] for k, v in state.items()}

    def alpha(self, state: State) -> np.ndarray:
        return state["alpha"]

    def offered(self) -> tuple[np.ndarray, np.ndarray] | None:
        if "copy_p" not in self.names:
            return None
        s = self.start(np.arange(self.batch))
        return s["copy_p"], s["copy_w"]


class OnnxRuntime:
    """api.Runtime over an export folder: encoder.onnx, init.onnx and decoder.onnx, or with int8 the compact
    graphs that manifest.json's 'int8' names."""

    def __init__(self, folder: Path, int8: bool, name_threshold: float | None) -> None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise CaptionerError(
                "runtime onnx needs onnxruntime: pip install onnxruntime (or caption with --runtime torch --no-people)"
            ) from None
        m = read_manifest(folder)
        files = m.get("int8", {}) if int8 else {g: f"{g}.onnx" for g in GRAPHS}
        missing = [g for g in GRAPHS if files.get(g) not in m["files"]]
        if missing:
            what = "int8 graphs (export with --int8)" if int8 else ", ".join(f"{g}.onnx" for g in missing)
            raise CaptionerError(f"{folder}: the export has no {what}")
        for name in ("vocab.json", "encoder.json", "labels.json"):
            verified(folder, m, name)
        policy = verified(folder, m, POLICY_FILE)
        self.sessions = {g: _session(verified(folder, m, files[g])) for g in GRAPHS}  # only the graphs it runs
        self.manifest, self.feature = m, str(m["feature"])
        self.vocab = Vocab.load(folder / "vocab.json")
        self.policy = policy_from_bytes(policy, folder / POLICY_FILE, self.vocab)
        self.no_end = self.policy.no_end_mask()
        self.spec = EncoderSpec.from_json(read_json(folder / "encoder.json", "encoder spec"), str(folder))
        self.labels = tuple(read_json(folder / "labels.json", "class labels"))
        self.max_len = int(m["max_len"])
        model = config_from_dict(read_json(folder / "config.json", "model config")).model
        self.name_threshold = float(self.policy.data["name_threshold"] if name_threshold is None else name_threshold)
        dataclasses.replace(model, name_threshold=self.name_threshold)  # checks the range, as the torch runtime does
        self.attends = "alpha" in m.get("step_outputs", [])
        self.info: dict[str, Any] = {
            "runtime": "onnx" + ("-int8" if int8 else ""),
            "model": str(folder),
            "kind": m["kind"],
            "encoder": self.spec.name,
            "sha256": hashlib.sha256((folder / "manifest.json").read_bytes() + (b" int8" if int8 else b"")).hexdigest(),
        }

    def encode(self, x: np.ndarray) -> tuple[OnnxStepper, np.ndarray, np.ndarray]:
        """A preprocessed batch (B, 3, S, S) -> the decoder over its features, the classifier's logits (B, C) and
        the pooled vectors (B, D)."""
        pooled, logits, grid = self.sessions["encoder"].run(
            ["pooled", "logits", "grid"], {"image": np.ascontiguousarray(x, np.float32)}
        )
        parts = {"pooled": pooled, "logits": logits, "grid": grid}
        feats = np.concatenate([parts[k] for k in self.feature.split("+")], axis=-1)
        names = list(self.manifest["state"])
        st = OnnxStepper(self.sessions["init"], self.sessions["decoder"], names, feats, self.attends, self.no_end)
        return st, logits, pooled
