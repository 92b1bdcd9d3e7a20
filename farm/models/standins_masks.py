"""Demo stand-ins for the mask roles (issue 14.3): an occluder and a face parser.

Each has the inputs and outputs of its manifest entry (XSeg: NHWC [batch,256,256,3] BGR
x/255 -> [batch,256,256,1]; BiSeNet: NCHW [batch,3,512,512] ImageNet-normalised RGB ->
three [batch,19,512,512] score maps) and a deterministic, checkable behaviour:

- occluder: a pixel is "covered" (0) where its colour is within OCCLUDER_TOLERANCE of
  OCCLUDER_KEY_BGR in every channel (a flat blue glove, say), else visible face (1).
  The key is not symmetric in B and R, so a crop fed as RGB, or in 0..255, finds nothing.
- face parser: labels by position in the aligned crop (the swapper's template,
  arcface_128): PARSER_LAYOUT's boxes and ellipse, in normalised crop coordinates,
  painted in order on a 128 x 128 map and scaled to the input's size; it ignores the
  pixels (they are read, times 0, so the batch follows the input).

farm.models.standins lists them in STANDINS; the builders import its graph helpers when
called, so that module can import this one at its top.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from farm.errors import ModelError
from farm.faces.masks import FACE_REGIONS, PARSER_CLASSES
from farm.models.manifest import ModelEntry

OCCLUDER_KEY_BGR = (230, 60, 20)
"""The colour (B, G, R, 0..255) the occluder stand-in treats as something covering the face."""
OCCLUDER_TOLERANCE = 40
"""Per channel, in 0..255: how far a pixel may be from the key and still count as covered."""

LAYOUT_SIDE = 128
"""Side of the stand-in parser's label map before it is scaled to the input (cells)."""

PARSER_LAYOUT: list[tuple[str, str, tuple[float, float, float, float]]] = [
    ("skin", "ellipse", (0.50, 0.50, 0.36, 0.50)),          # centre u, v; radii
    ("left-eyebrow", "box", (0.27, 0.30, 0.45, 0.35)),      # u0, v0, u1, v1
    ("right-eyebrow", "box", (0.55, 0.30, 0.73, 0.35)),
    ("left-eye", "box", (0.30, 0.38, 0.43, 0.43)),
    ("right-eye", "box", (0.57, 0.38, 0.70, 0.43)),
    ("nose", "box", (0.44, 0.44, 0.56, 0.60)),
    ("upper-lip", "box", (0.38, 0.66, 0.62, 0.70)),
    ("mouth", "box", (0.38, 0.70, 0.62, 0.745)),
    ("lower-lip", "box", (0.38, 0.745, 0.62, 0.79)),
]
"""(region, shape, coordinates) painted in this order over background (class 0), in the
arcface_128 crop's normalised coordinates (u right, v down, 0..1): the template's eyes
are at v 0.40, its nose at 0.56, its mouth corners at v 0.72, u 0.39 and 0.62."""


def parser_labels(side: int = LAYOUT_SIDE) -> np.ndarray:
    """side x side uint8 class map of PARSER_LAYOUT, sampled at cell centres."""
    vv, uu = (np.mgrid[0:side, 0:side].astype(np.float64) + 0.5) / side
    labels = np.zeros((side, side), np.uint8)
    for name, shape, (a, b, c, d) in PARSER_LAYOUT:
        if shape == "ellipse":
            inside = ((uu - a) / c) ** 2 + ((vv - b) / d) ** 2 <= 1.0
        else:
            inside = (uu >= a) & (uu < c) & (vv >= b) & (vv < d)
        labels[inside] = FACE_REGIONS[name]
    return labels


def occluder_standin(entry: ModelEntry) -> onnx.ModelProto:
    """XSeg signature: NHWC x/255 BGR in -> [batch,H,W,1], 0 where the pixel is the key colour."""
    from farm.models.standins import _const, _model

    if len(entry.inputs) != 1 or len(entry.outputs) != 1 or entry.inputs[0].shape[-1] != 3:
        raise ModelError(f"{entry.name}: expected one NHWC input and one output for an occluder")
    x, y = entry.inputs[0].name, entry.outputs[0].name
    key = (np.array(OCCLUDER_KEY_BGR, np.float32) / 255.0).reshape(1, 1, 1, 3)
    nodes = [
        helper.make_node("Sub", [x, "key"], ["diff"]),
        helper.make_node("Abs", ["diff"], ["dist"]),
        helper.make_node("ReduceMax", ["dist"], ["far"], axes=[3], keepdims=1),
        helper.make_node("Less", ["far", "tolerance"], ["covered_b"]),
        helper.make_node("Cast", ["covered_b"], ["covered"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["one", "covered"], [y]),
    ]
    inits = [_const("key", key), _const("tolerance", np.array(OCCLUDER_TOLERANCE / 255.0, np.float32)),
             _const("one", np.ones((), np.float32))]
    return _model(entry, nodes, inits, f"covered (0) where the colour is BGR {OCCLUDER_KEY_BGR} "
                                       f"+-{OCCLUDER_TOLERANCE}, else visible face (1)")


def face_parser_standin(entry: ModelEntry) -> onnx.ModelProto:
    """BiSeNet signature: [batch,3,S,S] -> one-hot scores of parser_labels() scaled to S, on
    every output (the main one and the two auxiliary heads)."""
    from farm.models.standins import _const, _model

    shape = entry.inputs[0].shape
    side = shape[2] if len(shape) == 4 and isinstance(shape[2], int) else 512
    if len(entry.inputs) != 1 or not entry.outputs or side % LAYOUT_SIDE:
        raise ModelError(f"{entry.name}: expected one [batch,3,S,S] input (S a multiple of {LAYOUT_SIDE}) "
                         "and score outputs for a face parser")
    x = entry.inputs[0].name
    scale = float(side // LAYOUT_SIDE)
    classes = np.arange(PARSER_CLASSES, dtype=np.float32).reshape(1, PARSER_CLASSES, 1, 1)
    nodes = [
        helper.make_node("Equal", ["labels", "classes"], ["hot_b"]),
        helper.make_node("Cast", ["hot_b"], ["hot"], to=TensorProto.FLOAT),
        helper.make_node("Resize", ["hot", "", "scales"], ["hot_full"], mode="nearest"),
        helper.make_node("ReduceMean", [x], ["level"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Mul", ["level", "zero"], ["nothing"]),
        helper.make_node("Add", ["hot_full", "nothing"], ["scores"]),
    ]
    nodes += [helper.make_node("Identity", ["scores"], [out.name]) for out in entry.outputs]
    inits = [_const("labels", parser_labels().astype(np.float32)[None, None]), _const("classes", classes),
             _const("scales", np.array([1.0, 1.0, scale, scale], np.float32)),
             _const("zero", np.zeros((), np.float32))]
    return _model(entry, nodes, inits, "labels face regions by their position in the aligned crop")
