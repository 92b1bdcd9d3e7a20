"""A clip with two different people on screen for known times, for `farm faces` tests.

Person A: skimage's astronaut, on the left, on screen the whole clip. Person B: a face of
skimage's LFW subset (tinted to a skin tone; tests.face_scenes.lfw_head), on the right,
on screen from `b_from_s` to `b_until_s` only. Both drift a little (a person at a desk)
over a cool photo background (skimage's rocket). Encoded with PyAV (libx264, yuv420p,
one keyframe a second). Sizes in pixels, times in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests import face_scenes as scenes

LFW_INDEX = 3
"""The LFW face used as person B (one the demo pack's Haar cascade finds)."""


@dataclass(frozen=True)
class TwoPeople:
    path: Path
    fps: int
    seconds: float
    b_from_s: float
    b_until_s: float
    width: int
    height: int


def frame_bgr(k: int, fps: int, width: int, height: int, b_from_s: float, b_until_s: float,
              bg: np.ndarray) -> np.ndarray:
    """Frame k of the clip (BGR)."""
    face_h = 0.3 * height
    cx, cy, g = scenes.drift(k, width, height, (0.28, 0.5))
    image, _ = scenes.paste(bg, scenes.astronaut_head(face_h * g), cx, cy)
    if b_from_s <= k / fps < b_until_s:
        cx, cy, g = scenes.drift(k + 11, width, height, (0.74, 0.5))
        image, _ = scenes.paste(image, scenes.lfw_head(LFW_INDEX, face_h * g), cx, cy)
    return image


def make_two_people_clip(path: Path, *, width: int = 640, height: int = 360, fps: int = 10, seconds: float = 6.0,
                         b_from_s: float = 2.0, b_until_s: float = 5.0) -> TwoPeople:
    """Write the clip at `path` (.mp4) and say what is in it."""
    bg = scenes.background("rocket", width, height)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "16", "g": str(fps), "keyint_min": str(fps), "sc_threshold": "0", "bf": "2"}
        for k in range(round(seconds * fps)):
            rgb = np.ascontiguousarray(frame_bgr(k, fps, width, height, b_from_s, b_until_s, bg)[..., ::-1])
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return TwoPeople(Path(path), fps, seconds, b_from_s, b_until_s, width, height)
