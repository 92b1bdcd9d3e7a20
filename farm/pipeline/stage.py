"""The stage contract: every step of the per-frame pipeline has this shape.

A stage gets its sessions and options injected at construction, is set up once per
chunk runner (`setup`), sees frames in presentation order (`process`, frame in ->
frame out, usually the same object) and is closed once (`close`). A stage that finds
nothing to do returns the frame untouched.
"""

from __future__ import annotations

from typing import Iterable

from farm.pipeline.frame import Frame


class Stage:
    """Base class with no-op hooks; subclasses override what they need."""

    name = "stage"

    def setup(self) -> None:
        """Load what the stage needs (called once, before the first frame)."""

    def process(self, frame: Frame) -> Frame:
        """Return the frame, changed in place or replaced."""
        return frame

    def close(self) -> None:
        """Release what setup took."""


class PassThrough(Stage):
    """Does nothing: the spine's default, and the baseline of the benchmarks."""

    name = "passthrough"


class StageChain:
    """Runs a list of stages in order on each frame."""

    def __init__(self, stages: Iterable[Stage]) -> None:
        self.stages = list(stages)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def setup(self) -> None:
        for stage in self.stages:
            stage.setup()

    def process(self, frame: Frame) -> Frame:
        for stage in self.stages:
            frame = stage.process(frame)
        return frame

    def close(self) -> None:
        for stage in reversed(self.stages):
            stage.close()

    def __enter__(self) -> "StageChain":
        self.setup()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
