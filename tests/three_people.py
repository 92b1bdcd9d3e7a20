"""A clip with three different people on screen the whole time, for --map tests.

Left: skimage's astronaut; middle and right: two faces of skimage's LFW subset
(tests.face_scenes.lfw_head), chosen so that the demo pack's random-projection recogniser
tells all three apart (pairwise cosine similarity under 0.5, each person over 0.8 with
their own reference picture). Each drifts a little over skimage's rocket. Encoded with
PyAV (libx264, yuv420p, one keyframe a second). Sizes in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from tests import face_scenes as scenes

LFW_MIDDLE, LFW_RIGHT = 9, 6
"""The LFW faces of the middle and right person."""

CENTRES = (0.18, 0.5, 0.82)
"""Where each person starts, as a share of the frame's width (all at half its height)."""

FACE_SHARE = 0.28
"""Each face's height as a share of the frame's height."""


@dataclass(frozen=True)
class ThreePeople:
    path: Path
    fps: int
    frames: int
    width: int
    height: int


def head(person: int, face_h: float) -> scenes.Head:
    """Person 0 (astronaut), 1 or 2 (LFW faces), face_h pixels tall."""
    if person == 0:
        return scenes.astronaut_head(face_h)
    return scenes.lfw_head(LFW_MIDDLE if person == 1 else LFW_RIGHT, face_h)


def frame_bgr(k: int, width: int, height: int, bg: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Frame k (BGR) and each person's face box in it."""
    image, boxes = bg, []
    for person, start in enumerate(CENTRES):
        cx, cy, g = scenes.drift(k + 5 * person, width, height, (start, 0.5))
        image, box = scenes.paste(image, head(person, FACE_SHARE * height * g), cx, cy)
        boxes.append(box)
    return image, boxes


def face_boxes(k: int, width: int, height: int) -> list[np.ndarray]:
    """Each person's face box (x0, y0, x1, y1) in frame k."""
    return frame_bgr(k, width, height, np.zeros((height, width, 3), np.uint8))[1]


def make_three_people_clip(path: Path, *, width: int = 720, height: int = 360, fps: int = 10,
                           frames: int = 20) -> ThreePeople:
    """Write the clip at `path` (.mp4) and say what is in it."""
    bg = scenes.background("rocket", width, height)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "16", "g": str(fps), "keyint_min": str(fps), "sc_threshold": "0", "bf": "2"}
        for k in range(frames):
            rgb = np.ascontiguousarray(frame_bgr(k, width, height, bg)[0][..., ::-1])
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return ThreePeople(Path(path), fps, frames, width, height)


def write_person(path: Path, person: int, *, width: int = 720, height: int = 360, margin: float = 0.4) -> Path:
    """A crop of frame 0 around one person's face (the box plus `margin` of its size each
    side), as PNG: what `farm faces` writes as person-N.png."""
    image, boxes = frame_bgr(0, width, height, scenes.background("rocket", width, height))
    x0, y0, x1, y1 = boxes[person]
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    crop = image[max(0, int(y0 - dy)):int(y1 + dy), max(0, int(x0 - dx)):int(x1 + dx)]
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), crop):
        raise RuntimeError(f"could not write {path}")
    return path


def write_stranger(path: Path, lfw_index: int = 0, *, size: int = 256) -> Path:
    """A picture of someone not in the clip (an LFW face on grey), as PNG: a source image."""
    picture = np.full((size, size, 3), 128, np.uint8)
    picture, _ = scenes.paste(picture, scenes.lfw_head(lfw_index, 0.45 * size), size / 2, size / 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), picture):
        raise RuntimeError(f"could not write {path}")
    return path
