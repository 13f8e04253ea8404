"""Reference logits from Lasagne itself for the GoogLeNet port's parity test (tests/test_googlenet.py).

Runs in a separate Python 3.11 virtual environment with Theano 1.0.5 and Lasagne 0.2.dev1 (see docs/seed.md):
    THEANO_FLAGS=device=cpu,floatX=float32,blas.ldflags=-lopenblas \\
        lasagne-venv/bin/python tools/lasagne_reference.py INPUTS.npy OUT.npz
INPUTS.npy holds preprocessed images (N, 3, 224, 224), BGR minus the mean pixel. The network is the model zoo's
GoogLeNet graph built on CPU layers; its weights are drawn by the seeded rule in tests/lasagne_weights.py in the
order Lasagne's get_all_params gives, so the test can draw the same arrays from the documented order and shapes
alone. OUT.npz
gets the logits of the Caffe (ceil) and the seminar's (floor) pooling, the parameter shapes in Lasagne's order,
and the Lasagne and Theano versions."""

import sys
from pathlib import Path

import lasagne
import numpy as np
import theano
import theano.tensor as T
from lasagne.layers import (
    ConcatLayer,
    Conv2DLayer,
    DenseLayer,
    GlobalPoolLayer,
    InputLayer,
    LocalResponseNormalization2DLayer,
    MaxPool2DLayer,
)
from lasagne.nonlinearities import linear

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the weights the parity test draws
from lasagne_weights import random_weights  # noqa: E402

MODULES = [
    ("3a", 64, 96, 128, 16, 32, 32),
    ("3b", 128, 128, 192, 32, 96, 64),
    ("4a", 192, 96, 208, 16, 48, 64),
    ("4b", 160, 112, 224, 24, 64, 64),
    ("4c", 128, 128, 256, 24, 64, 64),
    ("4d", 112, 144, 288, 32, 64, 64),
    ("4e", 256, 160, 320, 32, 128, 128),
    ("5a", 256, 160, 320, 32, 128, 128),
    ("5b", 384, 192, 384, 48, 128, 128),
]


def conv(x, n, k, stride=1, pad=0):
    return Conv2DLayer(x, n, k, stride=stride, pad=pad, flip_filters=False)  # cross-correlation, as Caffe


def inception(x, c1, c3r, c3, c5r, c5, cp):
    b1 = conv(x, c1, 1)
    b3 = conv(conv(x, c3r, 1), c3, 3, pad=1)
    b5 = conv(conv(x, c5r, 1), c5, 5, pad=2)
    bp = conv(MaxPool2DLayer(x, 3, stride=1, pad=1, ignore_border=True), cp, 1)
    return ConcatLayer([b1, b3, b5, bp])


def build(floor):
    pool = lambda x: MaxPool2DLayer(x, 3, stride=2, ignore_border=floor)  # noqa: E731
    lrn = lambda x: LocalResponseNormalization2DLayer(x, alpha=0.00002, k=1)  # noqa: E731
    x = InputLayer((None, 3, None, None))
    x = lrn(MaxPool2DLayer(conv(x, 64, 7, stride=2, pad=3), 3, stride=2, ignore_border=False))
    x = pool(lrn(conv(conv(x, 64, 1), 192, 3, pad=1)))
    for name, *sizes in MODULES:
        x = inception(x, *sizes)
        if name in ("3b", "4e"):
            x = pool(x)
    return DenseLayer(GlobalPoolLayer(x), 1000, nonlinearity=linear)


def main():
    inputs = np.load(sys.argv[1]).astype(np.float32)
    result = {}
    for floor in (False, True):
        net = build(floor)
        shapes = [p.get_value().shape for p in lasagne.layers.get_all_params(net)]
        lasagne.layers.set_all_param_values(net, random_weights(shapes))
        x = T.tensor4("x")
        f = theano.function([x], lasagne.layers.get_output(net, x, deterministic=True))
        result["floor" if floor else "ceil"] = f(inputs)
        result["shapes"] = np.array([str(s) for s in shapes])
    np.savez(sys.argv[2], lasagne=lasagne.__version__, theano=theano.__version__, **result)
    print(f"{len(shapes)} arrays, {sum(int(np.prod(s)) for s in shapes)} numbers; logits {result['ceil'].shape}")


if __name__ == "__main__":
    main()
