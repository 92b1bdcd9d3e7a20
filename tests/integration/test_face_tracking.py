"""Faces that hold still, in real jobs (issue 15.3).

A still clip of the astronaut (4 chunks of 15 frames, a keyframe at each chunk) rendered
in-process with the demo pack (its swapper paints stripes fixed to the aligned face, so a
jittering landmark shows as moving stripes), the detector replaced by a stand-in that
reports the face's true landmarks and box plus +-2 px noise, seeded by the frame's pts (so
a frame gets the same noise whichever chunk decodes it), and no face at all in frames 20
and 21 (inside a chunk) and 29 (the last of a chunk). Figures: the mean absolute change of the face region's luma between consecutive
output frames.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import skimage.data

import farm.faces.chain
import farm.faces.detect
from farm.faces.tracking import TrackStage
from farm.faces.types import Face
from farm.jobs.submit import SubmitRequest, submit
from farm.media.plan import ChunkPlan
from farm.state import records, store
from farm.workers.chunk_runner import run_chunk
from farm.workers.finalize import run_finalize
from tests import clips, media_checks
from tests.integration.test_face_stages import WORKER, pictures

SIZE, FRAMES, FPS, GOP = 256, 60, 30, 15
SCALE = SIZE / 512
KPS = np.array([[203, 102], [247, 102], [224, 125], [207, 143], [240, 143]], np.float32) * SCALE
BOX = np.array([178, 62, 272, 172], np.float32) * SCALE
REGION = (slice(20, 110), slice(70, 160))     # rows, columns of the luma the swap paints
MISSED = {20, 21, 29}
SEAMS = (15, 30, 45)


def still_clip(path: Path) -> Path:
    """FRAMES identical frames of the astronaut photo, lossless H.264, a keyframe every GOP frames."""
    rgb = cv2.resize(skimage.data.astronaut(), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"qp": "0", "preset": "veryfast",
                                                               "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0"})
        stream.width = stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, FPS)
        for i in range(FRAMES):
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            picture.pts = i
            out.mux(stream.encode(picture))
        out.mux(stream.encode(None))
    return path


class _StandIn:
    wants_gray = False

    def detect(self, image):   # never called: detect_small is replaced
        raise AssertionError("the stand-in detects through detect_small")


def noisy_detect_small(detector, frame, max_side):
    """The true face with +-2 px on every landmark and box corner, none in the MISSED frames."""
    index = round(frame.pts * float(frame.av_frame.time_base) * FPS)
    if index in MISSED:
        return []
    rng = np.random.default_rng(index)
    return [Face(BOX + rng.uniform(-2, 2, 4), 0.9, KPS + rng.uniform(-2, 2, (5, 2)))]


def render(settings, db, ctx, video: Path, out: Path, **face_options) -> store.JobView:
    """test_face_stages.render with a lossless encode (crf 0), so that the figures are the
    faces' and not the encoder's (a chunk starts with a keyframe of its own)."""
    face = clips.make_face_image(out.parent / "source.jpg")
    req = SubmitRequest(video=video, sources=[face], models="demo", output=out, chunk_seconds=0.5, crf=0,
                        face_options={"faces": "all", "enhance": False, **face_options})
    job_id = submit(req, settings, db)
    for index in range(store.get_job(db, job_id).chunk_count):
        assert run_chunk(ctx, job_id, index, WORKER).startswith("done")
    assert run_finalize(ctx, job_id, "fin") == "done", store.get_job(db, job_id).error
    return store.get_job(db, job_id)


@pytest.fixture
def standin_detector(monkeypatch):
    monkeypatch.setattr(farm.faces.chain, "build_detector", lambda *a, **k: _StandIn())
    monkeypatch.setattr(farm.faces.detect, "detect_small", noisy_detect_small)


def changes(path: Path) -> np.ndarray:
    """Mean absolute luma change of the face region from frame i-1 to frame i (entry i; 0 for i = 0)."""
    luma = [p[:SIZE][REGION].astype(np.float64) for p in pictures(path)]
    assert len(luma) == FRAMES
    return np.array([0.0] + [float(np.abs(b - a).mean()) for a, b in zip(luma, luma[1:])])


def inside(values: np.ndarray) -> np.ndarray:
    """Changes between two frames of one chunk, away from the clip's cold start and the missed frames."""
    return np.array([v for i, v in enumerate(values) if i >= 8 and i not in SEAMS and not {i - 1, i} & MISSED])


def test_a_still_face_holds_still_across_chunks_and_gaps(inproc, standin_detector, tmp_path):
    settings, db, ctx = inproc
    clip = still_clip(tmp_path / "still.mp4")
    # Given the same clip rendered without and with smoothing
    plain = render(settings, db, ctx, clip, tmp_path / "plain" / "out.mp4")
    steady = render(settings, db, ctx, clip, tmp_path / "steady" / "out.mp4", smooth=True)
    assert plain.chunk_count == steady.chunk_count == 4
    assert "track" in ctx.chain_for(steady).names and "track" not in ctx.chain_for(plain).names
    jitter, smoothed = changes(Path(plain.output_path)), changes(Path(steady.output_path))
    # Then the face region's frame-to-frame change falls at least 3x
    ratio = inside(jitter).mean() / inside(smoothed).mean()
    print(f"inside chunks: {inside(jitter).mean():.3f} -> {inside(smoothed).mean():.3f} (ratio {ratio:.2f}); "
          f"seams: {jitter[list(SEAMS)].round(3)} -> {smoothed[list(SEAMS)].round(3)}")
    assert ratio >= 3.0, (inside(jitter).mean(), inside(smoothed).mean())
    # and the frames where the detector missed the face are swapped all the same
    frames_changed = [c.frames_changed for c in steady.chunks]
    assert frames_changed == [15, 15, 15, 15], frames_changed
    assert [c.frames_changed for c in plain.chunks] == [15, 12, 15, 15]
    around_gaps = smoothed[[20, 21, 22, 29, 30]]     # into, through and out of the filled frames
    assert around_gaps.max() <= 2 * inside(smoothed).max(), (around_gaps, inside(smoothed).max())
    # and at each chunk seam the face is as steady as inside a chunk (the warm frames)
    seams = smoothed[list(SEAMS)]
    assert seams.max() <= inside(smoothed).max() and seams.mean() <= 1.5 * inside(smoothed).mean(), \
        (seams, inside(smoothed).mean(), inside(smoothed).max())
    assert [c.frames_planned for c in steady.chunks] == [15, 15, 15, 15]


def test_without_warm_frames_a_seam_jumps(inproc, standin_detector, tmp_path, monkeypatch):
    settings, db, ctx = inproc
    clip = still_clip(tmp_path / "still.mp4")
    monkeypatch.setattr(TrackStage, "warm_frames", classmethod(lambda cls, options, fps: 0))
    cold = render(settings, db, ctx, clip, tmp_path / "cold" / "out.mp4", smooth=True)
    smoothed = changes(Path(cold.output_path))
    print(f"cold seams: {smoothed[list(SEAMS)].round(3)}, inside {inside(smoothed).mean():.3f}")
    # each chunk's filter starts from a raw, noisy detection: the seams stand out
    assert smoothed[list(SEAMS)].mean() > 1.5 * inside(smoothed).mean(), (smoothed[list(SEAMS)], inside(smoothed))


def test_context_frames_keep_a_reordered_clip_frame_exact(inproc, tmp_path):
    # Given a clip with B-frames and keyframes that do not fall on the chunk cuts, and the demo
    # pack's own detector (the Haar cascade and its follower)
    settings, db, ctx = inproc
    video = clips.make_clip(tmp_path / "face.mp4", width=480, height=270, seconds=48 / 30, moving_face=True,
                            gop=7, bframes=2)
    job = render(settings, db, ctx, video, tmp_path / "out" / "face.mp4", smooth=True, fill_gaps=3)
    # Then the chunks decoded frames around them (not the first's before, not the last's after)
    plans = [records.load(ChunkPlan, c.plan) for c in job.chunks]
    assert len(plans) >= 3 and plans[0].warm_frames == 0 and plans[-1].tail_frames == 0
    assert all(p.warm_frames == min(15, p.first_frame) for p in plans) and all(p.tail_frames == 3 for p in plans[:-1])
    # and the output has exactly the source's frames, at the source's times, faces swapped
    assert media_checks.video_frame_times(job.output_path) == media_checks.video_frame_times(video)
    assert sum(c.frames_planned for c in job.chunks) == 48 and sum(c.frames_changed for c in job.chunks) > 0
