"""Faces that hold still: the track stage follows each face from frame to frame, smooths its
landmarks and box over time and fills the frames where the detector missed it.

Where it runs: after select (only the faces that will be swapped are followed; in
reference mode their embeddings are there to tell people apart) and before mask, so the
mask, swap and enhance stages all see the steadied landmarks.

Following (FaceTracker, per chunk): each face of a frame is matched to a track alive in
the frames before by its box (overlap at least MATCH_IOU, or its centre within
MATCH_CENTRE of the track's box size; the sizes within MATCH_SIZE of each other) and, where
both carry an embedding, by identity (cosine similarity at least MATCH_SIMILARITY); the
best pairs are taken first, each track and each face once. A face nobody matches starts a
new track, so smoothing never mixes two people: each track has its own filter.

Smoothing: a One Euro filter (farm.faces.tracking_filter) of the 5 landmarks and the box of
each track, in pixels, timed by the frames' timestamps (pts x time base), with the
options smooth_min_cutoff (Hz) and smooth_beta.

Gap filling: a track not found in up to fill_gaps frames and found again after them is
interpolated there (linearly in time, between its smoothed faces on either side), as
FaceFusion's tracker does. This needs look-ahead, so the stage holds its newest fill_gaps
frames (Stage.holds): process_batch hands back the frames that can no longer change and
flush() the rest at the end of the chunk, in order, each once.

Seams: the stage warms (Stage.warms): a chunk of a job that runs it also decodes
warm_frames() frames before its first one (WARM_SECONDS of video) and tail_frames() =
fill_gaps after its last (farm.media.plan), which go through detect, select and this stage
and are then dropped (never encoded). So the filters start a chunk in (nearly) the state the
previous chunk left them, and a gap at a chunk's end is filled from the frames after it,
as inside a chunk. Memory: the filter forgets its start as exp(-2 pi fc t): after 0.5 s,
~6 % at the ~0.9 Hz cutoff a jittering still face gets with the defaults (~0.1 px of a
+-2 px start), so a seam's figures match those inside a chunk
(tests/integration/test_face_tracking.py).

One frame alone (`farm preview`) passes unchanged: its faces start their tracks. The
frame-by-frame path (process(), a chain run without process_batch) does not track at all.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Mapping

import numpy as np

from farm.errors import InputError
from farm.faces.haar import iou as box_iou
from farm.faces.options import Option
from farm.faces.recognise import cosine_similarity
from farm.faces.tracking_filter import OneEuroFilter
from farm.faces.types import Face
from farm.pipeline.frame import Frame
from farm.pipeline.stage import Stage

MATCH_IOU = 0.3
"""A face whose box overlaps a track's last box at least this much (IoU) is that track's ..."""

MATCH_CENTRE = 0.5
"""... or one whose box centre is within this share of the track box's mean side ..."""

MATCH_SIZE = 1.5
"""... when neither box is more than this many times the other's size (mean side) ..."""

MATCH_SIMILARITY = 0.4
"""... and, where both have an embedding, their cosine similarity is at least this."""

WARM_SECONDS = 0.5
"""Video a chunk decodes before its first frame to warm the filters (see the module docstring)."""

MAX_FILL_GAPS = 10
"""Most frames a gap may be filled over (the stage holds that many decoded frames)."""

FALLBACK_FPS = 30.0
"""Frame rate assumed for frames without a timestamp (frames made from arrays)."""

DEFAULT_MIN_CUTOFF_HZ = 0.3
DEFAULT_BETA = 0.2


def frame_time(frame: Frame, seq: int) -> float:
    """Seconds of a frame: its pts times its time base, else seq / FALLBACK_FPS."""
    av_frame = frame.av_frame
    pts = getattr(av_frame, "pts", None)
    time_base = getattr(av_frame, "time_base", None)
    if pts is None or not time_base:
        return seq / FALLBACK_FPS
    return float(pts * Fraction(time_base))


def _centre_side(box: np.ndarray) -> tuple[np.ndarray, float]:
    return (box[:2] + box[2:]) / 2, float(max(((box[2] - box[0]) + (box[3] - box[1])) / 2, 1e-3))


def match_score(last: Face, face: Face) -> float | None:
    """How well `face` continues a track whose last face is `last` (higher is better), or
    None when it cannot be the same face (see the MATCH_* constants)."""
    (ca, sa), (cb, sb) = _centre_side(last.bbox), _centre_side(face.bbox)
    if max(sa, sb) / min(sa, sb) > MATCH_SIZE:
        return None
    iou = box_iou(last.bbox, face.bbox)
    distance = float(np.linalg.norm(ca - cb)) / sa
    if iou < MATCH_IOU and distance > MATCH_CENTRE:
        return None
    if last.embedding is not None and face.embedding is not None:
        if cosine_similarity(last.embedding, face.embedding) < MATCH_SIMILARITY:
            return None
    return iou - distance


def match(lasts: list[Face], faces: list[Face]) -> list[tuple[int, int]]:
    """(track, face) index pairs, best first, each track and each face at most once."""
    pairs = sorted(((score, t, f) for t, last in enumerate(lasts) for f, face in enumerate(faces)
                    if (score := match_score(last, face)) is not None), key=lambda p: -p[0])
    used_t: set[int] = set()
    used_f: set[int] = set()
    out = []
    for _, t, f in pairs:
        if t not in used_t and f not in used_f:
            used_t.add(t)
            used_f.add(f)
            out.append((t, f))
    return out


def interpolate(a: Face, b: Face, w: float) -> Face:
    """The face a share w (0..1) of the way from a to b: box and landmarks linear, the
    lower score, the earlier embedding."""
    return Face(a.bbox + w * (b.bbox - a.bbox), min(a.score, b.score), a.kps + w * (b.kps - a.kps),
                a.embedding if a.embedding is not None else b.embedding, source=a.source)


@dataclass
class _Track:
    filter: OneEuroFilter | None
    last: Face          # its (smoothed) face in frame last_seq
    last_seq: int
    last_t: float


class FaceTracker:
    """The tracks of one chunk's frames, fed in presentation order (see the module docstring).

    push(frame) -> the frames that can no longer change (its faces smoothed, gaps filled),
    oldest first; flush() -> the frames still held. smooth=False follows and fills only.
    """

    def __init__(self, smooth: bool = True, min_cutoff: float = DEFAULT_MIN_CUTOFF_HZ,
                 beta: float = DEFAULT_BETA, fill_gaps: int = 2) -> None:
        self.smooth, self.min_cutoff, self.beta = smooth, float(min_cutoff), float(beta)
        self.fill_gaps = int(fill_gaps)
        self.reset()

    def reset(self) -> None:
        """Forget every face: the next frame starts a chunk."""
        self.tracks: list[_Track] = []
        self.held: deque[tuple[int, float, Frame]] = deque()
        self.seq = 0

    def push(self, frame: Frame) -> list[Frame]:
        seq, t = self.seq, frame_time(frame, self.seq)
        self.seq += 1
        self.tracks = [tr for tr in self.tracks if seq - tr.last_seq - 1 <= self.fill_gaps]
        faces = list(frame.faces)
        pairs = match([tr.last for tr in self.tracks], faces)
        out: list[Face | None] = [None] * len(faces)
        for t_index, f_index in pairs:
            track = self.tracks[t_index]
            out[f_index] = smoothed = self._smoothed(track.filter, faces[f_index], t)
            if seq - track.last_seq > 1:
                self._fill(track, smoothed, seq, t)
            track.last, track.last_seq, track.last_t = smoothed, seq, t
        for f_index, face in enumerate(faces):
            if out[f_index] is None:
                track = _Track(self._new_filter(), face, seq, t)
                out[f_index] = self._smoothed(track.filter, face, t)
                self.tracks.append(track)
        frame.faces = [face for face in out if face is not None]
        self.held.append((seq, t, frame))
        released = []
        while self.held and self.held[0][0] <= seq - self.fill_gaps:
            released.append(self.held.popleft()[2])
        return released

    def flush(self) -> list[Frame]:
        """The frames still held, oldest first (the end of a chunk)."""
        frames = [frame for _, _, frame in self.held]
        self.held.clear()
        return frames

    def _new_filter(self) -> OneEuroFilter | None:
        return OneEuroFilter(self.min_cutoff, self.beta) if self.smooth else None

    @staticmethod
    def _smoothed(flt: OneEuroFilter | None, face: Face, t: float) -> Face:
        if flt is None:
            return face
        values = flt(np.concatenate([face.kps.reshape(-1), face.bbox]), t)
        return Face(values[10:], face.score, values[:10], face.embedding, source=face.source)

    def _fill(self, track: _Track, found: Face, seq: int, t: float) -> None:
        """Put the track's face, interpolated, into the held frames it was missed in."""
        for held_seq, held_t, frame in self.held:
            if track.last_seq < held_seq < seq:
                span = t - track.last_t
                w = (held_t - track.last_t) / span if span > 0 else (held_seq - track.last_seq) / (seq - track.last_seq)
                frame.faces = [*frame.faces, interpolate(track.last, found, min(max(w, 0.0), 1.0))]


class TrackStage(Stage):
    """Follows, smooths and gap-fills the selected faces across a chunk's frames (module docstring).

    Off unless `smooth` is given: it changes which pixels a job writes, and the frames it
    holds and warms with cost memory and detection time."""

    name = "track"
    options = {
        "smooth": Option("bool", False, "follow each face across frames: smooth its landmarks over time "
                         "(One Euro filter) and fill the frames where it was missed"),
        "smooth_min_cutoff": Option("float", DEFAULT_MIN_CUTOFF_HZ, "smoothing of a still face: the filter's "
                                    "cutoff (lower: steadier, slower)", minimum=0.01, maximum=30.0, unit="Hz"),
        "smooth_beta": Option("float", DEFAULT_BETA, "how fast smoothing lets a moving face follow (higher: "
                              "less lag, more jitter when moving)", minimum=0.0, maximum=10.0, unit="Hz per px/s"),
        "fill_gaps": Option("int", 2, "with smooth: a face missed for up to this many frames between two "
                            "detections is interpolated there (0: none)", minimum=0, maximum=MAX_FILL_GAPS,
                            unit="frames"),
    }
    batches = True
    holds = True
    warms = True

    def __init__(self, min_cutoff: float = DEFAULT_MIN_CUTOFF_HZ, beta: float = DEFAULT_BETA,
                 fill_gaps: int = 2, smooth: bool = True) -> None:
        self.tracker = FaceTracker(smooth, min_cutoff, beta, fill_gaps)

    @classmethod
    def wanted(cls, options: Mapping[str, Any]) -> bool:
        return bool(options["smooth"])

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """The smoothing and gap options need smooth (a value other than the default without it is refused)."""
        if options["smooth"]:
            return
        for name in ("smooth_min_cutoff", "smooth_beta", "fill_gaps"):
            if options[name] != cls.options[name].default:
                raise InputError(f"option {name} needs smooth", hint="add --smooth (spec/API: smooth = true)")

    @classmethod
    def warm_frames(cls, options: Mapping[str, Any], fps: float) -> int:
        """Frames before a chunk's first one to decode and feed: WARM_SECONDS of video, at
        least fill_gaps + 1 (an unknown rate counts as FALLBACK_FPS)."""
        rate = fps if fps and fps > 0 and math.isfinite(fps) else FALLBACK_FPS
        return max(int(options["fill_gaps"]) + 1, math.ceil(WARM_SECONDS * rate))

    @classmethod
    def tail_frames(cls, options: Mapping[str, Any], fps: float) -> int:
        """Frames after a chunk's last one to decode and feed: fill_gaps (the look-ahead)."""
        return int(options["fill_gaps"])

    @classmethod
    def build(cls, inputs: Any) -> "TrackStage":
        opts = inputs.options
        return cls(opts["smooth_min_cutoff"], opts["smooth_beta"], opts["fill_gaps"])

    def setup(self) -> None:
        """Before a chunk's first (warm) frame: nothing followed from another chunk."""
        self.tracker.reset()

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        """The frames of those given and held before that can no longer change, in order."""
        released: list[Frame] = []
        for frame in frames:
            released += self.tracker.push(frame)
        return released

    def flush(self) -> list[Frame]:
        return self.tracker.flush()


def chunk_context_frames(options: Mapping[str, Any], fps: float) -> tuple[int, int]:
    """(warm, tail): frames each chunk of a face job with these validated options decodes
    before its first one and after its last, for the stages that warm (the most any wanted
    stage asks for: Stage.warm_frames, tail_frames; (0, 0) without one)."""
    from farm.faces.stages import wanted_stages   # the registry imports this module

    warming = [stage for stage in wanted_stages(options) if stage.warms]
    return (max((stage.warm_frames(options, fps) for stage in warming), default=0),
            max((stage.tail_frames(options, fps) for stage in warming), default=0))
