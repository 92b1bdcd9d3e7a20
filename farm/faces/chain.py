"""Assemble the face stages of a job from the registry (farm.faces.stages), in its order:
detect -> select -> swap -> enhance (when wanted) today.

Each stage builds itself from a ChainInputs: the validated options, the model sessions
and the identities saved at submit. Swap and enhance paste their results back
themselves; a frame with no selected face goes through without any region being
converted and stays untouched.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from farm.faces import stages
from farm.faces.detect import Detector, build_detector, detector_for_session
from farm.faces.identity import compute_identity
from farm.faces.mapping import FaceMap
from farm.faces.options import FACE_OPTIONS
from farm.faces.swap import source_latent, swapper_key
from farm.models.conventions import KINDS, ROLE_KINDS, Conventions, conventions
from farm.pipeline.stage import StageChain


def latent_for_pack(identity: np.ndarray, pack: Any, options: Mapping[str, Any] | None = None) -> np.ndarray:
    """The source input of the job's swapper (the `swapper` option of `options`, else the
    pack's default) for an identity (raw mean embedding), by that swapper's convention."""
    return source_latent(identity, pack, swapper_key(options or {}))


class ChainInputs:
    """What a stage may build itself from: options, sessions by role, the detector, identities.

    sessions: a model pack (with .session(role)) or a mapping role -> session (its
    'detector' entry may also be a ready Detector, a 'detector_yunet' entry serves
    detector=yunet). source_latent: float32 [512] from emap_latent. face_map: a --map
    job's references and sources (farm.faces.mapping), as saved at submit.
    """

    def __init__(self, options: Mapping[str, Any], sessions: Any, source_latent: np.ndarray,
                 reference_embedding: np.ndarray | None = None, face_map: FaceMap | None = None) -> None:
        self.options = options
        self._face_map = face_map
        self.sessions = sessions
        self.source_latent = source_latent
        self._reference = reference_embedding
        self._detector: Detector | None = None

    def session(self, role: str) -> Any:
        """The session of a manifest role; ValueError naming a role a mapping lacks."""
        if isinstance(self.sessions, Mapping):
            if role not in self.sessions:
                raise ValueError(f"no {role!r} session given")
            return self.sessions[role]
        return self.sessions.session(role)

    def feeding(self, key: str) -> Conventions:
        """How to feed the model `key` (name or role): from its manifest entry in a pack;
        for a mapping of sessions, the conventions its role implies (inswapper, GFPGAN)."""
        if isinstance(self.sessions, Mapping):
            return KINDS[ROLE_KINDS[key]]
        return conventions(self.sessions.entry(key))

    def detector(self) -> Detector:
        """The detector the `detector` option picks (made once per chain)."""
        if self._detector is None:
            self._detector = self._make_detector()
        return self._detector

    def _make_detector(self) -> Detector:
        min_score, choice = self.options["min_score"], self.options["detector"]
        if not isinstance(self.sessions, Mapping):
            return build_detector(self.sessions, min_score, choice)
        if choice == "yunet" and "detector_yunet" in self.sessions:
            return detector_for_session(self.sessions["detector_yunet"], min_score, yunet=True)
        given = self.session("detector")
        if hasattr(given, "detect"):
            return given
        return detector_for_session(given, min_score, yunet={"yunet": True, "scrfd": False}.get(choice))

    def reference_embedding(self) -> np.ndarray:
        """The raw embedding of the reference face: the one given, else computed from the
        `reference` image (a job's workers always get the one saved at submit)."""
        if self._reference is None:
            if self.options["reference"] is None:
                raise ValueError("faces=reference with reference_frame: pass reference_embedding "
                                 "(identity.reference_from_frame)")
            self._reference = compute_identity([self.options["reference"]], self.detector(),
                                               self.session("recognizer"))
        return self._reference

    def face_map(self) -> FaceMap:
        """A --map job's FaceMap (ValueError when none was given: it is computed at submit)."""
        if self._face_map is None:
            raise ValueError("a job with map needs its face map (farm.faces.mapping.prepare_map, at submit)")
        return self._face_map


def build_chain(
    options: Mapping[str, Any],
    sessions: Any,
    source_latent: np.ndarray,
    reference_embedding: np.ndarray | None = None,
    face_map: FaceMap | None = None,
) -> StageChain:
    """The StageChain of the registered stages a job with these face options runs.

    options: the job's face options as validated at submit and stored with the job; they
    are not checked again here, only an option added since the job was stored gets its
    default. See ChainInputs for the rest.
    """
    stored = {name: option.default for name, option in FACE_OPTIONS.items()} | dict(options)
    inputs = ChainInputs(stored, sessions, source_latent, reference_embedding, face_map)
    return StageChain(stage.build(inputs) for stage in stages.wanted_stages(inputs.options))
