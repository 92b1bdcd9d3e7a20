"""What the face stages know about one face."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from farm.faces.masks import FaceMask


@dataclass
class Face:
    """One detected face, in full-resolution frame pixels.

    bbox: float32 (x0, y0, x1, y1); score: detector confidence in [0, 1];
    kps: float32 5x2 (left eye, right eye, nose, left mouth, right mouth);
    embedding: raw recogniser embedding (float32 [512]) once computed, else None.
    mask: how the pasting stages blend it back (farm.faces.masks.FaceMask, set by the mask
    stage from the original frame), else None: the feathered box. scaled() and shifted()
    copies have none (they are made by detection, before masks).
    source: with --map, the index of this face's source among the job's source latents
    (farm.faces.mapping.FaceMap.latents, set by the select stage), else None: the job's one
    source.
    """

    bbox: np.ndarray
    score: float
    kps: np.ndarray
    embedding: np.ndarray | None = None
    mask: "FaceMask | None" = None
    source: int | None = None

    def __post_init__(self) -> None:
        self.bbox = np.asarray(self.bbox, dtype=np.float32).reshape(4)
        self.kps = np.asarray(self.kps, dtype=np.float32).reshape(5, 2)
        self.score = float(self.score)

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        w, h = self.bbox[2] - self.bbox[0], self.bbox[3] - self.bbox[1]
        return float(max(w, 0.0) * max(h, 0.0))

    def scaled(self, factor: float) -> "Face":
        """The same face with coordinates multiplied by factor (e.g. 1/scale)."""
        return Face(self.bbox * factor, self.score, self.kps * factor, self.embedding, source=self.source)

    def shifted(self, dx: float, dy: float) -> "Face":
        """The same face with (dx, dy) pixels added to its coordinates (a crop's origin)."""
        offset = np.array([dx, dy], np.float32)
        return Face(self.bbox + np.tile(offset, 2), self.score, self.kps + offset, self.embedding,
                    source=self.source)
