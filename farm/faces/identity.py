"""The source identity of a job: the averaged raw embedding of the face in each source image."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from farm.errors import InputError
from farm.faces.detect import DEFAULT_MAX_SIDE, Detector, build_detector, detect_image, detect_small
from farm.faces.recognise import embed_frame_faces, embed_image_faces
from farm.faces.session_io import SessionLike
from farm.pipeline.frame import Frame


def read_image(path: str | Path) -> np.ndarray:
    """A still image as HxWx3 uint8 BGR; InputError naming the file if it cannot be read."""
    p = Path(path)
    try:
        data = np.fromfile(str(p), dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read source image {p}: {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"source image {p} is not a readable image", hint="use a JPEG or PNG photo")
    return image


def compute_identity(
    image_paths: Sequence[str | Path],
    detector: Detector | Any,
    recognizer: SessionLike | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
) -> np.ndarray:
    """float32 [D]: mean raw embedding of the largest face in each image.

    detector: a Detector with a recognizer session, or a model pack (recognizer None),
    whose 'detector' and 'recognizer' roles are used. Raises InputError naming the file
    that is unreadable or holds no face.
    """
    if recognizer is None:
        pack = detector
        detector, recognizer = build_detector(pack), pack.session("recognizer")
    if not image_paths:
        raise InputError("no source image given")
    vectors = []
    for path in image_paths:
        image = read_image(path)
        faces = detect_image(detector, image, max_side)
        if not faces:
            raise InputError(f"no face found in source image {path}", hint="use a clear, frontal photo")
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
