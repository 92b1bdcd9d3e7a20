"""Face detectors and the detect stage.

A detector finds faces in a small image (BGR, or gray if `wants_gray`) and returns
them in that image's pixels; DetectStage shrinks the frame first (regions.small_*),
then maps boxes and landmarks back to full-resolution pixels.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Protocol

import cv2
import numpy as np

from farm.errors import ModelError
from farm.faces import decode
from farm.faces.session_io import SessionLike, fixed_batch, input_size, run
from farm.faces.haar import FaceFollower, HaarDetector, scan_frame
from farm.faces.haar import default_cascade_path  # noqa: F401  (re-exported: the demo detector lives there)
from farm.faces.options import Option
from farm.faces.types import Face
from farm.pipeline import regions
from farm.pipeline.frame import Frame
from farm.pipeline.stage import Stage

DEFAULT_MAX_SIDE = 640
"""Longer side, in pixels, of the downscaled copy the detector sees."""

MAX_DETECT_BATCH = 8
"""Most images sent to a dynamic-batch detector in one run."""


class Detector(Protocol):
    wants_gray: bool

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in image pixels, highest score first."""
        ...


def batchable(session: SessionLike) -> bool:
    """True if a detector session takes several images per run: a dynamic batch
    dimension, and outputs that keep it (rank 3: [N, anchors, values])."""
    outputs = session.get_outputs()
    return fixed_batch(session) is None and bool(outputs) and all(len(o.shape) == 3 for o in outputs)


def detect_many(detector: Detector, images: list[np.ndarray]) -> list[list[Face]]:
    """Faces of each image; one model run per MAX_DETECT_BATCH images where the model allows."""
    batch = getattr(detector, "detect_batch", None)
    if batch is None or not getattr(detector, "batched", False) or len(images) < 2:
        return [detector.detect(img) for img in images]
    out: list[list[Face]] = []
    for i in range(0, len(images), MAX_DETECT_BATCH):
        out += batch(images[i : i + MAX_DETECT_BATCH])
    return out


def _run_batched(session: SessionLike, input_name: str, blob: np.ndarray) -> list[list[np.ndarray]]:
    """Run a batch; the outputs of image i, each [anchors, values]."""
    outputs = run(session, {input_name: blob})
    n = blob.shape[0]
    for o in outputs:
        if o.ndim != 3 or o.shape[0] != n:
            raise ValueError(f"detector output {o.shape} does not keep the batch of {n}")
    return [[o[i] for o in outputs] for i in range(n)]


def _faces(dets: decode.Detections, det_scale: float) -> list[Face]:
    boxes, scores, points = dets
    return [Face(b / det_scale, s, k / det_scale) for b, s, k in zip(boxes, scores, points)]


class ScrfdDetector:
    """SCRFD (det_10g, 2.5g): (x - 127.5) / 128 RGB, letterboxed into the model input."""

    wants_gray = False

    def __init__(self, session: SessionLike, score_threshold: float = 0.5, nms_threshold: float = 0.4,
                 default_size: tuple[int, int] = (640, 640)) -> None:
        self.session = session
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.size = input_size(session, default_size)
        self.input_name = session.get_inputs()[0].name
        self.batched = batchable(session)

    def detect(self, image: np.ndarray) -> list[Face]:
        blob, (det_scale,) = decode.letterbox_blob([image], self.size, 127.5, 128.0)
        outputs = run(self.session, {self.input_name: blob})
        return self._decode(outputs, det_scale)

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Face]]:
        """detect() of several images in one run (a dynamic-batch model only)."""
        blob, scales = decode.letterbox_blob(images, self.size, 127.5, 128.0)
        per_image = _run_batched(self.session, self.input_name, blob)
        return [self._decode(outs, scale) for outs, scale in zip(per_image, scales)]

    def _decode(self, outputs: list[np.ndarray], det_scale: float) -> list[Face]:
        scores, bboxes, kps = split_scrfd_outputs(outputs)
        dets = decode.decode_scrfd(scores, bboxes, kps, self.size, self.score_threshold)
        return _faces(decode.suppress(dets, self.nms_threshold), det_scale)


def split_scrfd_outputs(outputs: list[np.ndarray]) -> tuple[list, list, list | None]:
    """Group SCRFD outputs by width (1 score, 4 box, 10 landmarks), largest stride-8 first."""
    groups: dict[int, list[np.ndarray]] = {1: [], 4: [], 10: []}
    for out in outputs:
        arr = np.asarray(out)
        width = arr.shape[-1] if arr.ndim >= 2 else 1
        groups.setdefault(width, []).append(arr.reshape(-1, width))
    for key in groups:
        groups[key].sort(key=lambda a: -a.shape[0])
    return groups[1], groups[4], (groups[10] or None)


class YunetDetector:
    """YuNet (2023mar): raw 0..255 BGR (as OpenCV feeds it), letterboxed into the input."""

    wants_gray = False

    def __init__(self, session: SessionLike, score_threshold: float = 0.5, nms_threshold: float = 0.3,
                 default_size: tuple[int, int] = (640, 640)) -> None:
        self.session = session
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.size = input_size(session, default_size)
        self.input_name = session.get_inputs()[0].name
        self.output_names = [o.name for o in session.get_outputs()]
        self.batched = batchable(session)

    def detect(self, image: np.ndarray) -> list[Face]:
        blob, (det_scale,) = decode.letterbox_blob([image], self.size, 0.0, 1.0, rgb=False)
        outputs = run(self.session, {self.input_name: blob})
        return self._decode(outputs, det_scale)

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Face]]:
        """detect() of several images in one run (a dynamic-batch model only)."""
        blob, scales = decode.letterbox_blob(images, self.size, 0.0, 1.0, rgb=False)
        per_image = _run_batched(self.session, self.input_name, blob)
        return [self._decode([o[None] for o in outs], scale) for outs, scale in zip(per_image, scales)]

    def _decode(self, outputs: list[np.ndarray], det_scale: float) -> list[Face]:
        heads = split_yunet_outputs(self.output_names, outputs)
        dets = decode.decode_yunet(*heads, input_size=self.size, score_threshold=self.score_threshold)
        return _faces(decode.suppress(dets, self.nms_threshold), det_scale)


def split_yunet_outputs(names: list[str], outputs: list[np.ndarray]) -> tuple[list, list, list, list]:
    """(cls, obj, bbox, kps) per stride, by output name (cls_8 ...) or OpenCV's order."""
    heads: dict[str, list[tuple[int, np.ndarray]]] = {"cls": [], "obj": [], "bbox": [], "kps": []}
    for name, out in zip(names, outputs):
        match = re.match(r"(cls|obj|bbox|kps)_(\d+)$", name)
        if not match:
            return outputs[0:3], outputs[3:6], outputs[6:9], outputs[9:12]
        heads[match.group(1)].append((int(match.group(2)), out))
    by_stride = [[a for _, a in sorted(v, key=lambda t: t[0])] for v in heads.values()]
    return by_stride[0], by_stride[1], by_stride[2], by_stride[3]


def detect_small(detector: Detector, frame: Frame, max_side: int) -> list[Face]:
    """Run the detector on a downscaled copy of the frame; faces in full-res pixels.

    A detector with `skin_gated` (the demo Haar cascade) scans only the part of the copy
    around skin-toned pixels, and nothing in a frame without any (farm.faces.haar.scan_frame).
    """
    if getattr(detector, "skin_gated", False):
        return scan_frame(detector, frame, max_side)
    image, scale = (regions.small_gray if detector.wants_gray else regions.small_bgr)(frame, max_side)
    return [f.scaled(1.0 / scale) for f in detector.detect(image)]


def detect_image(detector: Detector, bgr: np.ndarray, max_side: int = DEFAULT_MAX_SIDE) -> list[Face]:
    """Run the detector on a BGR still image (e.g. a source photo); faces in its pixels."""
    h, w = bgr.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = bgr if scale == 1.0 else cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                interpolation=cv2.INTER_AREA)
    if detector.wants_gray:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return [f.scaled(1.0 / scale) for f in detector.detect(small)]


DETECTOR_CHOICES = ("auto", "scrfd", "yunet")
"""Values of the `detector` face option (declared by DetectStage)."""


def detector_role(pack: Any, choice: str = "auto") -> str | None:
    """The manifest role whose model detects faces for `choice` (None: the pack's Haar cascade).

    auto: Haar for a pack with detector = "haar" (the demo pack), else role 'detector'.
    scrfd: role 'detector'. yunet: role 'detector_yunet', or role 'detector' when that
    entry is a YuNet model. Raises ModelError naming the pack and what to do.
    """
    if choice not in DETECTOR_CHOICES:
        raise ModelError(f"unknown detector {choice!r}", hint="use one of " + ", ".join(DETECTOR_CHOICES))
    name = getattr(pack, "name", "?")
    if getattr(pack, "detector", None) == "haar":
        if choice == "auto":
            return None
        raise ModelError(
            f"model pack {name!r} finds faces with OpenCV's Haar cascade; detector={choice} needs a pack "
            "with ONNX detector models",
            hint="leave the detector option out (auto) with this pack, or use --models default "
            "or a directory pack that lists the detector",
        )
    if choice in ("auto", "scrfd"):
        return "detector"
    has = getattr(pack, "has", None)
    if has is None or has("detector_yunet"):
        return "detector_yunet"
    if _names_yunet(pack, "detector"):
        return "detector"
    raise ModelError(
        f"model pack {name!r} has no YuNet model (manifest role detector_yunet)",
        hint="use detector=scrfd (or auto), or add a [[model]] with role = \"detector_yunet\" to the "
        "pack's manifest.toml",
    )


def _names_yunet(pack: Any, role: str) -> bool:
    """True when the manifest entry of `role` names a YuNet model."""
    try:
        return "yunet" in str(getattr(pack.entry(role), "name", "")).lower()
    except Exception:  # noqa: BLE001 - a pack-like object without that entry
        return False


def detector_for_session(session: SessionLike, score_threshold: float = 0.5, yunet: bool | None = None) -> Detector:
    """A YunetDetector or ScrfdDetector for an ONNX detector session.

    yunet: force the decoder; None decides from the outputs (12: YuNet, else SCRFD).
    """
    if yunet is None:
        yunet = len(session.get_outputs()) == 12
    return YunetDetector(session, score_threshold) if yunet else ScrfdDetector(session, score_threshold)


def build_detector(pack: Any, score_threshold: float = 0.5, choice: str = "auto") -> Detector:
    """The detector of a model pack for the `detector` face option (see detector_role).

    Haar for the demo pack (auto); otherwise the ONNX model of the chosen role, decoded
    as YuNet when the choice, the entry's name or its 12 outputs say so, else as SCRFD.
    """
    role = detector_role(pack, choice)
    if role is None:
        cascade = getattr(pack, "haar_cascade_path", None)
        return HaarDetector(str(cascade()) if cascade else None)
    session = pack.session(role)
    yunet = choice == "yunet" or _names_yunet(pack, role) or len(session.get_outputs()) == 12
    if choice == "scrfd" and yunet:
        raise ModelError(f"model pack {getattr(pack, 'name', '?')!r}: its {role!r} model is YuNet, not SCRFD",
                         hint="use detector=yunet (or auto) with this pack")
    return YunetDetector(session, score_threshold) if yunet else ScrfdDetector(session, score_threshold)


class DetectStage(Stage):
    """Fills frame.faces with the faces scoring at least min_score (full-res pixels).

    The demo Haar detector scans whole frames only on a schedule and follows the faces it
    found in between (farm.faces.haar.FaceFollower); its state is per chunk: setup()
    forgets it. The ONNX detectors see every frame whole.
    """

    name = "detect"
    options = {
        "detect_max_side": Option("int", DEFAULT_MAX_SIDE, "longer side of the frame copy the detector sees",
                                  minimum=64, maximum=4096, unit="px"),
        "min_score": Option("float", 0.5, "least detector score of a face", minimum=0.0, maximum=1.0),
        "detector": Option("choice", "auto", "face detector: the pack's own (auto), SCRFD (role detector) "
                           "or YuNet (role detector_yunet)", choices=DETECTOR_CHOICES),
    }
    model_roles = ("detector",)
    batches = True

    def __init__(self, detector: Detector, max_side: int = DEFAULT_MAX_SIDE, min_score: float = 0.5) -> None:
        self.detector = detector
        self.max_side = max_side
        self.min_score = min_score
        self.follower = FaceFollower(detector, max_side) if isinstance(detector, HaarDetector) else None

    @classmethod
    def roles(cls, options: Mapping[str, Any], pack: Any) -> list[str]:
        """The detector role the `detector` option picks in this pack (none for the Haar cascade)."""
        role = detector_role(pack, options["detector"])
        return [] if role is None else [role]

    @classmethod
    def build(cls, inputs: Any) -> "DetectStage":
        return cls(inputs.detector(), inputs.options["detect_max_side"], inputs.options["min_score"])

    def setup(self) -> None:
        """Before a chunk's first frame: nothing followed from another chunk."""
        if self.follower is not None:
            self.follower.reset()

    def process(self, frame: Frame) -> Frame:
        if self.follower is not None:
            faces = self.follower.next(frame)
        else:
            faces = detect_small(self.detector, frame, self.max_side)
        frame.faces = [f for f in faces if f.score >= self.min_score]
        return frame

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        """process() of several frames, the detector run once per batch where it can."""
        if not getattr(self.detector, "batched", False):
            return [self.process(f) for f in frames]
        small = regions.small_gray if self.detector.wants_gray else regions.small_bgr
        shrunk = [small(f, self.max_side) for f in frames]
        for frame, (_, scale), faces in zip(frames, shrunk, detect_many(self.detector, [i for i, _ in shrunk])):
            frame.faces = [g for g in (f.scaled(1.0 / scale) for f in faces) if g.score >= self.min_score]
        return frames
