"""The stage contract: every step of the per-frame pipeline has this shape.

A stage class declares what the rest of the farm derives from it: its `name`, the job
`options` it reads (rows of the option table, farm.faces.options), its `model_roles`
(roles of the model manifest), whether it `batches` (gains from seeing several frames
in one call) and whether it `alters` pixels (it is named in the output label). The
registry (farm.faces.stages) lists the classes in chain order; the chain, the required
models, option validation and the label come from there.

An instance gets its sessions and options injected at construction (`build`), is set up
once per chunk (`setup`), sees frames in presentation order (`process`, frame in ->
frame out, usually the same object; `process_batch` for several frames, a loop by
default) and is closed once (`close`). A stage that finds nothing to do returns the
frame untouched.

A stage that needs frames around the one it works on says so. `holds`: its process_batch
may hand back fewer frames than it was given, keeping the newest for look-ahead; they come
out, in order and each once, from later calls and from `flush()` at the end of the chunk
(the chain passes them on to the stages after it). `warms`: it keeps state from frame to
frame and wants context frames around each chunk: `warm_frames` before its first one,
`tail_frames` after its last (planned at submit by farm.media.plan). Those have a negative
Frame.index, go through the stages up to the last one that warms, and are then dropped: no
later stage sees them and they are never encoded (StageChain).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping

from farm.pipeline.frame import Frame

if TYPE_CHECKING:
    from farm.faces.options import Option


class Stage:
    """Base class with no-op hooks; subclasses override what they need."""

    name: ClassVar[str] = "stage"
    options: ClassVar[Mapping[str, "Option"]] = {}
    """The job options this stage reads, by name (declared here and nowhere else)."""
    model_roles: ClassVar[tuple[str, ...]] = ()
    """Manifest roles whose sessions the stage runs (see `roles` for choices made by options)."""
    batches: ClassVar[bool] = False
    """True when `process_batch` does better than a loop (a model with a dynamic batch)."""
    alters: ClassVar[bool] = False
    """True when the stage replaces pixels (its name goes into the output label)."""
    holds: ClassVar[bool] = False
    """True when process_batch may keep frames back for look-ahead (released later or by flush)."""
    warms: ClassVar[bool] = False
    """True when the stage wants context frames around a chunk (index < 0) for its state."""

    @classmethod
    def wanted(cls, options: Mapping[str, Any]) -> bool:
        """Whether a job with these validated options runs this stage."""
        return True

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Refuse (InputError) combinations of converted options that do not go together."""

    @classmethod
    def check_models(cls, options: Mapping[str, Any], pack: Any) -> None:
        """Refuse (InputError, at submit) options that the pack's models cannot serve."""

    @classmethod
    def label(cls, options: Mapping[str, Any], pack: Any) -> str:
        """How the output label names this stage for a job with these options (its name,
        or e.g. `swap (pixel boost 512)` where an option changes what it does)."""
        return cls.name

    @classmethod
    def roles(cls, options: Mapping[str, Any], pack: Any) -> list[str]:
        """The manifest roles this stage needs for a job with these options and this pack."""
        return list(cls.model_roles)

    @classmethod
    def warm_frames(cls, options: Mapping[str, Any], fps: float) -> int:
        """Frames before each chunk's first one this stage wants to see (a stage that warms)."""
        return 0

    @classmethod
    def tail_frames(cls, options: Mapping[str, Any], fps: float) -> int:
        """Frames after each chunk's last one this stage wants to see (look-ahead of a stage that warms)."""
        return 0

    @classmethod
    def build(cls, inputs: Any) -> "Stage":
        """An instance for one job; `inputs` gives options, sessions and identities
        (farm.faces.chain.ChainInputs)."""
        raise NotImplementedError(f"stage {cls.name!r} does not say how to build itself")

    def setup(self) -> None:
        """Load what the stage needs (called before each chunk's first frame)."""

    def process(self, frame: Frame) -> Frame:
        """Return the frame, changed in place or replaced."""
        return frame

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        """process() of several frames in order; stages whose models batch override it."""
        return [self.process(f) for f in frames]

    def flush(self) -> list[Frame]:
        """The frames a stage that `holds` still has, in order (the end of a chunk)."""
        return []

    def close(self) -> None:
        """Release what setup took."""


class PassThrough(Stage):
    """Does nothing: the spine's default, and the baseline of the benchmarks."""

    name = "passthrough"


@dataclass
class ChangeTally:
    """What a chain changed since its last setup: frames with a replaced face, faces, and
    (with --map) frames per mapping: {Face.source index as text: frames with that person changed}."""

    frames: int = 0
    faces: int = 0
    people: dict[str, int] = field(default_factory=dict)

    def add(self, frame: Frame) -> None:
        if frame.faces_changed:
            self.frames += 1
            self.faces += frame.faces_changed
        for source in frame.people_changed:
            self.people[str(source)] = self.people.get(str(source), 0) + 1


class StageChain:
    """Runs a list of stages in order on each frame, and tallies the faces they changed."""

    def __init__(self, stages: Iterable[Stage]) -> None:
        self.stages = list(stages)
        self.changed = ChangeTally()

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    @property
    def batches(self) -> bool:
        """True when some stage gains from several frames per call (face jobs) or needs
        them (a stage that holds frames: the chain must then run by process_batch + flush)."""
        return any(s.batches or s.holds for s in self.stages)

    @property
    def holds(self) -> bool:
        """True when process_batch may return fewer frames than given (see flush)."""
        return any(s.holds for s in self.stages)

    def _last_warming(self) -> int:
        return max((i for i, s in enumerate(self.stages) if s.warms), default=-1)

    def setup(self) -> None:
        self.changed = ChangeTally()
        for stage in self.stages:
            stage.setup()

    def process(self, frame: Frame) -> Frame:
        for stage in self.stages:
            frame = stage.process(frame)
        self.changed.add(frame)
        return frame

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        """The chain's result for each frame, in order, run stage by stage over the list.

        Without a stage that holds or warms this gives what frame-by-frame would, one result
        per frame. Warm frames (index < 0) are dropped after the last stage that warms (at
        once when none does); a stage that holds returns fewer frames, the rest come from
        later calls and from flush()."""
        last_warming = self._last_warming()
        if last_warming < 0:
            frames = [f for f in frames if f.index >= 0]
        for i, stage in enumerate(self.stages):
            if frames:
                frames = stage.process_batch(frames)
            if i == last_warming:
                frames = [f for f in frames if f.index >= 0]
        for frame in frames:
            self.changed.add(frame)
        return frames

    def flush(self) -> list[Frame]:
        """The frames the chain's stages still hold, run through the stages after each, in
        order (call once at the end of a chunk; [] for a chain whose stages hold nothing)."""
        last_warming = self._last_warming()
        carried: list[Frame] = []
        for i, stage in enumerate(self.stages):
            carried = (stage.process_batch(carried) if carried else []) + stage.flush()
            if i == last_warming:
                carried = [f for f in carried if f.index >= 0]
        for frame in carried:
            self.changed.add(frame)
        return carried

    def close(self) -> None:
        for stage in reversed(self.stages):
            stage.close()

    def __enter__(self) -> "StageChain":
        self.setup()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
