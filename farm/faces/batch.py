"""Run a stage chain over several frames at once, so faces can be batched across frames.

Stages are independent per frame, so running stage by stage over a list of frames
gives the same result as frame by frame. A stage with `process_batch(frames)` (detect,
and select in reference mode: models with a dynamic batch dimension) gets the whole
list; the others (swap and enhance: inswapper and GFPGAN exports are fixed batch 1)
see one frame at a time.
"""

from __future__ import annotations

from typing import Callable

from farm.pipeline.frame import Frame
from farm.pipeline.stage import StageChain


def process_frames(chain: StageChain, frames: list[Frame]) -> list[Frame]:
    """The chain's result for each frame, in order."""
    for stage in chain.stages:
        batch = getattr(stage, "process_batch", None)
        frames = batch(frames) if batch is not None else [stage.process(f) for f in frames]
    return frames


def batch_processor(chain: StageChain) -> Callable[[list[Frame]], list[Frame]]:
    """process_frames bound to a chain: the `process_batch` argument of transcode_chunk."""
    return lambda frames: process_frames(chain, frames)
