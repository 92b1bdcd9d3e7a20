"""Shared test material: tiny ONNX stand-ins with the real models' input/output contracts,
and the astronaut photo as a YUV frame. Other test_faces_* modules import from here.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import skimage.data
from onnx import TensorProto, helper, numpy_helper

from farm.pipeline.frame import Frame

OPSET = 17


def _model(nodes, inputs, outputs, initializers) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "standin", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def swapper_model(invert: bool = False, seed: int = 0) -> tuple[onnx.ModelProto, np.ndarray]:
    """inswapper contract: target [1,3,128,128] + source [1,512] -> [1,3,128,128];
    output = target (or 1 - target); emap (512x512) is the last initializer."""
    emap = np.random.default_rng(seed).normal(0, 0.05, (512, 512)).astype(np.float32)
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    nodes = [helper.make_node("Sub", ["one", "target"], ["output"]) if invert
             else helper.make_node("Identity", ["target"], ["output"])]
    model = _model(
        nodes,
        [helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, 128, 128]),
         helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 128, 128])],
        [one, numpy_helper.from_array(emap, "emap")],
    )
    return model, emap


def enhancer_model(value: float = 0.0) -> onnx.ModelProto:
    """GFPGAN contract: input [1,3,512,512] -> same shape; output is the constant value (in [-1, 1])."""
    inits = [numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
             numpy_helper.from_array(np.array(value, np.float32), "value")]
    nodes = [helper.make_node("Mul", ["input", "zero"], ["z"]), helper.make_node("Add", ["z", "value"], ["output"])]
    return _model(nodes,
                  [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 512, 512])],
                  [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 512, 512])], inits)


def recognizer_model(seed: int = 0) -> tuple[onnx.ModelProto, np.ndarray]:
    """ArcFace contract: [N,3,112,112] -> [N,512] = channel means @ W (W: 3x512)."""
    w = np.random.default_rng(seed).normal(0, 1, (3, 512)).astype(np.float32)
    nodes = [helper.make_node("GlobalAveragePool", ["input.1"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("MatMul", ["flat", "W"], ["683"])]
    model = _model(nodes,
                   [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
                   [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["N", 512])],
                   [numpy_helper.from_array(w, "W")])
    return model, w


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


# the astronaut's landmarks (eyes, nose, mouth corners), by eye, in pixels of the 512x512 photo
KPS = np.array([[203, 102], [247, 102], [224, 125], [207, 143], [240, 143]], np.float32)


def astronaut_frame(ten_bit: bool = False) -> Frame:
    """skimage's astronaut (512x512) as a bt601 yuv420p frame, converted by OpenCV (10-bit: x4 + noise)."""
    bgr = np.ascontiguousarray(skimage.data.astronaut()[..., ::-1])
    h, w = bgr.shape[:2]
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    planes = [i420[:h].copy(), i420[h : h + h // 4].reshape(h // 2, w // 2).copy(),
              i420[h + h // 4 :].reshape(h // 2, w // 2).copy()]
    if ten_bit:
        rng = np.random.default_rng(0)
        planes = [p.astype(np.uint16) * 4 + rng.integers(0, 4, p.shape).astype(np.uint16) for p in planes]
        return Frame.from_arrays(planes, "yuv420p10le", colorspace="bt601")
    return Frame.from_arrays(planes, "yuv420p", colorspace="bt601")


def outside(box, shape, sx: int = 1, sy: int = 1) -> np.ndarray:
    """True for plane samples outside a luma box (chroma planes: subsampled by sx, sy)."""
    x0, y0, x1, y1 = box
    out = np.ones(shape, bool)
    out[y0 // sy : -(-y1 // sy), x0 // sx : -(-x1 // sx)] = False
    return out


def test_standins_follow_the_contracts():
    swap, _ = swapper_model()
    out = session(swap).run(None, {"target": np.full((1, 3, 128, 128), 0.25, np.float32),
                                   "source": np.zeros((1, 512), np.float32)})[0]
    assert out.shape == (1, 3, 128, 128) and np.allclose(out, 0.25)
    enh = session(enhancer_model(0.5)).run(None, {"input": np.zeros((1, 3, 512, 512), np.float32)})[0]
    assert np.allclose(enh, 0.5)
    rec, _ = recognizer_model()
    assert session(rec).run(None, {"input.1": np.zeros((3, 3, 112, 112), np.float32)})[0].shape == (3, 512)
