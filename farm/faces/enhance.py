"""Face restoration with GFPGAN 1.4: [1,3,512,512] (x/255-0.5)/0.5 RGB -> same in [-1, 1]."""

from __future__ import annotations

import numpy as np

from farm.faces.align import estimate_norm
from farm.faces.paste import crop_from_frame, paste_back
from farm.faces.session_io import SessionLike, run, to_blob
from farm.pipeline.frame import Frame
from farm.pipeline.stage import Stage

ENHANCE_SIZE = 512
ENHANCE_TEMPLATE = "ffhq_512"


class EnhanceStage(Stage):
    """Restores every face in frame.faces: blend * enhanced + (1 - blend) * original crop."""

    name = "enhance"

    def __init__(self, session: SessionLike, blend: float = 0.8) -> None:
        if not 0.0 <= blend <= 1.0:
            raise ValueError(f"enhance blend {blend} is outside 0..1")
        self.session = session
        self.blend = float(blend)
        self.input_name = session.get_inputs()[0].name

    def enhance_crop(self, crop_bgr: np.ndarray) -> np.ndarray:
        """The blended 512x512 BGR result for an aligned 512x512 BGR crop."""
        out = run(self.session, {self.input_name: to_blob([crop_bgr], 127.5, 127.5)})[0]
        rgb = np.asarray(out, np.float32).reshape(3, *crop_bgr.shape[:2]).transpose(1, 2, 0)
        enhanced = np.clip((rgb[..., ::-1] + 1.0) * 127.5, 0.0, 255.0)
        mixed = self.blend * enhanced + (1.0 - self.blend) * crop_bgr.astype(np.float32)
        return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)

    def process(self, frame: Frame) -> Frame:
        if self.blend == 0.0:
            return frame
        for face in frame.faces:
            m = estimate_norm(face.kps, ENHANCE_TEMPLATE, ENHANCE_SIZE)
            got = crop_from_frame(frame, m, ENHANCE_SIZE)
            if got is None:
                continue
            crop, box = got
            paste_back(frame, self.enhance_crop(crop), m, box)
        return frame
