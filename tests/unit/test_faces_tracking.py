"""Faces that hold still (issue 15.3): the One Euro filter, following faces without mixing
two people, gap filling, the stage contract's held and warm frames, the options and the
planner's warm frames. No processes, no video: frames made from arrays, timed by a pts.
"""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

from farm.errors import InputError
from farm.faces.options import FACE_OPTIONS, validate_options
from farm.faces.stages import wanted_stages
from farm.faces.tracking import FaceTracker, TrackStage, chunk_context_frames, frame_time, match
from farm.faces.tracking_filter import OneEuroFilter
from farm.faces.types import Face
from farm.media.media_info import PacketInfo
from farm.media.plan import plan_packets
from farm.pipeline.frame import Frame
from farm.pipeline.stage import Stage, StageChain

KPS = np.array([[40, 50], [80, 50], [60, 70], [45, 90], [75, 90]], np.float32)
BOX = np.array([20, 20, 100, 120], np.float32)


def face_at(dx: float = 0.0, dy: float = 0.0, noise: np.ndarray | None = None, embedding=None) -> Face:
    shift = np.array([dx, dy], np.float32)
    kps = KPS + shift + (0 if noise is None else noise)
    return Face(BOX + np.tile(shift, 2), 0.9, kps, embedding)


def frame(i: int, faces: list[Face], fps: int = 30) -> Frame:
    f = Frame.from_arrays([np.zeros((4, 4), np.uint8)], "gray", index=i)
    f.av_frame = SimpleNamespace(pts=i, time_base=Fraction(1, fps))
    f.faces = faces
    return f


def change(values: np.ndarray) -> float:
    """Mean frame-to-frame change (px) of a [frames, ...] array."""
    return float(np.abs(np.diff(values, axis=0)).mean())


@pytest.mark.parametrize("fps", [24, 30, 60])
def test_the_filter_cuts_still_jitter_3x_and_trails_a_moving_point_by_under_a_pixel(fps):
    # Given +-2 px noise on 10 still coordinates
    rng = np.random.default_rng(fps)
    still = 100 + rng.uniform(-2, 2, (300, 10))
    flt = OneEuroFilter()
    out = np.array([flt(x, i / fps) for i, x in enumerate(still)])
    # Then the frame-to-frame change falls at least 3x once warm
    assert change(still[30:]) / change(out[30:]) >= 3.0
    # And a point moving at a constant speed trails by under 1 px after warm-up, at any speed
    for speed in (10, 60, 300, 2000):   # px/s
        flt = OneEuroFilter()
        xs = [np.array([speed * i / fps]) for i in range(120)]
        lag = [float(x[0] - flt(x, i / fps)[0]) for i, x in enumerate(xs)]
        assert max(abs(v) for v in lag[fps:]) < 1.0, (speed, max(lag[fps:]))


def test_time_comes_from_the_timestamps_not_the_frame_count():
    assert frame_time(frame(45, []), 0) == pytest.approx(1.5)
    assert frame_time(frame(45, [], fps=60), 0) == pytest.approx(0.75)
    bare = Frame.from_arrays([np.zeros((4, 4), np.uint8)], "gray")
    assert frame_time(bare, 30) == pytest.approx(1.0)      # no pts: 30 fps assumed
    # the same samples at double the interval are followed more closely (a higher alpha)
    a, b = OneEuroFilter(), OneEuroFilter()
    for i in range(10):
        ya, yb = a(np.array([float(i)]), i / 60), b(np.array([float(i)]), i / 30)
    assert abs(9 - yb[0]) < abs(9 - ya[0])


def test_tracks_never_mix_two_people():
    rng = np.random.default_rng(1)
    tracker = FaceTracker(fill_gaps=0)
    outs = []
    for i in range(60):
        # Given two faces side by side (150 px apart), noisy, listed in a random order
        faces = [face_at(0, 0, rng.uniform(-2, 2, (5, 2))), face_at(150, 0, rng.uniform(-2, 2, (5, 2)))]
        if i % 2:
            faces.reverse()
        (out,) = tracker.push(frame(i, faces))
        outs.append(sorted(out.faces, key=lambda f: f.kps[0, 0]))
    # Then each output face stays on its own person (smoothed within 2 px), never averaged
    for left, right in outs:
        assert np.abs(left.kps - KPS).max() < 2.5 and np.abs(right.kps - (KPS + [150, 0])).max() < 2.5
    # And a face in the same place with another identity is a new person: not smoothed with the first
    a, b = np.eye(512, dtype=np.float32)[0], np.eye(512, dtype=np.float32)[1]
    assert match([face_at(embedding=a)], [face_at(1, 0, embedding=b)]) == []
    assert match([face_at(embedding=a)], [face_at(1, 0, embedding=a)]) == [(0, 0)]
    tracker = FaceTracker(fill_gaps=0)
    tracker.push(frame(0, [face_at(0, 0, embedding=a)]))
    (out,) = tracker.push(frame(1, [face_at(6, 0, embedding=b)]))
    assert np.allclose(out.faces[0].kps, KPS + [6, 0])        # first sample of a new track: as detected
    # And a face far from every track (another person entering) starts its own track too
    assert match([face_at()], [face_at(300, 0)]) == []


def run_stage(stage: Stage, frames: list[Frame], batch: int = 4) -> list[Frame]:
    chain = StageChain([stage])
    chain.setup()
    out: list[Frame] = []
    for i in range(0, len(frames), batch):
        out += chain.process_batch(frames[i : i + batch])
    return out + chain.flush()


def test_a_face_missed_for_up_to_fill_gaps_frames_is_interpolated():
    speed = 3.0   # px per frame
    missed = {10, 11, 20, 21, 22}
    frames = [frame(i, [] if i in missed else [face_at(speed * i)]) for i in range(40)]
    out = run_stage(TrackStage(fill_gaps=2, smooth=False), frames)
    # Then every frame comes out once, in order
    assert [f.index for f in out] == list(range(40))
    # a gap of 2 is filled, where the face was (linear motion)
    for i in (10, 11):
        assert len(out[i].faces) == 1 and np.abs(out[i].faces[0].kps - (KPS + [speed * i, 0])).max() < 1e-3
    # a gap of 3 is longer than fill_gaps: left empty
    assert all(out[i].faces == [] for i in (20, 21, 22))
    # and with smoothing the filled faces lie between the smoothed neighbours
    frames = [frame(i, [] if i in missed else [face_at(speed * i)]) for i in range(40)]
    out = run_stage(TrackStage(fill_gaps=2), frames, batch=3)
    assert [f.index for f in out] == list(range(40))
    assert all(len(out[i].faces) == 1 for i in (10, 11)) and out[21].faces == []
    xs = [out[i].faces[0].kps[0, 0] for i in (9, 10, 11, 12)]
    assert xs == sorted(xs) and abs(xs[1] - (KPS[0, 0] + 30)) < 2.0


class _Recorder(Stage):
    """A stage after tracking: records the frame indices it sees."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[int] = []

    def process(self, frame: Frame) -> Frame:
        self.seen.append(frame.index)
        return frame


def test_warm_frames_warm_the_tracker_and_go_no_further():
    recorder = _Recorder()
    chain = StageChain([TrackStage(fill_gaps=2), recorder])
    assert chain.batches and chain.holds
    chain.setup()
    frames = [frame(i, [face_at(0, 0, np.full((5, 2), (-1) ** i * 2.0, np.float32))]) for i in range(-6, 10)]
    out = chain.process_batch(frames[:4]) + chain.process_batch(frames[4:8]) + chain.process_batch(frames[8:])
    out += chain.flush()
    # the chunk's own frames come out once, in order; the warm ones (index < 0) never do
    assert [f.index for f in out] == list(range(10)) and recorder.seen == list(range(10))
    # and frame 0 is already smoothed: the warm frames started the filter
    assert np.abs(out[0].faces[0].kps - KPS).max() < 1.0
    # a chain without a stage that warms drops warm frames at once
    plain = _Recorder()
    chain = StageChain([plain])
    chain.setup()
    assert [f.index for f in chain.process_batch(frames[:8])] == [0, 1] and plain.seen == [0, 1]
    assert chain.flush() == []


def test_options_are_declared_by_the_track_stage():
    assert {FACE_OPTIONS[n].stage for n in ("smooth", "smooth_min_cutoff", "smooth_beta", "fill_gaps")} == {"track"}
    assert FACE_OPTIONS["fill_gaps"].default == 2 and FACE_OPTIONS["smooth"].default is False
    assert FACE_OPTIONS["smooth"].flag("smooth") == "--smooth"
    off, on = validate_options({}), validate_options({"smooth": "yes", "fill_gaps": "3"})
    assert "track" not in [s.name for s in wanted_stages(off)]
    assert [s.name for s in wanted_stages(on)][:3] == ["detect", "select", "track"]
    # context frames: 0.5 s (at least fill_gaps + 1) before each chunk, fill_gaps after it
    assert chunk_context_frames(off, 30.0) == (0, 0) and chunk_context_frames(on, 30.0) == (15, 3)
    assert chunk_context_frames(on, 60.0) == (30, 3) and chunk_context_frames(on, 0.0) == (15, 3)
    assert chunk_context_frames(validate_options({"smooth": True, "fill_gaps": 10}), 10.0) == (11, 10)
    with pytest.raises(InputError, match="fill_gaps needs smooth"):
        validate_options({"fill_gaps": 4})
    with pytest.raises(InputError, match="fill_gaps"):
        validate_options({"smooth": True, "fill_gaps": 11})
    stage = TrackStage.build(SimpleNamespace(options=validate_options({"smooth": True, "smooth_beta": 0.5})))
    assert stage.tracker.beta == 0.5 and stage.tracker.fill_gaps == 2


def test_the_planner_adds_context_frames_around_each_chunk():
    # 60 frames, a keyframe every 20, no reordering
    packets = [PacketInfo(pts=i, dts=i, is_keyframe=i % 20 == 0, duration=1) for i in range(60)]
    cold, warm = plan_packets(packets, 20), plan_packets(packets, 20, warm_frames=5, tail_frames=2)
    # the chunks are the same frames, exactly
    key = [(p.first_frame, p.frame_count, p.start_pts, p.end_pts) for p in cold]
    assert key == [(p.first_frame, p.frame_count, p.start_pts, p.end_pts) for p in warm]
    assert [p.seg_first_packet for p in cold] == [0, 20, 40] and [p.warm_frames for p in cold] == [0, 0, 0]
    assert [p.seg_end_packet for p in cold] == [20, 40, 60] and [p.tail_frames for p in cold] == [0, 0, 0]
    # and each segment but the first starts a GOP earlier, holding the 5 frames before the chunk
    assert [p.seg_first_packet for p in warm] == [0, 0, 20]
    assert [(p.warm_frames, p.warm_start_pts) for p in warm] == [(0, None), (5, 15), (5, 35)]
    # and each but the last holds the 2 frames after it
    assert [p.seg_end_packet for p in warm] == [22, 42, 60]
    assert [(p.tail_frames, p.tail_end_pts) for p in warm] == [(2, 22), (2, 42), (0, None)]
    # a tail that reaches the video's end is decoded to the end
    assert [(p.tail_frames, p.tail_end_pts) for p in plan_packets(packets, 20, tail_frames=30)][1] == (20, None)


def test_tail_frames_fill_a_gap_at_the_chunk_end_and_go_no_further():
    recorder = _Recorder()
    chain = StageChain([TrackStage(fill_gaps=2, smooth=False), recorder])
    chain.setup()
    # own frames 0..5, the face missed in 4 and 5; two tail frames after them (negative indices)
    frames = [frame(i, [] if i in (4, 5) else [face_at(2.0 * i)]) for i in range(6)]
    for k, pts in enumerate((6, 7)):
        tail = frame(pts, [face_at(2.0 * pts)])
        tail.index = -1 - k
        frames.append(tail)
    out = chain.process_batch(frames[:5]) + chain.process_batch(frames[5:]) + chain.flush()
    assert [f.index for f in out] == list(range(6)) and recorder.seen == list(range(6))
    assert np.allclose(out[5].faces[0].kps, KPS + [10.0, 0]) and np.allclose(out[4].faces[0].kps, KPS + [8.0, 0])
