"""ONNX export: the graphs pass the ONNX checker and, run by onnxruntime, give what the PyTorch modules give;
greedy decoding around decoder.onnx writes the same captions; the int8 decoder is a third of the size or less,
the encoder's float16 weights a half."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from captioner.cli.main import main
from captioner.decode.search import greedy
from captioner.decode.stepper import TorchStepper
from captioner.features.encoders import load_encoder
from captioner.runtime.export import export
from captioner.text.vocab import END_IX, PAD_IX, START_IX, UNK_IX
from captioner.train.checkpoint import load_checkpoint

ort = pytest.importorskip("onnxruntime")
BUNDLED = Path(__file__).parents[1] / "src" / "captioner" / "bundled" / "open-clipart"


def _sessions(out: Path, suffix: str = "") -> dict[str, object]:
    return {n: ort.InferenceSession(str(out / f"{n}{suffix}.onnx")) for n in ("encoder", "init", "decoder")}


def _ort_greedy(s: dict, feats: np.ndarray, names: list[str], max_len: int) -> list[list[int]]:
    """Greedy decoding around decoder.onnx with decoding.py's rules (#PAD#, #START#, #UNK# banned; no word twice
    in a row; #END# forced at max_len): a reference loop for the parity check."""
    state = dict(zip(names, s["init"].run(None, {"features": feats}), strict=True))
    tok, out = np.full(len(feats), START_IX, np.int64), [[] for _ in feats]
    done = np.zeros(len(feats), bool)
    for step in range(max_len + 1):
        logp, *nxt = s["decoder"].run(None, {"token": tok, **state})[: len(names) + 1]  # attention also gives alpha
        logp[:, [PAD_IX, START_IX, UNK_IX]] = -np.inf
        logp[np.arange(len(feats)), tok] = -np.inf
        tok = np.full(len(feats), END_IX, np.int64) if step == max_len else logp.argmax(-1)
        for i in np.flatnonzero(~done):
            out[i].append(int(tok[i]))
        done |= tok == END_IX
        state = dict(zip(names, nxt, strict=True))
        if done.all():
            break
    return [[t for t in row if t != END_IX] for row in out]


def test_showtell_export_matches_torch(tiny_checkpoint: Path, shapes_data: Path, tmp_path: Path, capsys) -> None:
    assert main(["export", str(tiny_checkpoint), "--out", str(tmp_path / "x")]) == 0
    assert "encoder.onnx" in capsys.readouterr().out
    m = json.loads((tmp_path / "x" / "manifest.json").read_text())
    for name, f in m["files"].items():  # the manifest's hashes are the files'
        assert hashlib.sha256((tmp_path / "x" / name).read_bytes()).hexdigest() == f["sha256"]
    assert not _float16_weights(tmp_path / "x" / "decoder.onnx")  # trained in float32: kept so (no loss)
    assert m["source"] == {  # the checkpoint's files it came from
        n: hashlib.sha256((tiny_checkpoint / n).read_bytes()).hexdigest()
        for n in ("model.safetensors", "config.json", "vocab.json", "encoder.json", "policy.json")
    }
    s = _sessions(tmp_path / "x")
    x = torch.randn(3, 3, 224, 224)
    pooled, logits, _ = s["encoder"].run(None, {"image": x.numpy()})
    want = load_encoder("efficientnet-lite0").forward_features(x)
    np.testing.assert_allclose(pooled, want.pooled.numpy(), atol=1e-4)
    np.testing.assert_allclose(logits, want.logits.numpy(), atol=1e-3)
    ck = load_checkpoint(tiny_checkpoint)
    from captioner.features.extract import FeatureStore

    store = FeatureStore(shapes_data / "features")
    feats = store.get(m["feature"], list(range(12)))
    got = _ort_greedy(s, feats, m["state"], m["max_len"])
    assert got == [c.tokens for c in greedy(TorchStepper(ck.model, torch.from_numpy(feats)), m["max_len"])]


def test_copy_export_matches_torch_and_int8_is_small(tmp_path: Path) -> None:
    m = export(BUNDLED, tmp_path / "x", int8=True)
    assert m["kind"] == "copy" and m["state"] == ["h", "c", "copy_p", "copy_w"]
    ck = load_checkpoint(BUNDLED)
    feats = np.random.default_rng(0).normal(size=(4, 2280)).astype(np.float32) * 2
    s = _sessions(tmp_path / "x")
    state = s["init"].run(None, {"features": feats})
    ts = ck.model.init_state(torch.from_numpy(feats))
    for got, name in zip(state, m["state"], strict=True):  # float32 sums of 2,280 terms, reordered: ~1e-6 relative
        np.testing.assert_allclose(got, ts[name].detach().numpy(), rtol=1e-5, atol=1e-5)
    logp, *_ = s["decoder"].run(
        None, {"token": np.full(4, START_IX, np.int64), **dict(zip(m["state"], state, strict=True))}
    )
    with torch.no_grad():
        want, _ = ck.model.step(torch.full((4,), START_IX), ts)
    likely = want.numpy() > -15  # far-off words differ in the mixture's 1e-12 floor only
    np.testing.assert_allclose(logp[likely], want.numpy()[likely], rtol=2e-4, atol=1e-4)  # float32 reordering
    assert _ort_greedy(s, feats, m["state"], 20) == [
        c.tokens for c in greedy(TorchStepper(ck.model, torch.from_numpy(feats)))
    ]
    half = {g: _float16_weights(tmp_path / "x" / f"{g}.onnx") for g in ("encoder", "init", "decoder")}
    assert half == {"encoder": False, "init": True, "decoder": True}  # the checkpoint's weights are float16 numbers
    size = {g: m["files"][f]["bytes"] / m["files"][f"{g}.onnx"]["bytes"] for g, f in m["int8"].items()}
    assert size["decoder"] <= 0.51 and size["init"] <= 0.51 and size["encoder"] <= 0.51  # of float16, float32
    s8 = {g: ort.InferenceSession(str(tmp_path / "x" / f)) for g, f in m["int8"].items()}  # the compact graphs run
    assert s8["decoder"].run(
        None, {"token": np.full(4, START_IX, np.int64), **dict(zip(m["state"], state, strict=True))}
    )


def _float16_weights(graph: Path) -> bool:
    """Whether the graph stores its matrices as float16 (export's lossless halving)."""
    import onnx

    weights = [t for t in onnx.load(str(graph)).graph.initializer if len(t.dims) >= 2]
    return all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)


def test_attention_export_matches_torch(shapes_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "att"
    args = [f"train.data={shapes_data}", f"train.out={out}", "train.epochs=1", "train.steps_per_epoch=20"]
    assert main(["train", *args, "model.kind=attend", "train.lr=0.01"]) == 0
    m = export(out / "best", tmp_path / "x")
    assert m["feature"] == "grid" and m["step_outputs"][-1] == "alpha"
    s = _sessions(tmp_path / "x")
    x = torch.randn(2, 3, 224, 224)
    grid = s["encoder"].run(None, {"image": x.numpy()})[2]
    np.testing.assert_allclose(grid, load_encoder("efficientnet-lite0").forward_features(x).grid.numpy(), atol=1e-4)
    from captioner.features.extract import FeatureStore

    feats = FeatureStore(shapes_data / "features").get("grid", list(range(8)))
    ck = load_checkpoint(out / "best")
    got = _ort_greedy(s, feats, m["state"], m["max_len"])
    assert got == [c.tokens for c in greedy(TorchStepper(ck.model, torch.from_numpy(feats)), m["max_len"])]


def test_every_decoder_kind_has_an_export() -> None:
    from captioner.models import BUILDERS
    from captioner.runtime.export import STATE

    assert set(STATE) == set(BUILDERS)  # a new kind cannot land without its ONNX state layout


def test_export_without_onnx_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    import builtins

    from captioner.errors import CaptionerError

    real = builtins.__import__

    def no_onnx(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "onnx":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(CaptionerError, match=r"export needs the onnx extra: pip install -e '.\[onnx\]'"):
        export(BUNDLED, tmp_path / "x")
