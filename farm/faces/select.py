"""Which detected faces get swapped: all, the largest, or those like a reference face."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from farm.errors import InputError
from farm.faces.options import Option
from farm.faces.recognise import cosine_similarity, embed_faces_of_frames, embed_frame_faces
from farm.faces.session_io import SessionLike
from farm.pipeline.frame import Frame
from farm.pipeline.stage import Stage

SELECT_MODES = ("all", "largest", "reference")


class SelectStage(Stage):
    """Keeps in frame.faces only the faces to process.

    reference mode: faces whose cosine similarity to reference_embedding is at least
    similarity (0..1); faces without an embedding are embedded with recognizer.
    """

    name = "select"
    options = {
        "faces": Option("choice", "all", "which faces to swap", choices=SELECT_MODES),
        "reference": Option("path", None, "image of the face to swap (faces=reference)", metavar="IMAGE"),
        "reference_frame": Option("int", None, "frame index holding the face to swap (faces=reference)",
                                  minimum=0),
        "similarity": Option("float", 0.35, "least cosine similarity to the reference face",
                             minimum=0.0, maximum=1.0),
    }
    model_roles = ("recognizer",)
    batches = True

    def __init__(self, mode: str = "all", reference_embedding: np.ndarray | None = None,
                 similarity: float = 0.35, recognizer: SessionLike | None = None) -> None:
        if mode not in SELECT_MODES:
            raise ValueError(f"unknown face selection mode {mode!r}")
        if mode == "reference" and (reference_embedding is None or recognizer is None):
            raise ValueError("reference mode needs a reference embedding and a recognizer")
        self.mode = mode
        self.reference = None if reference_embedding is None else np.asarray(reference_embedding, np.float32)
        self.similarity = float(similarity)
        self.recognizer = recognizer

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """faces=reference takes exactly one of reference and reference_frame; other modes neither."""
        if options["faces"] == "reference":
            if (options["reference"] is None) == (options["reference_frame"] is None):
                raise InputError("option faces=reference needs exactly one of reference or reference_frame")
        elif options["reference"] is not None or options["reference_frame"] is not None:
            raise InputError(f"option reference/reference_frame needs faces=reference, not faces={options['faces']}")

    @classmethod
    def roles(cls, options: Mapping[str, Any], pack: Any) -> list[str]:
        """The recognizer, in reference mode only."""
        return list(cls.model_roles) if options["faces"] == "reference" else []

    @classmethod
    def build(cls, inputs: Any) -> "SelectStage":
        opts = inputs.options
        if opts["faces"] != "reference":
            return cls(opts["faces"])
        recognizer = inputs.session("recognizer")
        return cls("reference", inputs.reference_embedding(), opts["similarity"], recognizer)

    def process(self, frame: Frame) -> Frame:
        faces = list(frame.faces)
        if not faces or self.mode == "all":
            return frame
        if self.mode == "largest":
            frame.faces = [max(faces, key=lambda f: f.area)]
            return frame
        assert self.recognizer is not None and self.reference is not None
        embed_frame_faces(self.recognizer, frame, faces)
        self._keep_similar(frame)
        return frame

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        """process() of several frames; in reference mode their faces are embedded together."""
        if self.mode != "reference":
            return [self.process(f) for f in frames]
        assert self.recognizer is not None
        embed_faces_of_frames(self.recognizer, [(f, list(f.faces)) for f in frames if f.faces])
        for frame in frames:
            self._keep_similar(frame)
        return frames

    def _keep_similar(self, frame: Frame) -> None:
        assert self.reference is not None
        frame.faces = [
            f for f in frame.faces
            if f.embedding is not None and cosine_similarity(f.embedding, self.reference) >= self.similarity
        ]
