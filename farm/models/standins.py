"""Generators of the demo pack's stand-in ONNX graphs (see farm.models.demo).

Kept apart from farm.models.demo because `onnx` takes ~1.5 s to import: only building
a demo pack needs it, never loading one (farm submit, workers).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from farm.errors import ModelError
from farm.models.demo import _MARK, DEMO_VERSION
from farm.models.manifest import ModelEntry, TensorSpec
from farm.models.standins_faces import converter_standin, restorer_standin, swapper_standin
from farm.models.standins_masks import face_parser_standin, occluder_standin

OPSET = 17
IR_VERSION = 8
SEED = 20240601
_DTYPES = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "float64": TensorProto.DOUBLE,
           "uint8": TensorProto.UINT8, "int64": TensorProto.INT64}

# ---------------------------------------------------------------- graph helpers


def _vi(t: TensorSpec) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(t.name, _DTYPES[t.dtype], list(t.shape))


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(array), name)


def _model(entry: ModelEntry, nodes: list, inits: list, doc: str) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, f"demo_{entry.name}", [_vi(t) for t in entry.inputs], [_vi(t) for t in entry.outputs],
        initializer=inits, doc_string=doc,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="farm-demo",
        producer_version=str(DEMO_VERSION), doc_string=f"{_MARK}: stand-in for {entry.name}; NOT real weights",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _zero_scores(x: str, stride: int, tag: str, nodes: list) -> str:
    """Nodes turning input `x` [B,3,H,W] into zeros [B,1,H/s,W/s]; returns the tensor name."""
    nodes += [
        helper.make_node("AveragePool", [x], [f"{tag}_pool"], kernel_shape=[stride, stride], strides=[stride, stride]),
        helper.make_node("ReduceMean", [f"{tag}_pool"], [f"{tag}_mean"], axes=[1], keepdims=1),
        helper.make_node("Mul", [f"{tag}_mean", "zero"], [f"{tag}_zero"]),
    ]
    return f"{tag}_zero"


def _detector_parts(entry: ModelEntry, n_outputs: int, rows: list[int],
                    tile_prefix: list[int]) -> tuple[str, list[str], list, list]:
    """(input name, output names, no nodes yet, the constants) shared by the detector stand-ins."""
    outs = [t.name for t in entry.outputs]
    if len(outs) != n_outputs:
        raise ModelError(f"{entry.name}: expected {n_outputs} detector outputs, manifest has {len(outs)}")
    inits = [_const("zero", np.zeros((), np.float32)), _const("rows", np.array(rows, np.int64)),
             _const("tile4", np.array([*tile_prefix, 4], np.int64)),
             _const("tile10", np.array([*tile_prefix, 10], np.int64))]
    return entry.inputs[0].name, outs, [], inits


# ---------------------------------------------------------------- stand-ins


def scrfd_standin(entry: ModelEntry, fixed_face: FixedFace | None = None) -> onnx.ModelProto:
    """SCRFD signature: 9 outputs (scores, bbox, kps x strides 8/16/32, 2 anchors per cell), all 0.

    fixed_face: report that one face in every image instead (benchmarks): a constant score at
    one stride-16 anchor near the face's centre, with the box distances and landmark offsets
    that farm.faces.decode.decode_scrfd turns back into `fixed_face` (in the model input's
    pixels). The constants have the rows of a FIXED_INPUT input, the size the farm feeds an
    SCRFD model whose input size is dynamic.
    """
    x, outs, nodes, inits = _detector_parts(entry, 9, rows=[-1, 1], tile_prefix=[1])
    heads = _fixed_heads(fixed_face) if fixed_face is not None else {}
    for i, stride in enumerate((8, 16, 32)):
        tag = f"s{stride}"
        z = _zero_scores(x, stride, tag, nodes)
        names = [outs[i], outs[3 + i], outs[6 + i]]
        if stride in heads:   # zeros + the constant face, so the outputs still follow the input
            names = [f"{tag}_{n}" for n in ("score0", "box0", "kps0")]
            for k, (name, const) in enumerate(zip(names, heads[stride])):
                inits.append(_const(f"{tag}_face{k}", const))
                nodes.append(helper.make_node("Add", [name, f"{tag}_face{k}"], [outs[3 * k + i]]))
        nodes += [
            helper.make_node("Concat", [z, z], [f"{tag}_anchors"], axis=1),
            helper.make_node("Transpose", [f"{tag}_anchors"], [f"{tag}_nhwc"], perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", [f"{tag}_nhwc", "rows"], [names[0]]),
            helper.make_node("Tile", [names[0], "tile4"], [names[1]]),
            helper.make_node("Tile", [names[0], "tile10"], [names[2]]),
        ]
    if fixed_face is not None:
        nodes = _in_order(nodes)
        return _model(entry, nodes, inits, "one fixed face in every image (benchmark stand-in)")
    return _model(entry, nodes, inits, "scores 0 everywhere: the demo pack detects faces with a Haar cascade")


FixedFace = tuple[tuple[float, float, float, float], tuple[tuple[float, float], ...]]
"""(box x0, y0, x1, y1; five landmarks (x, y)) in the detector input's pixels."""

FIXED_INPUT = (640, 640)
FIXED_SCORE = 0.95
_FIXED_STRIDE = 16


def _fixed_heads(face: FixedFace) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """{stride: (scores [R,1], box distances [R,4], landmark offsets [R,10])}: all 0 but one anchor."""
    (x0, y0, x1, y1), points = face
    w, h = FIXED_INPUT
    s = _FIXED_STRIDE
    cols, cells = w // s, (w // s) * (h // s)
    col = min(cols - 1, max(0, round((x0 + x1) / 2 / s)))
    row = min(h // s - 1, max(0, round((y0 + y1) / 2 / s)))
    cx, cy = col * s, row * s          # decode_scrfd's anchor centre (no half-cell offset)
    r = (row * cols + col) * 2         # the first of the cell's two anchors
    scores = np.zeros((cells * 2, 1), np.float32)
    boxes = np.zeros((cells * 2, 4), np.float32)
    kps = np.zeros((cells * 2, 10), np.float32)
    scores[r] = FIXED_SCORE
    boxes[r] = np.array([cx - x0, cy - y0, x1 - cx, y1 - cy], np.float32) / s
    kps[r] = (np.asarray(points, np.float32).reshape(5, 2) - [cx, cy]).reshape(10) / s
    return {s: (scores, boxes, kps)}


def _in_order(nodes: list) -> list:
    """Nodes sorted so that each comes after the nodes making its inputs (ONNX wants a topological order)."""
    made = {o for n in nodes for o in n.output}
    done: set[str] = set()
    ordered, left = [], list(nodes)
    while left:
        ready = [n for n in left if all(i in done or i not in made for i in n.input)]
        if not ready:
            raise ModelError("stand-in graph has a cycle")
        for n in ready:
            ordered.append(n)
            done.update(n.output)
            left.remove(n)
    return ordered


def yunet_standin(entry: ModelEntry) -> onnx.ModelProto:
    """YuNet signature: cls/obj/bbox/kps for strides 8/16/32 (one anchor per cell), all 0."""
    x, outs, nodes, inits = _detector_parts(entry, 12, rows=[1, -1, 1], tile_prefix=[1, 1])
    for i, stride in enumerate((8, 16, 32)):
        tag = f"s{stride}"
        z = _zero_scores(x, stride, tag, nodes)
        nodes += [
            helper.make_node("Reshape", [z, "rows"], [outs[i]]),
            helper.make_node("Identity", [outs[i]], [outs[3 + i]]),
            helper.make_node("Tile", [outs[i], "tile4"], [outs[6 + i]]),
            helper.make_node("Tile", [outs[i], "tile10"], [outs[9 + i]]),
        ]
    return _model(entry, nodes, inits, "scores 0 everywhere: the demo pack detects faces with a Haar cascade")


def arcface_standin(entry: ModelEntry) -> onnx.ModelProto:
    """[N,3,112,112] -> [N,512]: fixed random projection of the 8x8-pooled, mean-removed face."""
    x, y = entry.inputs[0].name, entry.outputs[0].name
    rng = np.random.default_rng(SEED + 1)
    features = 3 * 14 * 14
    proj = (rng.standard_normal((features, 512)) / np.sqrt(features)).astype(np.float32)
    nodes = [
        helper.make_node("ReduceMean", [x], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Sub", [x, "mean"], ["centred"]),
        helper.make_node("AveragePool", ["centred"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "proj"], [y]),
    ]
    return _model(entry, nodes, [_const("proj", proj)], "random projection of the pooled face")


def _swap_masks(size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(tint alpha, stripe alpha), each [1,1,size,size]: inside a face ellipse only."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    ellipse = ((xx - size / 2) / (size * 0.36)) ** 2 + ((yy - size * 0.55) / (size * 0.44)) ** 2 <= 1.0
    stripes = ((xx + yy) // 6) % 4 == 0
    tint = np.where(ellipse, 0.35, 0.0).astype(np.float32)
    stripe = np.where(ellipse & stripes, 0.55, 0.0).astype(np.float32)
    return tint[None, None], stripe[None, None]


def inswapper_standin(entry: ModelEntry) -> onnx.ModelProto:
    """target [1,3,128,128] + source [1,512] -> tinted, striped target; emap is the last initializer."""
    names = {t.name for t in entry.inputs}
    if names != {"target", "source"}:
        raise ModelError(f"{entry.name}: expected inputs target and source, manifest has {sorted(names)}")
    y = entry.outputs[0].name
    rng = np.random.default_rng(SEED + 2)
    emap = (rng.standard_normal((512, 512)) / np.sqrt(512)).astype(np.float32)
    colour_proj = (rng.standard_normal((512, 3)) * 3.0).astype(np.float32)
    tint, stripe = _swap_masks()
    keep = (1.0 - tint - stripe).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["source", "emap"], ["latent2"]),
        helper.make_node("LpNormalization", ["latent2"], ["unit"], axis=1, p=2),
        helper.make_node("MatMul", ["unit", "colour_proj"], ["colour_logit"]),
        helper.make_node("Sigmoid", ["colour_logit"], ["colour"]),
        helper.make_node("Reshape", ["colour", "c_shape"], ["colour4"]),
        helper.make_node("Sub", ["one", "colour4"], ["anti4"]),
        helper.make_node("Mul", ["target", "keep"], ["kept"]),
        helper.make_node("Mul", ["colour4", "tint"], ["tinted"]),
        helper.make_node("Mul", ["anti4", "stripe"], ["striped"]),
        helper.make_node("Add", ["kept", "tinted"], ["sum1"]),
        helper.make_node("Add", ["sum1", "striped"], ["sum2"]),
        helper.make_node("Clip", ["sum2", "zero", "one"], [y]),
    ]
    inits = [
        _const("colour_proj", colour_proj), _const("c_shape", np.array([-1, 3, 1, 1], np.int64)),
        _const("one", np.ones((), np.float32)), _const("zero", np.zeros((), np.float32)),
        _const("keep", keep), _const("tint", tint), _const("stripe", stripe),
        _const("emap", emap),  # must stay LAST: callers read graph.initializer[-1]
    ]
    return _model(entry, nodes, inits, "tints the face by source identity and paints stripes over it")


def gfpgan_standin(entry: ModelEntry) -> onnx.ModelProto:
    """[1,3,512,512] in [-1,1] -> mild sharpen (unsharp mask 0.6) and contrast x1.08, clipped."""
    x, y = entry.inputs[0].name, entry.outputs[0].name
    box = np.full((3, 1, 3, 3), 1.0 / 9.0, np.float32)
    nodes = [
        helper.make_node("Conv", [x, "box"], ["blur"], group=3, pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Sub", [x, "blur"], ["detail"]),
        helper.make_node("Mul", ["detail", "amount"], ["boost"]),
        helper.make_node("Add", [x, "boost"], ["sharp"]),
        helper.make_node("Mul", ["sharp", "contrast"], ["contrasted"]),
        helper.make_node("Clip", ["contrasted", "lo", "hi"], [y]),
    ]
    inits = [_const("box", box), _const("amount", np.array(0.6, np.float32)),
             _const("contrast", np.array(1.08, np.float32)), _const("lo", np.array(-1.0, np.float32)),
             _const("hi", np.array(1.0, np.float32))]
    return _model(entry, nodes, inits, "mild sharpen and contrast")


STANDINS: dict[str, Callable[[ModelEntry], onnx.ModelProto]] = {
    "detector": scrfd_standin,
    "detector_yunet": yunet_standin,
    "recognizer": arcface_standin,
    "inswapper": inswapper_standin,
    "hyperswap": swapper_standin,
    "simswap": swapper_standin,
    "embedding_converter": converter_standin,
    "gfpgan": gfpgan_standin,
    "codeformer": restorer_standin,
    "gpen": restorer_standin,
    "occluder": occluder_standin,
    "face_parser": face_parser_standin,
}
"""Kind (farm.models.conventions.kind_of: a face model's family, else its role) -> generator.
Every model of the default manifest needs one."""


def standin_for(entry: ModelEntry) -> onnx.ModelProto:
    """The stand-in graph for a manifest entry; ModelError for a kind without one."""
    from farm.models.conventions import kind_of

    make = STANDINS.get(kind_of(entry))
    if make is None:
        raise ModelError(f"no demo stand-in for {entry.name} (role {entry.role!r}, kind {kind_of(entry)!r})")
    return make(entry)
