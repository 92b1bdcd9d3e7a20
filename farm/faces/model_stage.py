"""The shared shape of a stage that crops each face, runs a model on it and pastes it back.

Swap and enhance (and any later face model: a mask, a second restorer) differ only in
the crop (its size in pixels and the alignment template) and in what the model does to
the crop; the crop, the paste-back and the count of changed faces live here once.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from farm.faces.align import estimate_norm
from farm.faces.paste import crop_from_frame, paste_back
from farm.faces.types import Face
from farm.pipeline.frame import Frame
from farm.pipeline.stage import Stage


class FaceModelStage(Stage):
    """Runs `run_crop` on every face of frame.faces: aligned crop in, crop out, pasted back.

    Subclasses set `crop_size` (pixels, square) and `template` (farm.faces.align) and
    implement `run_crop`; one that aligns faces at other sizes overrides `face_size`.
    Faces whose crop lies wholly outside the frame are skipped. A face with a mask
    (Face.mask, set by the mask stage from the job's --mask options) is pasted with it.
    Each frame records how many faces a stage replaced (frame.faces_changed; the most
    of any stage, since swap and enhance change the same faces).
    """

    alters = True
    crop_size: ClassVar[int] = 128
    template: ClassVar[str] = "arcface_128"

    def run_crop(self, crop_bgr: np.ndarray) -> np.ndarray:
        """The processed BGR uint8 crop, of the same size, for an aligned BGR uint8 crop
        (face_size x face_size: crop_size unless the stage says otherwise)."""
        raise NotImplementedError

    def run_face(self, face: Face, crop_bgr: np.ndarray) -> np.ndarray:
        """run_crop for one face's crop (a stage whose model depends on the face overrides it)."""
        return self.run_crop(crop_bgr)

    def face_size(self, face: Face) -> int:
        """The side (pixels) of the aligned crop of this face: crop_size unless overridden."""
        return self.crop_size

    def process(self, frame: Frame) -> Frame:
        pasted = 0
        for face in frame.faces:
            size = self.face_size(face)
            m = estimate_norm(face.kps, self.template, size)
            got = crop_from_frame(frame, m, size)
            if got is None:
                continue
            crop, box = got
            paste_back(frame, self.run_face(face, crop), m, box, face.mask)
            pasted += 1
            if face.source is not None:
                frame.people_changed.add(face.source)
        frame.faces_changed = max(frame.faces_changed, pasted)
        return frame
