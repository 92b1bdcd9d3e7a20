"""The chunk codec's frame bookkeeping: which decoded frames are only context for the stages,
and the queue that hands the stage chain's results to the encoder by index, with their pts.

Context frames (ChunkPlan.warm_frames before the chunk's first frame, tail_frames after its
last, decoded for a stage that warms, farm.pipeline.stage) get negative indices (warm:
-warm_frames..-1; tail: -warm_frames-1 and down) and are never encoded; the chunk's own
frames 0..frame_count-1 must come back from the chain in order, each once. A chain whose
stages hold frames (look-ahead) may return fewer than it was given per call (`holding`).
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any, Callable

import av

from farm.errors import MediaError
from farm.media.decode import BackgroundSink, source_ticks
from farm.media.plan import ChunkPlan
from farm.pipeline.frame import Frame


def decode_plan(plan: ChunkPlan) -> ChunkPlan:
    """The plan the decoder selects frames by: from the first warm frame to the last tail frame."""
    if plan.warm_frames and plan.warm_start_pts is not None:
        plan = dataclasses.replace(plan, start_pts=plan.warm_start_pts)
    if plan.tail_frames:
        plan = dataclasses.replace(plan, end_pts=plan.tail_end_pts)
    return plan


def context_side(av_frame: Any, plan: ChunkPlan) -> int:
    """-1 for a frame decoded before the chunk's first one, 1 for one after its last (both
    only for the stages), 0 for the chunk's own frames."""
    if not plan.warm_frames and not plan.tail_frames:
        return 0
    pts = source_ticks(av_frame.pts, Fraction(av_frame.time_base), plan.time_base)
    if pts < plan.start_pts:
        return -1
    return 1 if plan.end_pts is not None and pts >= plan.end_pts else 0


class FrameQueue:
    """Runs the stage chain on decoded frames and queues the chunk's own pictures for the
    encoder, each with its source pts, in presentation order."""

    def __init__(self, sink: "BackgroundSink[av.VideoFrame]", process: Callable[[Frame], Frame],
                 process_batch: Callable[[list[Frame]], list[Frame]] | None, holding: bool) -> None:
        self.sink, self.process, self.process_batch, self.holding = sink, process, process_batch, holding
        self.times: dict[int, tuple[int, Any]] = {}   # index -> (source pts, time base), not yet queued
        self.done = 0

    def hold(self, frame: Frame, av_frame: Any) -> Frame:
        if frame.index >= 0:
            self.times[frame.index] = (av_frame.pts, av_frame.time_base)
        return frame

    def run(self, frames: list[Frame]) -> None:
        results = self.process_batch(frames) if self.process_batch is not None else [self.process(f) for f in frames]
        if self.holding:
            self.put(results)
            return
        if len(results) != len(frames):
            raise MediaError(f"the stage chain returned {len(results)} frames for {len(frames)}")
        for given, result in zip(frames, results):   # one result per frame given, by position
            if given.index >= 0:
                self._queue(given.index, result)

    def put(self, results: list[Frame]) -> None:
        """Queue the results of a chain that holds frames: each by its own index, in order."""
        for result in results:
            if result.index >= 0:   # a warm frame that came back is never encoded
                self._queue(result.index, result)

    def _queue(self, index: int, result: Frame) -> None:
        if index != self.done or index not in self.times:
            raise MediaError(f"the stage chain returned frame {index} where frame {self.done} was due")
        pts, tb = self.times.pop(index)
        encoded = result.av_frame
        encoded.pts, encoded.time_base = pts, tb
        self.sink.put(encoded)
        self.done += 1
