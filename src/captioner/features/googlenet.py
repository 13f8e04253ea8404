"""The seminar's GoogLeNet: BVLC GoogLeNet from the Lasagne model zoo's blvc_googlenet.pkl, in PyTorch.

The pickle is read by a restricted unpickler (numpy arrays and plain containers only), its 116 arrays are
checked against the Lasagne parameter order and shapes (../shared/seed/DATA_FACTS.md, section 3), and the
weights are converted once to safetensors in the user's cache."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from captioner.errors import CaptionerError
from captioner.files import write_bytes
from captioner.unpickle import safe_unpickle

# name, input channels, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection
INCEPTIONS = (
    ("3a", 192, 64, 96, 128, 16, 32, 32),
    ("3b", 256, 128, 128, 192, 32, 96, 64),
    ("4a", 480, 192, 96, 208, 16, 48, 64),
    ("4b", 512, 160, 112, 224, 24, 64, 64),
    ("4c", 512, 128, 128, 256, 24, 64, 64),
    ("4d", 512, 112, 144, 288, 32, 64, 64),
    ("4e", 528, 256, 160, 320, 32, 128, 128),
    ("5a", 832, 256, 160, 320, 32, 128, 128),
    ("5b", 832, 384, 192, 384, 48, 128, 128),
)
BRANCHES = ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj")  # Lasagne's parameter order
WEIGHTS = "blvc_googlenet.pkl (Lasagne model zoo)"  # the spec names the file, not a path: any copy of it fits


class Inception(nn.Module):
    """Four parallel branches concatenated in the order [1x1, 3x3, 5x5, pool_proj]."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, cp: int) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(cin, c1, 1)
        self.b3r, self.b3 = nn.Conv2d(cin, c3r, 1), nn.Conv2d(c3r, c3, 3, padding=1)
        self.b5r, self.b5 = nn.Conv2d(cin, c5r, 1), nn.Conv2d(c5r, c5, 5, padding=2)
        self.pool, self.pp = nn.MaxPool2d(3, 1, padding=1), nn.Conv2d(cin, cp, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = torch.relu
        return torch.cat(
            [r(self.b1(x)), r(self.b3(r(self.b3r(x)))), r(self.b5(r(self.b5r(x)))), r(self.pp(self.pool(x)))], 1
        )  # (B, c1 + c3 + c5 + cp, H, W)

    def lasagne_params(self) -> list[nn.Conv2d]:
        return [self.b1, self.b3r, self.b3, self.b5r, self.b5, self.pp]


class GoogLeNet(nn.Module):
    """BVLC GoogLeNet (Caffe layout). floor=True rounds pools 2-4 down, as the seminar's Lasagne code did.

    Exposes extract_features(x) -> (B, 1024, 7, 7) and _fc, the interface encoders.Encoder expects."""

    def __init__(self, floor: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.lrn = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)  # Lasagne alpha 2e-5 per channel, times 5
        self.conv2_reduce, self.conv2 = nn.Conv2d(64, 64, 1), nn.Conv2d(64, 192, 3, padding=1)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=not floor)  # pools 2, 3 and 4
        self.inc = nn.ModuleDict({name: Inception(*sizes) for name, *sizes in INCEPTIONS})
        self._fc = nn.Linear(1024, 1000)  # loss3/classifier

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, 224, 224) BGR minus the mean pixel -> inception_5b output (B, 1024, 7, 7)."""
        x = self.lrn(self.pool1(torch.relu(self.conv1(x))))  # (B, 64, 56, 56)
        x = self.pool(self.lrn(torch.relu(self.conv2(torch.relu(self.conv2_reduce(x))))))  # (B, 192, 28, 28)
        for name, block in self.inc.items():
            x = block(x)
            if name in ("3b", "4e"):
                x = self.pool(x)  # (B, 480, 14, 14), then (B, 832, 7, 7)
        return x

    def lasagne_order(self) -> list[tuple[str, str, nn.Parameter]]:
        """(Lasagne layer name, 'W' or 'b', parameter) in the order of the pickle's 'param values'."""
        layers: list[tuple[str, nn.Module]] = [
            ("conv1/7x7_s2", self.conv1),
            ("conv2/3x3_reduce", self.conv2_reduce),
            ("conv2/3x3", self.conv2),
        ]
        for name, block in self.inc.items():
            layers += [(f"inception_{name}/{b}", m) for b, m in zip(BRANCHES, block.lasagne_params(), strict=True)]
        layers.append(("loss3/classifier", self._fc))
        return [(n, k, p) for n, m in layers for k, p in (("W", m.weight), ("b", m.bias))]


def read_lasagne_pickle(data: bytes, path: Path, floor: bool = False) -> tuple[GoogLeNet, list[str]]:
    """A GoogLeNet with the weights of the pickle `data` (read from `path`), and its 1000 class names; every
    array's shape checked."""
    obj = safe_unpickle(data, str(path), arrays=True)
    if not isinstance(obj, dict) or not isinstance(obj.get("param values"), list):
        raise CaptionerError(f"{path}: expected a dict with 'param values' (the Lasagne model zoo's format)")
    values, net = obj["param values"], GoogLeNet(floor)
    order = net.lasagne_order()
    if len(values) != len(order):
        raise CaptionerError(f"{path}: 'param values' has {len(values)} arrays, GoogLeNet needs {len(order)}")
    state = {}
    names = {id(p): k for k, p in net.named_parameters()}
    for i, ((layer, kind, p), v) in enumerate(zip(order, values, strict=True)):
        want = tuple(p.shape[::-1]) if layer == "loss3/classifier" and kind == "W" else tuple(p.shape)
        if not isinstance(v, np.ndarray) or v.shape != want or v.dtype.kind != "f":
            got = v.shape if isinstance(v, np.ndarray) else type(v).__name__
            raise CaptionerError(
                f"{path}: param values[{i}] ({layer} {kind}) is {got}, expected a float array of shape {want}; "
                "the arrays must be in Lasagne's order (DATA_FACTS section 3)"
            )
        t = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))
        state[names[id(p)]] = t.T.contiguous() if want != tuple(p.shape) else t  # Dense W is (in, out)
    net.load_state_dict(state)
    words = obj.get("synset words")
    if not (isinstance(words, list) and len(words) == 1000 and all(isinstance(w, str) for w in words)):
        raise CaptionerError(f"{path}: 'synset words' must be a list of 1000 class names")
    return net, [_label(w) for w in words]


def _label(synset: str) -> str:
    """'n02123045 tabby, tabby cat' or 'tabby, tabby cat' -> 'tabby'."""
    head, _, rest = synset.partition(" ")
    text = rest if head[:1] == "n" and head[1:].isdigit() else synset
    return text.split(",")[0].strip()


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "captioner"


def load_googlenet(path: str | Path, floor: bool = False) -> tuple[GoogLeNet, list[str]]:
    """Network and class names from the pickle; converted to safetensors once (keyed by the file's hash)."""
    path = Path(path)
    try:
        data = path.read_bytes()  # read once: hashed for the cache key, unpickled on a cache miss
    except FileNotFoundError:
        raise CaptionerError(f"{path}: GoogLeNet weights not found (the seminar's data/blvc_googlenet.pkl)") from None
    except OSError as e:
        raise CaptionerError(f"{path}: cannot read GoogLeNet weights ({e.strerror})") from None
    cached = cache_dir() / f"googlenet-{hashlib.sha1(data).hexdigest()[:16]}.safetensors"
    if cached.is_file():
        from safetensors import safe_open

        with safe_open(str(cached), "pt") as f:
            labels = json.loads((f.metadata() or {}).get("labels", "[]"))
        net = GoogLeNet(floor)
        net.load_state_dict(load_file(cached))
    else:
        net, labels = read_lasagne_pickle(data, path, floor)
        # atomic, and the file's mode follows the umask (safetensors' save_file writes 0600)
        write_bytes(cached, safetensors_bytes(net.state_dict(), metadata={"labels": json.dumps(labels)}))
    return net, labels
