"""A face stage that is not part of farm: it inverts the colours of each face with a model
of role "tinter". It is the whole of what a new stage takes, besides one entry in
farm.faces.stages.FACE_STAGES (tests/integration/test_face_stages.py adds it)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from farm.faces.model_stage import FaceModelStage
from farm.faces.options import Option
from farm.faces.session_io import from_blob, run, to_blob


class TintStage(FaceModelStage):
    """Runs the tinter on each 128x128 arcface-aligned face: [1,3,128,128] RGB 0..1 in and out."""

    name = "tint"
    options = {"tint": Option("bool", False, "invert the colours of each face (a test stage)")}
    model_roles = ("tinter",)
    crop_size = 128
    template = "arcface_128"

    def __init__(self, session: Any) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name

    @classmethod
    def wanted(cls, options: Mapping[str, Any]) -> bool:
        return bool(options["tint"])

    @classmethod
    def build(cls, inputs: Any) -> "TintStage":
        return cls(inputs.session("tinter"))

    def run_crop(self, crop_bgr: np.ndarray) -> np.ndarray:
        out = run(self.session, {self.input_name: to_blob([crop_bgr], 0.0, 255.0)})[0]
        return from_blob(out, 0.0, 1.0)
