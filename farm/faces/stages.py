"""The registry of face stages: one list, in chain order.

Everything about a job's face work that depends on which stages exist is derived from
FACE_STAGES: the option table (farm.faces.options.FACE_OPTIONS) and its validation, the
chain a worker runs (farm.faces.chain.build_chain), the model roles a job needs and
the label stored with it (required_roles, face_label). A new stage is one module with
a Stage subclass plus one entry in this list.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from farm.faces.detect import DetectStage, detector_role
from farm.faces.enhance import EnhanceStage
from farm.faces.mask_stage import MaskStage
from farm.faces.options import Option
from farm.faces.select import SelectStage
from farm.faces.swap import SwapStage
from farm.faces.tracking import TrackStage
from farm.pipeline.stage import Stage

FACE_STAGES: list[type[Stage]] = [DetectStage, SelectStage, TrackStage, MaskStage, SwapStage, EnhanceStage]
"""Every face stage, in the order a frame goes through them."""


def registered() -> list[type[Stage]]:
    """The stage classes now registered (read at each call, so tests may add one)."""
    return list(FACE_STAGES)


def face_options() -> dict[str, Option]:
    """name -> Option of every registered stage, in chain order, each naming its stage.

    ValueError when two stages declare the same option: each is declared once."""
    table: dict[str, Option] = {}
    for stage in registered():
        for name, option in stage.options.items():
            if name in table:
                raise ValueError(f"option {name!r} is declared by stage {table[name].stage!r} and {stage.name!r}")
            table[name] = replace(option, stage=stage.name)
    return table


def wanted_stages(options: Mapping[str, Any]) -> list[type[Stage]]:
    """The registered stages a job with these validated options runs, in chain order."""
    return [stage for stage in registered() if stage.wanted(options)]


def required_roles(options: Mapping[str, Any], pack: Any) -> list[str]:
    """The manifest roles a job needs from `pack`, in chain order, each once."""
    roles: dict[str, None] = {}
    for stage in wanted_stages(options):
        roles.update(dict.fromkeys(stage.roles(options, pack)))
    return list(roles)


def check_models(options: Mapping[str, Any], pack: Any) -> None:
    """InputError when a wanted stage's options do not fit `pack`'s models (at submit)."""
    for stage in wanted_stages(options):
        stage.check_models(options, pack)


def face_label(options: Mapping[str, Any], pack: Any, pack_ref: str) -> dict[str, Any]:
    """What a face job stores about its models (job.models): the pack's label for the
    required roles (with the Haar cascade as the detector where the pack uses it), the
    names of the stages that change pixels, and `pack_ref`, the pack workers load.
    `stage_labels` (only where some differ): name -> how the label names a stage whose
    options change what it does (Stage.label: `swap (pixel boost 512)`)."""
    haar = detector_role(pack, options["detector"]) is None
    label = dict(pack.label(required_roles(options, pack), haar=haar), pack_ref=str(pack_ref))
    altering = [stage for stage in wanted_stages(options) if stage.alters]
    label["stages"] = [stage.name for stage in altering]
    named = {stage.name: stage.label(options, pack) for stage in altering}
    if any(text != name for name, text in named.items()):
        label["stage_labels"] = {name: text for name, text in named.items() if text != name}
    return label
