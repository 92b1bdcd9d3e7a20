"""The demo pack's face detector: OpenCV's Haar cascade, and a follower that makes it cheap.

A full scan of a frame's detection copy (SCAN_SIDE = 720 px: a face of 1/13 of a 1080p or
4K frame's height is 30 px there, above the cascade's 24-px window) costs 100-250 ms of CPU
on a 2-core machine when the skin gate (farm.faces.skin) cannot narrow it (warm,
skin-toned backgrounds). So within a chunk, FaceFollower scans the whole copy only on a schedule
(the chunk's first frame, every SCAN_EVERY frames, and a frame where a followed face
was not found again) and, on every frame, looks for
each face it already has only in a small region around its last box, at a scale where
the face is TRACK_FACE_PX tall and for sizes near its own: ~1 ms a face.

Determinism: a follower's state is reset by DetectStage.setup() (once per chunk runner,
before the chunk's first frame) and depends only on the frames it has seen since, in
presentation order, so a chunk's faces are the same whichever worker renders it and
however often. What this gives up: a face that enters the picture between two scans
is found at the next scan (at most SCAN_EVERY - 1 frames late).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from farm.faces import decode
from farm.faces.skin import skin_roi
from farm.faces.types import Face
from farm.pipeline import regions
from farm.pipeline.frame import Frame

SCAN_SIDE = 720
"""Least longer side, in pixels, of the copy a full scan sees: a face 80 px tall in 1080p
(160 px in 4K) is 30 px there. At 640 px (27 px, just above the cascade's 24-px window)
the cascade missed such a face in ~1 frame of 10, at 480 px (20 px) in every frame."""

SCAN_EVERY = 24
"""Frames between two full scans of a chunk (the first frame is always scanned)."""

TRACK_MARGIN = 0.5
"""A followed face is looked for in its last box grown by this share of its size on each side ..."""

TRACK_FACE_PX = (36, 48)
"""... in a copy of that region where the face is this tall (pixels; the cascade's window
is 24), trying the second size when the first finds nothing (the cascade answers a face at
some window sizes and not others: either one alone misses ~1-4 % of frames) ..."""

TRACK_SIZES = (0.8, 1.25)
"""... and for faces of these shares of its last size (a face does not grow a quarter between frames)."""

MAX_MISSED = 3
"""A followed face not found is still looked for (and not reported) for this many frames."""

SAME_FACE_IOU = 0.3
"""Two boxes overlapping more than this are the same face."""


def default_cascade_path() -> str:
    """OpenCV's bundled frontal-face Haar cascade."""
    return os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")


class HaarDetector:
    """OpenCV Haar cascade (demo pack): boxes only; landmarks estimated from the box.

    score = neighbours / (neighbours + min_neighbors), a heuristic in [0.5, 1).
    """

    wants_gray = True
    skin_gated = True
    """Video frames are scanned only around skin-toned pixels (farm.faces.skin); stills whole."""

    def __init__(self, cascade_path: str | None = None, scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_size_px: int = 24) -> None:
        path = cascade_path or default_cascade_path()
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise ValueError(f"cannot load Haar cascade {path}")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size_px = min_size_px

    def detect(self, image: np.ndarray, max_size_px: int | None = None, min_size_px: int | None = None) -> list[Face]:
        """Faces in image pixels, highest score first; sizes limited to min..max_size_px when given."""
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        low = max(self.min_size_px, min_size_px or 0)
        high = (max_size_px, max_size_px) if max_size_px else (0, 0)
        rects, counts = self.cascade.detectMultiScale2(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(low, low), maxSize=high)
        if len(rects) == 0:
            return []
        rects = np.asarray(rects, np.float32).reshape(-1, 4)
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
        counts = np.asarray(counts, np.float32).reshape(-1)
        scores = counts / (counts + self.min_neighbors)
        dets = (boxes, scores.astype(np.float32), decode.landmarks_from_boxes(boxes))
        return [Face(b, s, k) for b, s, k in zip(*decode.suppress(dets, 0.4))]


def scan_frame(detector: HaarDetector, frame: Frame, max_side: int) -> list[Face]:
    """A full scan: the cascade over the frame's max_side copy, only around skin-toned
    pixels when the frame has colour (farm.faces.skin); faces in full-res pixels."""
    image, scale = regions.small_gray(frame, max_side)
    if len(frame.planes) >= 3:
        roi = skin_roi(frame, image.shape[1], image.shape[0])
        if roi is None:
            return []
        x0, y0, x1, y1 = roi
        faces = [f.shifted(x0, y0) for f in detector.detect(image[y0:y1, x0:x1])]
    else:
        faces = detector.detect(image)
    return [f.scaled(1.0 / scale) for f in faces]


def refind(detector: HaarDetector, frame: Frame, last: Face) -> Face | None:
    """The face near `last` (full-res pixels) in this frame, looked for only around its box, or None."""
    x0, y0, x1, y1 = (float(v) for v in last.bbox)
    w, h = x1 - x0, y1 - y0
    box = regions.clip_box((x0 - TRACK_MARGIN * w, y0 - TRACK_MARGIN * h,
                            x1 + TRACK_MARGIN * w, y1 + TRACK_MARGIN * h), frame.width, frame.height)
    if box is None or h < 1:
        return None
    bx0, by0, bx1, by1 = box
    luma = Frame.from_arrays([frame.planes[0][by0:by1, bx0:bx1]], frame.pix_fmt, full_range=frame.full_range)
    for face_px in TRACK_FACE_PX:
        image, scale = regions.small_gray(luma, max(1, round(max(bx1 - bx0, by1 - by0) * min(1.0, face_px / h))))
        side = h * scale
        found = detector.detect(image, min_size_px=int(side * TRACK_SIZES[0]),
                                max_size_px=int(np.ceil(side * TRACK_SIZES[1])))
        if found:
            centre = np.array([x0 + x1 - 2 * bx0, y0 + y1 - 2 * by0]) / 2 * scale
            nearest = min(found, key=lambda f: float(np.sum(((f.bbox[:2] + f.bbox[2:]) / 2 - centre) ** 2)))
            return nearest.scaled(1.0 / scale).shifted(bx0, by0)
    return None


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class Track:
    """A face being followed: its last box, and the frames since it was last found."""

    face: Face
    missed: int = 0


class FaceFollower:
    """The faces of a chunk's frames, in presentation order: full scans on a schedule,
    the faces found so far followed in between (see the module docstring)."""

    def __init__(self, detector: HaarDetector, max_side: int, scan_every: int = SCAN_EVERY) -> None:
        self.detector = detector
        self.max_side = max(max_side, SCAN_SIDE)
        self.scan_every = scan_every
        self.reset()

    def reset(self) -> None:
        """Forget every face: the next frame is the first of a chunk."""
        self.tracks: list[Track] = []
        self.since_scan: int | None = None    # frames since the last full scan; None: none yet

    def next(self, frame: Frame) -> list[Face]:
        """The faces of the next frame (full-res pixels, highest score first)."""
        tracks = []
        for track in self.tracks:
            found = refind(self.detector, frame, track.face)
            tracks.append(Track(found) if found is not None else Track(track.face, track.missed + 1))
        lost = any(t.missed for t in tracks)          # moved too far, turned, left: look everywhere
        if lost or self.since_scan is None or self.since_scan + 1 >= self.scan_every:
            tracks = [Track(f) for f in scan_frame(self.detector, frame, self.max_side)] + tracks
            self.since_scan = 0
        else:
            self.since_scan += 1
        kept: list[Track] = []
        for track in sorted(tracks, key=lambda t: (t.missed, -t.face.score)):   # stable: scanned first
            if track.missed <= MAX_MISSED and all(iou(track.face.bbox, k.face.bbox) <= SAME_FACE_IOU for k in kept):
                kept.append(track)
        self.tracks = kept
        found = sorted((t.face for t in kept if t.missed == 0), key=lambda f: -f.score)
        return [Face(f.bbox.copy(), f.score, f.kps.copy()) for f in found]
