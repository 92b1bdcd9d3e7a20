"""Decode a chunk's input segment into the chunk's frames, and the threads around it.

`iter_chunk_frames` is a plain generator: it decodes the segment and yields, in
presentation order, only the frames the chunk owns (start_pts <= pts < end_pts); the
pre-roll frames are decoded and dropped, decoding stops at the first frame past the end.

The chunk runner is three threads joined by bounded queues:
decode thread (`prefetch`) -> stage chain (the caller's thread) -> encode thread
(`BackgroundSink`). Each queue ends with an EOF sentinel; an exception in either
thread is re-raised in the caller; closing early stops, drains and joins the threads.
PyAV releases the GIL while it decodes and encodes, so the three overlap.
"""

from __future__ import annotations

import os
import queue
import threading
import logging
from fractions import Fraction
from typing import Any, Callable, Generic, Iterator, TypeVar

import av

from farm.errors import MediaError
from farm.media.ffmpeg import file_url
from farm.media.formats import SAFE_INPUT_OPTIONS, sniff_demuxer
from farm.media.intermediate import open_read
from farm.media.plan import ChunkPlan
from farm.media.source_range import range_packets

log = logging.getLogger("farm.media.decode")

T = TypeVar("T")

#: Decoded frames waiting for the stage chain. A 4K 10-bit frame is ~25 MB, so keep it
#: small; note that maxsize=0 would mean *unbounded* for queue.Queue.
PREFETCH_FRAMES = 4

#: Processed frames waiting for the encode thread (same memory reasoning; never 0).
ENCODE_QUEUE_FRAMES = 4

_POLL_S = 0.1   # how often a blocked put/get looks at the stop flag

# What NVDEC frames arrive as once copied to system memory -> the planar format the
# pipeline (Frame, the encoder) works in.
_SOFTWARE_FORMAT = {"nv12": "yuv420p", "p010le": "yuv420p10le", "p016le": "yuv420p12le",
                    "nv16": "yuv422p", "p210le": "yuv422p10le", "nv24": "yuv444p",
                    "p410le": "yuv444p10le"}


def iter_chunk_frames(in_path: str | os.PathLike[str], plan: ChunkPlan,
                      hwaccel: Any | None = None) -> Iterator[av.VideoFrame]:
    """Yield the chunk's decoded frames in presentation order, with their original pts.

    Frames keep the segment's time base (`frame.time_base`); their pts equal the
    source's (see `source_ticks`). Each frame is writable: a frame the decoder still
    uses as a reference is copied first (make_writable), so pixels a stage writes can
    never leak into the frames decoded after it.

    hwaccel: a PyAV HWAccel (see hwaccel.nvdec_hwaccel) to decode on the GPU; its frames
    are converted to the matching planar format (NV12 -> yuv420p). If the hardware
    decoder fails before the first frame, the segment is decoded in software instead.
    """
    if hwaccel is None:
        yield from _decode_frames(in_path, plan, None)
        return
    produced = 0
    try:
        for frame in _decode_frames(in_path, plan, hwaccel):
            produced += 1
            yield frame
    except MediaError as exc:
        if produced:
            raise
        log.warning("hardware decoding of %s failed (%s); decoding in software", in_path, exc)
        yield from _decode_frames(in_path, plan, None)


def _open_for_decode(in_path: str | os.PathLike[str], hwaccel: Any | None) -> av.container.InputContainer:
    if hwaccel is None:
        return open_read(in_path)
    return av.open(file_url(in_path), format=sniff_demuxer(in_path),
                   container_options=dict(SAFE_INPUT_OPTIONS), hwaccel=hwaccel)


def _decode_frames(in_path: str | os.PathLike[str], plan: ChunkPlan,
                   hwaccel: Any | None) -> Iterator[av.VideoFrame]:
    try:
        src = _open_for_decode(in_path, hwaccel)
    except av.FFmpegError as exc:
        raise MediaError(f"opening {in_path} failed: {exc}") from None
    with src:
        stream = src.streams.video[0] if plan.source_stream is None else src.streams[plan.source_stream]
        stream.thread_type = "AUTO"
        tb = Fraction(stream.time_base)
        last = None
        try:
            for frame in _segment_frames(src, stream, plan):
                if frame.pts is None:
                    raise MediaError(f"{in_path}: a decoded frame has no timestamp")
                pts = source_ticks(frame.pts, tb, plan.time_base)
                if plan.end_pts is not None and pts >= plan.end_pts:
                    return
                if pts < plan.start_pts:
                    continue
                if last is not None and pts <= last:
                    raise MediaError(f"{in_path}: frames out of order (pts {pts} after {last})")
                last = pts
                planar = _SOFTWARE_FORMAT.get(frame.format.name)
                if planar is not None:   # hardware frame copied back: NV12 -> yuv420p (new buffer)
                    frame_pts, frame_tb = frame.pts, frame.time_base
                    frame = frame.reformat(format=planar)
                    frame.pts, frame.time_base = frame_pts, frame_tb
                else:
                    frame.make_writable()
                yield frame
        except av.FFmpegError as exc:
            raise MediaError(f"decoding {in_path} failed: {exc}") from None


def _segment_frames(src: av.container.InputContainer, stream: av.video.stream.VideoStream,
                    plan: ChunkPlan) -> Iterator[av.VideoFrame]:
    """Every frame the plan's segment decodes to: the whole file when it is the segment's own,
    else the segment's packets read by range from the source (farm.media.source_range)."""
    if plan.source_stream is None:
        yield from src.decode(stream)
        return
    for packet in [*range_packets(src, plan), None]:   # None: drain the decoder
        for frame in stream.decode(packet):
            frame.time_base = stream.time_base   # the drained frames come without one
            yield frame


def source_ticks(pts: int, tb: Fraction, source_tb: Fraction) -> int:
    """Convert pts in time base tb to ticks of source_tb; it must be exact."""
    if tb == source_tb:
        return pts
    value = pts * tb / source_tb
    if value.denominator != 1:
        raise MediaError(f"timestamp {pts}*{tb} is not a whole number of source ticks ({source_tb})")
    return int(value)


class _End:
    """Sentinel put on the queue when the producer is done (or failed)."""


def prefetch(items: Iterator[T], maxsize: int = PREFETCH_FRAMES) -> Iterator[T]:
    """Iterate `items` in a background thread, at most `maxsize` items ahead.

    The producer's exception is re-raised in the consumer; closing the generator early
    (break, exception in the consumer) stops and joins the thread.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=maxsize)
    stop = threading.Event()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer, re-raised there
            failure.append(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
            while True:  # the consumer may have stopped reading; never block forever
                try:
                    q.put(_End, timeout=0.1)
                    break
                except queue.Full:
                    if stop.is_set():
                        break

    thread = threading.Thread(target=produce, name="farm-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _End:
                break
            yield item  # type: ignore[misc]
        if failure:
            raise failure[0]
    finally:
        stop.set()
        while thread.is_alive():  # drain so a blocked producer can finish
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
        thread.join()


class BackgroundSink(Generic[T]):
    """Hand items to `consume` running in its own thread, at most `maxsize` queued.

    put(item) blocks while the queue is full and raises the consumer's exception as
    soon as it has one; finish() sends the EOF sentinel, waits, and re-raises it;
    abort() stops the consumer, drops what is queued and joins (always safe, also
    after finish). `consume(item)` is called in order, then `at_end()` once at EOF.
    """

    def __init__(self, consume: Callable[[T], None], at_end: Callable[[], None] | None = None,
                 maxsize: int = ENCODE_QUEUE_FRAMES, name: str = "farm-encode") -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1 (0 would make the queue unbounded)")
        self._q: queue.Queue[object] = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self._failure: list[BaseException] = []
        self._consume, self._at_end = consume, at_end
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    item = self._q.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if item is _End:
                    if self._at_end is not None:
                        self._at_end()
                    return
                self._consume(item)  # type: ignore[arg-type]
        except BaseException as exc:  # handed to the caller, re-raised there
            self._failure.append(exc)

    def _raise_failure(self) -> None:
        if self._failure:
            raise self._failure[0]

    def put(self, item: T) -> None:
        """Queue an item for the consumer (blocks while full); raise the consumer's error."""
        self._put(item)

    def _put(self, item: object) -> None:
        while True:
            self._raise_failure()
            if not self._thread.is_alive():
                raise MediaError(f"{self._thread.name} thread ended early")
            try:
                self._q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def finish(self, tick: Callable[[], None] | None = None) -> None:
        """Send EOF, wait for the consumer to drain and run at_end; raise its error.

        tick: called every poll while waiting (an encoder's flush of its lookahead can
        take seconds; the chunk runner keeps its progress heartbeat going from here).
        """
        self._put(_End)
        while self._thread.is_alive():
            self._thread.join(timeout=_POLL_S)
            if tick is not None and self._thread.is_alive():
                tick()
        self._raise_failure()

    def abort(self) -> None:
        """Stop the consumer, drop the queued items, join the thread (no error raised)."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._q.get_nowait()
            except queue.Empty:
                self._thread.join(timeout=_POLL_S)
        self._thread.join()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
