"""Assemble the face stages of a job: detect -> select -> swap -> enhance (optional).

Swap and enhance paste their results back themselves; a frame with no selected face
goes through without any region being converted and stays untouched.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from farm.faces.detect import DetectStage, Detector, build_detector, detector_for_session
from farm.faces.enhance import EnhanceStage
from farm.faces.identity import compute_identity
from farm.faces.options import validate_options
from farm.faces.select import SelectStage
from farm.faces.swap import SwapStage, emap_latent, load_emap
from farm.pipeline.stage import StageChain


def _session(sessions: Any, role: str) -> Any:
    if isinstance(sessions, Mapping):
        if role not in sessions:
            raise ValueError(f"no {role!r} session given")
        return sessions[role]
    return sessions.session(role)


def _detector(sessions: Any, min_score: float, choice: str = "auto") -> Detector:
    """A Detector from a pack, or from a mapping holding a Detector or detector sessions.

    choice: the `detector` face option (auto | scrfd | yunet). A mapping may hold a
    'detector_yunet' session for yunet; else its 'detector' entry is used.
    """
    if not isinstance(sessions, Mapping):
        return build_detector(sessions, min_score, choice)
    if choice == "yunet" and "detector_yunet" in sessions:
        return detector_for_session(sessions["detector_yunet"], min_score, yunet=True)
    given = _session(sessions, "detector")
    if hasattr(given, "detect"):
        return given
    return detector_for_session(given, min_score, yunet={"yunet": True, "scrfd": False}.get(choice))


def latent_for_pack(identity: np.ndarray, pack: Any) -> np.ndarray:
    """The swapper's source latent for an identity (raw mean embedding) and a model pack."""
    return emap_latent(identity, load_emap(pack.path("swapper")))


def build_chain(
    options: Mapping[str, Any],
    sessions: Any,
    source_latent: np.ndarray,
    reference_embedding: np.ndarray | None = None,
) -> StageChain:
    """The StageChain [detect, select, swap, enhance?] for validated face options.

    sessions: a model pack (with .session(role)) or a mapping role -> session (the
    'detector' entry may also be a ready Detector). source_latent: float32 [512] from
    emap_latent. reference_embedding: raw embedding for faces=reference; computed from
    options['reference'] (an image path) when not given.
    """
    opts = validate_options(dict(options))
    detector = _detector(sessions, opts["min_score"], opts["detector"])
    stages: list[Any] = [DetectStage(detector, opts["detect_max_side"], opts["min_score"])]
    if opts["faces"] == "reference":
        recognizer = _session(sessions, "recognizer")
        if reference_embedding is None:
            if opts["reference"] is None:
                raise ValueError("faces=reference with reference_frame: pass reference_embedding "
                                 "(identity.reference_from_frame)")
            reference_embedding = compute_identity([opts["reference"]], detector, recognizer)
        stages.append(SelectStage("reference", reference_embedding, opts["similarity"], recognizer))
    else:
        stages.append(SelectStage(opts["faces"]))
    stages.append(SwapStage(_session(sessions, "swapper"), source_latent))
    if opts["enhance"] and opts["enhance_blend"] > 0:
        stages.append(EnhanceStage(_session(sessions, "enhancer"), opts["enhance_blend"]))
    return StageChain(stages)
