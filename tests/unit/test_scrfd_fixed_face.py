"""The SCRFD stand-in's fixed-face option (bench/bench_face_path.py): the farm's own SCRFD
decoding reads back exactly the face it was given, in a frame as the detect stage sees it;
without the option the stand-in is the demo pack's graph (it finds nothing)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from farm.faces.detect import DetectStage, ScrfdDetector
from farm.models.demo import default_manifest_path
from farm.models.manifest import load_manifest
from farm.models.standins import scrfd_standin
from farm.pipeline.frame import Frame

BOX = (300.0, 100.0, 336.0, 136.0)
POINTS = ((310.0, 112.0), (326.0, 112.0), (318.0, 120.0), (311.0, 128.0), (325.0, 128.0))

DEMO_OPS = ["AveragePool", "ReduceMean", "Mul", "Concat", "Transpose", "Reshape", "Tile", "Tile"] * 3
"""The demo pack's stand-in (no fixed face): per stride, zeros from the input, nothing added."""


def _entry():
    return load_manifest(default_manifest_path()).entry("detector")


def _session(model) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_fixed_face_decodes_to_the_given_face() -> None:
    faces = ScrfdDetector(_session(scrfd_standin(_entry(), fixed_face=(BOX, POINTS)))).detect(
        np.zeros((360, 640, 3), np.uint8))
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].bbox, BOX, atol=1e-4)
    np.testing.assert_allclose(faces[0].kps, POINTS, atol=1e-4)
    assert faces[0].score > 0.9


def test_fixed_face_in_full_resolution_frame() -> None:
    """Through the detect stage on a 1280x720 frame: shrunk to 640 px, so full-res = 2 x input."""
    stage = DetectStage(ScrfdDetector(_session(scrfd_standin(_entry(), fixed_face=(BOX, POINTS)))))
    planes = [np.full((720, 1280), 120, np.uint8), np.full((360, 640), 128, np.uint8),
              np.full((360, 640), 128, np.uint8)]
    frame = stage.process(Frame.from_arrays(planes, "yuv420p"))
    assert len(frame.faces) == 1
    np.testing.assert_allclose(frame.faces[0].bbox, np.array(BOX) * 2, atol=1e-3)
    np.testing.assert_allclose(frame.faces[0].kps, np.array(POINTS) * 2, atol=1e-3)


def test_without_fixed_face_unchanged() -> None:
    model = scrfd_standin(_entry())
    assert [n.op_type for n in model.graph.node] == DEMO_OPS
    assert [i.name for i in model.graph.initializer] == ["zero", "rows", "tile4", "tile10"]
    assert ScrfdDetector(_session(model)).detect(np.zeros((360, 640, 3), np.uint8)) == []
