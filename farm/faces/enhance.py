"""Face restoration with GFPGAN 1.4: [1,3,512,512] (x/255-0.5)/0.5 RGB -> same in [-1, 1]."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from farm.faces.model_stage import FaceModelStage
from farm.faces.options import Option
from farm.faces.session_io import SessionLike, run, to_blob
from farm.pipeline.frame import Frame

ENHANCE_SIZE = 512
ENHANCE_TEMPLATE = "ffhq_512"


class EnhanceStage(FaceModelStage):
    """Restores every face in frame.faces: blend * enhanced + (1 - blend) * original crop."""

    name = "enhance"
    options = {
        "enhance": Option("bool", True, "restore swapped faces with GFPGAN"),
        "enhance_blend": Option("float", 0.8, "share of the restored face in the result",
                                minimum=0.0, maximum=1.0),
    }
    model_roles = ("enhancer",)
    crop_size = ENHANCE_SIZE
    template = ENHANCE_TEMPLATE

    def __init__(self, session: SessionLike, blend: float = 0.8) -> None:
        if not 0.0 <= blend <= 1.0:
            raise ValueError(f"enhance blend {blend} is outside 0..1")
        self.session = session
        self.blend = float(blend)
        self.input_name = session.get_inputs()[0].name

    @classmethod
    def wanted(cls, options: Mapping[str, Any]) -> bool:
        """Only when asked for and with a share above 0 (a blend of 0 would change nothing)."""
        return bool(options.get("enhance")) and float(options.get("enhance_blend") or 0) > 0

    @classmethod
    def build(cls, inputs: Any) -> "EnhanceStage":
        return cls(inputs.session("enhancer"), inputs.options["enhance_blend"])

    def run_crop(self, crop_bgr: np.ndarray) -> np.ndarray:
        """The blended 512x512 BGR result for an aligned 512x512 BGR crop."""
        out = run(self.session, {self.input_name: to_blob([crop_bgr], 127.5, 127.5)})[0]
        rgb = np.asarray(out, np.float32).reshape(3, *crop_bgr.shape[:2]).transpose(1, 2, 0)
        enhanced = np.clip((rgb[..., ::-1] + 1.0) * 127.5, 0.0, 255.0)
        mixed = self.blend * enhanced + (1.0 - self.blend) * crop_bgr.astype(np.float32)
        return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)

    def process(self, frame: Frame) -> Frame:
        if self.blend == 0.0:
            return frame
        return super().process(frame)
