"""Decode a chunk's input segment into the chunk's frames, optionally in a thread.

`iter_chunk_frames` is a plain generator: it decodes the segment and yields, in
presentation order, only the frames the chunk owns (start_pts <= pts < end_pts); the
pre-roll frames are decoded and dropped, decoding stops at the first frame past the end.
`prefetch` runs any such iterator in a decode thread feeding a bounded queue, so decode
overlaps with processing and encoding (PyAV releases the GIL while decoding).
"""

from __future__ import annotations

import os
import queue
import threading
from fractions import Fraction
from typing import Iterator, TypeVar

import av

from farm.errors import MediaError
from farm.media.intermediate import open_read
from farm.media.plan import ChunkPlan

T = TypeVar("T")

#: Decoded frames waiting for the consumer. A 4K 10-bit frame is ~25 MB, so keep it
#: small; note that maxsize=0 would mean *unbounded* for queue.Queue.
PREFETCH_FRAMES = 4


def iter_chunk_frames(in_path: str | os.PathLike[str], plan: ChunkPlan) -> Iterator[av.VideoFrame]:
    """Yield the chunk's decoded frames in presentation order, with their original pts.

    Frames keep the segment's time base (`frame.time_base`); their pts equal the
    source's (see `source_ticks`). Each frame is writable: a frame the decoder still
    uses as a reference is copied first (make_writable), so pixels a stage writes can
    never leak into the frames decoded after it.
    """
    with open_read(in_path) as src:
        stream = src.streams.video[0]
        stream.thread_type = "AUTO"
        tb = Fraction(stream.time_base)
        last = None
        try:
            for frame in src.decode(stream):
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
                frame.make_writable()
                yield frame
        except av.FFmpegError as exc:
            raise MediaError(f"decoding {in_path} failed: {exc}") from None


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
