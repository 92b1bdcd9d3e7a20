"""The chunk runner's threads: decode -> stage chain (caller) -> encode, bounded queues."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest

import farm.media.chunk_codec as chunk_codec
from farm.errors import ChunkCancelled, MediaError
from farm.media.chunk_codec import choose_encoder, transcode_chunk
from farm.media.decode import ENCODE_QUEUE_FRAMES, PREFETCH_FRAMES, BackgroundSink, iter_chunk_frames, prefetch
from farm.media.plan import plan_chunks
from farm.media.probe import probe
from farm.media.split import split_chunks
from farm.pipeline.frame import Frame
from tests.clips import make_clip

THREAD_NAMES = ("farm-decode", "farm-encode")


def runner_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in THREAD_NAMES]


@pytest.fixture
def chunk(tmp_path: Path):
    src = make_clip(tmp_path / "src.mp4", seconds=1.0, gop=10, bframes=2)
    info = probe(src)
    plan = plan_chunks(info, 1000)[0]
    seg = split_chunks(src, info, [plan], tmp_path / "in")[0]
    return info, plan, seg


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_the_decode_side_reads_at_most_prefetch_frames_ahead() -> None:
    # Given a source that counts what was taken from it, and a consumer that takes nothing yet
    taken: list[int] = []

    def source():
        for n in range(100):
            taken.append(n)
            yield n

    ahead = prefetch(source())
    assert next(ahead) == 0
    time.sleep(0.3)   # the decode thread runs until its queue is full, then waits
    # Then it read the one handed out, a full queue, and the one it waits to put
    assert len(taken) <= PREFETCH_FRAMES + 2, taken
    ahead.close()


def test_the_encode_side_holds_at_most_encode_queue_frames() -> None:
    # Given an encoder that is stuck on its first frame
    release = threading.Event()
    sink = BackgroundSink(lambda item: release.wait(5), maxsize=ENCODE_QUEUE_FRAMES)
    put: list[int] = []

    def producer() -> None:
        for n in range(ENCODE_QUEUE_FRAMES + 5):
            sink.put(n)
            put.append(n)

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    time.sleep(0.3)
    # Then the chunk runner blocks once the queue is full: one frame in the encoder, the rest queued
    assert len(put) == ENCODE_QUEUE_FRAMES + 1, put
    release.set()
    thread.join(5)
    sink.finish()
    assert len(put) == ENCODE_QUEUE_FRAMES + 5
    with pytest.raises(ValueError, match="unbounded"):
        BackgroundSink(lambda item: None, maxsize=0)


def test_background_sink_keeps_order_and_raises_the_consumers_error() -> None:
    # Given a sink whose consumer records items, then one that fails on the third
    seen: list[int] = []
    ended = []
    sink = BackgroundSink(seen.append, lambda: ended.append(True), maxsize=2)
    for n in range(20):
        sink.put(n)
    sink.finish()
    assert seen == list(range(20)) and ended == [True] and not sink.alive

    def fail(n: int) -> None:
        if n == 2:
            raise RuntimeError("encoder broke")

    sink = BackgroundSink(fail, maxsize=1)
    with pytest.raises(RuntimeError, match="encoder broke"):
        for n in range(100):
            sink.put(n)
    sink.abort()
    assert not sink.alive


def test_decode_thread_error_is_reraised_and_threads_end(chunk, tmp_path: Path, monkeypatch) -> None:
    info, plan, seg = chunk
    real = chunk_codec.iter_chunk_frames

    def broken(in_path, plan, hwaccel=None):
        for n, frame in enumerate(real(in_path, plan, hwaccel)):
            if n == 5:
                raise MediaError("decoder broke")
            yield frame

    monkeypatch.setattr(chunk_codec, "iter_chunk_frames", broken)
    out = tmp_path / "o.mov"
    with pytest.raises(MediaError, match="decoder broke"):
        transcode_chunk(seg, out, plan, choose_encoder(info.video), lambda f: f)
    assert not out.exists() and leftovers(tmp_path) == []
    assert runner_threads() == []


def test_encode_thread_error_is_reraised_and_threads_end(chunk, tmp_path: Path, monkeypatch) -> None:
    info, plan, seg = chunk
    calls = []
    real = chunk_codec._check_format

    def failing_check(frame, settings):
        calls.append(threading.current_thread().name)
        if len(calls) == 4:
            raise MediaError("encoder broke")
        real(frame, settings)

    monkeypatch.setattr(chunk_codec, "_check_format", failing_check)
    out = tmp_path / "o.mov"
    with pytest.raises(MediaError, match="encoder broke"):
        transcode_chunk(seg, out, plan, choose_encoder(info.video), lambda f: f)
    assert set(calls) == {"farm-encode"}          # encoding ran in its own thread
    assert not out.exists() and leftovers(tmp_path) == []
    assert runner_threads() == []


@pytest.mark.parametrize("batched", [False, True])
def test_cancel_between_frames_leaves_no_output(chunk, tmp_path: Path, batched: bool) -> None:
    info, plan, seg = chunk
    checks = []
    processed = []

    def should_cancel() -> bool:
        checks.append(1)
        return len(checks) > 6

    def one(frame: Frame) -> Frame:
        processed.append(frame.index)
        return frame

    out = tmp_path / "o.mov"
    kwargs = {"process_batch": lambda fs: [one(f) for f in fs], "batch_frames": 3} if batched else {}
    with pytest.raises(ChunkCancelled):
        transcode_chunk(seg, out, plan, choose_encoder(info.video), one, should_cancel=should_cancel, **kwargs)
    assert not out.exists() and leftovers(tmp_path) == []
    assert len(processed) == 6                    # checked before every frame, none after the cancel
    assert runner_threads() == []


@pytest.mark.parametrize("batch_frames", [None, 1, 4, 7])
def test_frame_order_and_pts_are_preserved(chunk, tmp_path: Path, batch_frames: int | None) -> None:
    info, plan, seg = chunk
    indices: list[int] = []
    batches: list[int] = []

    def process(frame: Frame) -> Frame:
        indices.append(frame.index)
        return frame

    def process_batch(frames: list[Frame]) -> list[Frame]:
        batches.append(len(frames))
        return [process(f) for f in frames]

    kwargs = {} if batch_frames is None else {"process_batch": process_batch, "batch_frames": batch_frames}
    out = tmp_path / "o.mov"
    n = transcode_chunk(seg, out, plan, choose_encoder(info.video), process, **kwargs)
    assert n == plan.frame_count == info.video.frame_count
    assert indices == list(range(n))
    if batch_frames:
        assert all(b == batch_frames for b in batches[:-1]) and sum(batches) == n
    pts = [f.pts for f in iter_chunk_frames(out, dataclasses.replace(plan, start_pts=0, end_pts=None))]
    assert pts == info.frame_pts[:n]
    assert runner_threads() == []


def test_a_batch_returning_the_wrong_count_is_an_error(chunk, tmp_path: Path) -> None:
    info, plan, seg = chunk
    out = tmp_path / "o.mov"
    with pytest.raises(MediaError, match="returned"):
        transcode_chunk(seg, out, plan, choose_encoder(info.video), lambda f: f,
                        process_batch=lambda fs: fs[:-1], batch_frames=4)
    assert not out.exists() and runner_threads() == []
