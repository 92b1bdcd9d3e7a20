"""The source identity of a job: the averaged raw embedding of the face in each source image."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from farm.config import Settings
from farm.errors import InputError
from farm.faces.detect import DEFAULT_MAX_SIDE, Detector, build_detector, detect_image, detect_small
from farm.faces.image_header import ACCEPTED_FORMATS
from farm.faces.recognise import embed_frame_faces, embed_image_faces
from farm.faces.session_io import SessionLike
from farm.pipeline.frame import Frame


@dataclass(frozen=True)
class ImageLimits:
    """How big a source or reference image may be: checked from its file size and header
    before a pixel is decoded (a 1 MB PNG can hold a 20000x20000 image, 1.2 GB decoded)."""

    max_side: int = Settings.max_image_side      # pixels, width and height each
    max_bytes: int = Settings.max_image_bytes    # file size

    @classmethod
    def from_settings(cls, settings: Settings) -> "ImageLimits":
        return cls(max_side=settings.max_image_side, max_bytes=settings.max_image_bytes)


DEFAULT_IMAGE_LIMITS = ImageLimits()


def read_image(path: str | Path, limits: ImageLimits = DEFAULT_IMAGE_LIMITS, what: str = "source image") -> np.ndarray:
    """A still image as HxWx3 uint8 BGR; InputError naming the file if it cannot be read.

    The file must be a regular file of at most `limits.max_bytes` bytes whose header gives
    at most `limits.max_side` pixels a side; both are checked before decoding.
    """
    from farm.user_files import read_image_file

    p = Path(path)
    data = read_image_file(p, what, limits.max_bytes, limits.max_side)
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{what} {p} is not a readable image (damaged or cut short)",
                         hint=f"give a {ACCEPTED_FORMATS} photo of the face (saved again, or another one)")
    return image


def compute_identity(
    image_paths: Sequence[str | Path],
    detector: Detector | Any,
    recognizer: SessionLike | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
    limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
    what: str = "source image",
) -> np.ndarray:
    """float32 [D]: mean raw embedding of the largest face in each image.

    detector: a Detector with a recognizer session, or a model pack (recognizer None),
    whose 'detector' and 'recognizer' roles are used. Raises InputError naming the file
    that is unreadable, too big (`limits`, checked before decoding) or holds no face;
    `what` names the images in messages ("source image", "reference image").
    """
    if recognizer is None:
        pack = detector
        detector, recognizer = build_detector(pack), pack.session("recognizer")
    if not image_paths:
        raise InputError("no source image given")
    vectors = []
    for path in image_paths:
        image = read_image(path, limits, what)
        faces = detect_image(detector, image, max_side)
        if not faces:
            raise InputError(f"no face found in {what} {path}", hint="use a clear, frontal photo")
        largest = max(faces, key=lambda f: f.area)
        vectors.append(embed_image_faces(recognizer, image, [largest])[0])
    return np.mean(np.stack(vectors), axis=0).astype(np.float32)


def reference_from_frame(frame: Frame, detector: Detector, recognizer: SessionLike,
                         max_side: int = DEFAULT_MAX_SIDE) -> np.ndarray:
    """Raw embedding of the largest face in a video frame (for faces=reference with reference_frame)."""
    faces = detect_small(detector, frame, max_side)
    if not faces:
        raise InputError(f"no face found in reference frame {frame.index}")
    largest = max(faces, key=lambda f: f.area)
    embed_frame_faces(recognizer, frame, [largest])
    if largest.embedding is None:
        raise InputError(f"the face in reference frame {frame.index} lies outside the frame")
    return largest.embedding
