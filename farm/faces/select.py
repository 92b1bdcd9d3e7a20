"""Which detected faces get swapped: all, the largest, or those like a reference face; with
--map, each face to the source of the nearest reference (farm.faces.mapping)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from farm.errors import InputError
from farm.faces.mapping import KEEP, FaceMap
from farm.faces.options import Option
from farm.faces.recognise import cosine_similarity, embed_faces_of_frames, embed_frame_faces
from farm.faces.session_io import SessionLike
from farm.pipeline.frame import Frame
from farm.pipeline.stage import Stage

SELECT_MODES = ("all", "largest", "reference")
MAP_MODE = "map"
"""The mode of a job with --map (its `faces` option stays `all`)."""


class SelectStage(Stage):
    """Keeps in frame.faces only the faces to process.

    reference mode: faces whose cosine similarity to reference_embedding is at least
    similarity (0..1); faces without an embedding are embedded with recognizer.
    map mode (--map): every face gets the source of the nearest of face_map's references
    within similarity (Face.source), else the others source; a face with neither is dropped.
    """

    name = "select"
    options = {
        "faces": Option("choice", "all", "which faces to swap", choices=SELECT_MODES),
        "reference": Option("path", None, "image of the face to swap (faces=reference)", metavar="IMAGE"),
        "reference_frame": Option("int", None, "frame index holding the face to swap (faces=reference)",
                                  minimum=0),
        "similarity": Option("float", 0.35, "least cosine similarity to the reference face (with map: to a "
                             "mapping's reference)", minimum=0.0, maximum=1.0),
        "map": Option("pairs", None, "swap the person in REFERENCE (an image, e.g. a `farm faces` crop, or "
                      "FOLDER/person-N of a `farm faces` folder) to the face in SOURCE; repeat for each person; "
                      "stands for --source", metavar="REFERENCE=SOURCE"),
        "map_others": Option("path", KEEP, "with map: the face for everyone else (an image), or keep",
                             metavar="SOURCE|keep", words=(KEEP,)),
    }
    model_roles = ("recognizer",)
    batches = True

    def __init__(self, mode: str = "all", reference_embedding: np.ndarray | None = None,
                 similarity: float = 0.35, recognizer: SessionLike | None = None,
                 face_map: FaceMap | None = None) -> None:
        if mode not in SELECT_MODES + (MAP_MODE,):
            raise ValueError(f"unknown face selection mode {mode!r}")
        if mode == "reference" and (reference_embedding is None or recognizer is None):
            raise ValueError("reference mode needs a reference embedding and a recognizer")
        if mode == MAP_MODE and (face_map is None or recognizer is None):
            raise ValueError("map mode needs a face map and a recognizer")
        self.face_map = face_map
        self.mode = mode
        self.reference = None if reference_embedding is None else np.asarray(reference_embedding, np.float32)
        self.similarity = float(similarity)
        self.recognizer = recognizer

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """faces=reference takes exactly one of reference and reference_frame; other modes neither.
        map goes with faces=all only; map_others needs map."""
        if options.get("map") and options["faces"] != "all":
            raise InputError(f"option map (--map) swaps each person to their own source and goes with faces=all, "
                             f"not faces={options['faces']}",
                             hint="leave --faces out: faces like no --map reference follow --map-others")
        if not options.get("map") and options.get("map_others", KEEP) != KEEP:
            raise InputError("option map_others (--map-others) needs map (--map REFERENCE=SOURCE)")
        if options["faces"] == "reference":
            if (options["reference"] is None) == (options["reference_frame"] is None):
                raise InputError("option faces=reference needs exactly one of reference or reference_frame")
        elif options["reference"] is not None or options["reference_frame"] is not None:
            raise InputError(f"option reference/reference_frame needs faces=reference, not faces={options['faces']}")

    @classmethod
    def roles(cls, options: Mapping[str, Any], pack: Any) -> list[str]:
        """The recognizer, in reference and map mode only."""
        return list(cls.model_roles) if options["faces"] == "reference" or options.get("map") else []

    @classmethod
    def build(cls, inputs: Any) -> "SelectStage":
        opts = inputs.options
        if opts.get("map"):
            return cls(MAP_MODE, similarity=opts["similarity"], recognizer=inputs.session("recognizer"),
                       face_map=inputs.face_map())
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
        assert self.recognizer is not None
        embed_frame_faces(self.recognizer, frame, faces)
        self._choose(frame)
        return frame

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        """process() of several frames; in reference and map mode their faces are embedded together."""
        if self.mode not in ("reference", MAP_MODE):
            return [self.process(f) for f in frames]
        assert self.recognizer is not None
        embed_faces_of_frames(self.recognizer, [(f, list(f.faces)) for f in frames if f.faces])
        for frame in frames:
            self._choose(frame)
        return frames

    def _choose(self, frame: Frame) -> None:
        """Keep the faces like the reference, or (map mode) give each its source."""
        if self.mode != MAP_MODE:
            self._keep_similar(frame)
            return
        assert self.face_map is not None
        sources = self.face_map.assign([f.embedding for f in frame.faces], self.similarity)
        for face, source in zip(frame.faces, sources):
            face.source = source
        frame.faces = [f for f in frame.faces if f.source is not None]

    def _keep_similar(self, frame: Frame) -> None:
        assert self.reference is not None
        frame.faces = [
            f for f in frame.faces
            if f.embedding is not None and cosine_similarity(f.embedding, self.reference) >= self.similarity
        ]
