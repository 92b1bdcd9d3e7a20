"""Chunk-level behaviour: idempotent split, progress, cancel, frame count checks, verify."""

from __future__ import annotations

import dataclasses
import subprocess
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

import farm.media.chunk_codec as chunk_codec
from farm.errors import ChunkCancelled, FrameCountMismatch, MediaError, VerifyError
from farm.media.chunk_codec import choose_encoder, transcode_chunk
from farm.media.decode import iter_chunk_frames, prefetch
from farm.media.join import join_chunks
from farm.media.plan import plan_chunks
from farm.media.probe import probe
from farm.media.split import split_chunks
from farm.media.verify import verify_output
from farm.pipeline.frame import Frame
from tests import media_checks as mc
from tests.clips import ffmpeg_exe as clips_ffmpeg
from tests.clips import make_clip


@pytest.fixture
def clip(tmp_path: Path):
    src = make_clip(tmp_path / "src.mp4", audio_tracks=1, gop=12, bframes=2, seconds=1.5)
    info = probe(src)
    plans = plan_chunks(info, 16)
    segments = split_chunks(src, info, plans, tmp_path / "in")
    return src, info, plans, segments


def packets_of(path: Path) -> list[tuple]:
    with av.open(str(path)) as c:
        return [(p.pts, p.dts, p.is_keyframe, bytes(p)) for p in c.demux(c.streams.video[0]) if p.size]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_split_is_idempotent(clip, tmp_path: Path) -> None:
    src, info, plans, first = clip
    before = [packets_of(p) for p in first]
    again = split_chunks(src, info, plans, tmp_path / "in")
    assert again == first
    assert [packets_of(p) for p in again] == before
    assert leftovers(tmp_path / "in") == []
    # each segment holds exactly its decode-order packet range, timestamps untouched
    for plan, seg in zip(plans, first):
        want = info.packets[plan.seg_first_packet:plan.seg_end_packet]
        assert [(p[0], p[1]) for p in packets_of(seg)] == [(q.pts, q.dts) for q in want]


def test_transcode_reports_progress_and_keeps_pts(clip, tmp_path: Path, monkeypatch) -> None:
    src, info, plans, segments = clip
    monkeypatch.setattr(chunk_codec, "PROGRESS_INTERVAL_S", 0.0)
    seen: list[int] = []
    indices: list[int] = []

    def process(frame: Frame) -> Frame:
        indices.append(frame.index)
        return frame

    plan = plans[1]
    out = tmp_path / "out.mov"
    n = transcode_chunk(segments[1], out, plan, choose_encoder(info.video), process, on_progress=seen.append)
    assert n == plan.frame_count == len(indices)
    assert indices == list(range(n))
    assert seen == sorted(seen) and seen[-1] == n and len(seen) >= n
    pts = [f.pts for f in iter_chunk_frames(out, dataclasses.replace(plan, start_pts=0, end_pts=None))]
    assert pts == info.frame_pts[plan.first_frame:plan.first_frame + plan.frame_count]


def test_progress_is_not_reported_per_frame(clip, tmp_path: Path) -> None:
    src, info, plans, segments = clip
    seen: list[int] = []
    start = time.monotonic()
    transcode_chunk(segments[0], tmp_path / "o.mov", plans[0], choose_encoder(info.video), lambda f: f,
                    on_progress=seen.append)
    elapsed_s = time.monotonic() - start
    # about once a second plus the final report, never once per frame
    assert seen[-1] == plans[0].frame_count
    assert len(seen) <= int(elapsed_s / chunk_codec.PROGRESS_INTERVAL_S) + 1 < plans[0].frame_count


def test_cancel_between_frames_leaves_nothing(clip, tmp_path: Path) -> None:
    src, info, plans, segments = clip
    calls = []

    def should_cancel() -> bool:
        calls.append(1)
        return len(calls) > 3

    out = tmp_path / "chunks" / "o.mov"
    out.parent.mkdir()
    with pytest.raises(ChunkCancelled):
        transcode_chunk(segments[0], out, plans[0], choose_encoder(info.video), lambda f: f,
                        should_cancel=should_cancel)
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_frame_count_mismatch_is_caught(clip, tmp_path: Path) -> None:
    src, info, plans, segments = clip
    wrong = dataclasses.replace(plans[0], frame_count=plans[0].frame_count + 1)
    out = tmp_path / "o.mov"
    with pytest.raises(FrameCountMismatch):
        transcode_chunk(segments[0], out, wrong, choose_encoder(info.video), lambda f: f)
    assert not out.exists() and leftovers(tmp_path) == []


def test_process_errors_propagate_and_clean_up(clip, tmp_path: Path) -> None:
    src, info, plans, segments = clip

    def boom(frame: Frame) -> Frame:
        if frame.index == 2:
            raise RuntimeError("stage failed")
        return frame

    with pytest.raises(RuntimeError, match="stage failed"):
        transcode_chunk(segments[0], tmp_path / "o.mov", plans[0], choose_encoder(info.video), boom)
    assert leftovers(tmp_path) == []


def test_pixels_written_by_process_reach_the_output(clip, tmp_path: Path) -> None:
    src, info, plans, segments = clip

    def paint(frame: Frame) -> Frame:
        frame.av_frame.make_writable()
        frame = Frame.from_av(frame.av_frame, frame.index)
        frame.planes[0][:] = 235      # white luma
        frame.touched = True
        return frame

    out = tmp_path / "o.mov"
    transcode_chunk(segments[0], out, plans[0], choose_encoder(info.video), paint)
    luma = mc.frame_luma(out)
    assert len(luma) == plans[0].frame_count and np.all(luma > 240)


def test_verify_names_what_differs(tmp_path: Path) -> None:
    # Given a finished output of a rotated clip with audio
    src = make_clip(tmp_path / "src.mp4", audio_tracks=1, rotation=90, seconds=1.0)
    info = probe(src)
    plans = plan_chunks(info, 10)
    segs = split_chunks(src, info, plans, tmp_path / "in")
    settings = choose_encoder(info.video)
    outs = []
    for plan, seg in zip(plans, segs):
        transcode_chunk(seg, tmp_path / f"o{plan.index}.mov", plan, settings, lambda f: f)
        outs.append(tmp_path / f"o{plan.index}.mov")
    good = tmp_path / "good.mp4"
    join_chunks(outs, src, info, good, {"farm_job_id": "j1"})
    verify_output(info, good, {"farm_job_id": "j1"})

    def variant(name: str, *args: str, pre: tuple[str, ...] = ()) -> Path:
        out = tmp_path / name
        subprocess.run([clips_ffmpeg(), "-v", "error", "-y", *pre, "-i", str(good), *args, str(out)], check=True)
        return out

    cases = {
        "frames": variant("short.mp4", "-c", "copy", "-frames:v", "20"),
        "rotation": variant("norot.mp4", "-c", "copy", pre=("-display_rotation", "0")),
        "streams": variant("noaudio.mp4", "-map", "0:v", "-c", "copy"),
        "frame times": variant("late.mp4", "-c", "copy", "-output_ts_offset", "0.5"),
        "farm_job_id": variant("notags.mp4", "-c", "copy", "-map_metadata", "-1"),
    }
    for what, bad in cases.items():
        with pytest.raises(VerifyError, match=what):
            verify_output(info, bad, {"farm_job_id": "j1"})


def test_prefetch_propagates_errors_and_stops_early() -> None:
    def produce():
        yield 1
        yield 2
        raise MediaError("decoder broke")

    got = []
    with pytest.raises(MediaError, match="decoder broke"):
        for item in prefetch(produce()):
            got.append(item)
    assert got == [1, 2]

    stopped = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            stopped.set()

    it = prefetch(endless(), maxsize=2)
    assert [next(it) for _ in range(3)] == [1, 2, 3]
    it.close()
    assert stopped.wait(2.0)   # the producer was stopped (and joined) by close()


def test_frames_are_writable_without_touching_the_decoders_references(tmp_path: Path) -> None:
    # Given a clip of P-frames that all predict from the first frame (one keyframe)
    src = make_clip(tmp_path / "p.mp4", seconds=0.5, gop=1000, bframes=0)
    info = probe(src)
    plan = plan_chunks(info, 100)[0]
    seg = split_chunks(src, info, [plan], tmp_path / "in")[0]
    # When a stage paints the first frame white in place
    means = []
    for n, av_frame in enumerate(iter_chunk_frames(seg, plan)):
        frame = Frame.from_av(av_frame, n)
        if n == 0:
            frame.planes[0][:] = 235
        means.append(float(frame.planes[0].mean()))
    # Then the frames decoded after it are not predicted from the painted pixels
    assert means[0] == 235
    assert max(means[1:]) < 200


def test_progress_goes_on_while_the_encoder_flushes_its_lookahead(clip, tmp_path: Path) -> None:
    """x264's lookahead takes every frame of a short chunk at once and encodes at the flush:
    the heartbeat must keep coming while it does (else the reaper sees a stale chunk)."""
    # Given a 60-frame 1600x900 chunk and a slow preset (the lookahead holds all 60 frames;
    # big enough that even a fast, idle machine takes several progress intervals)
    src = make_clip(tmp_path / "hd.mp4", width=1600, height=900, seconds=3.0, fps=20, gop=60)
    info = probe(src)
    plan = plan_chunks(info, 60)[0]
    segment = split_chunks(src, info, [plan], tmp_path / "in")[0]
    settings = dataclasses.replace(choose_encoder(info.video), preset="veryslow", options={"rc-lookahead": "60"})
    seen: list[tuple[float, int]] = []
    start = time.monotonic()
    transcode_chunk(segment, tmp_path / "o.mov", plan, settings, lambda f: f,
                    on_progress=lambda n: seen.append((time.monotonic() - start, n)), report_final=False)
    elapsed_s = time.monotonic() - start
    assert elapsed_s > 2.5 * chunk_codec.PROGRESS_INTERVAL_S, "the chunk was too quick to show anything"
    # Then reports keep coming about once a second until the end, not only while frames are handed over
    gaps = [b - a for (a, _), (b, _) in zip([(0.0, 0), *seen], [*seen, (elapsed_s, 0)])]
    assert max(gaps) < 2 * chunk_codec.PROGRESS_INTERVAL_S + 0.5, seen
    assert seen[-1][1] == plan.frame_count
