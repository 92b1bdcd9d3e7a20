"""Face swap with inswapper_128: target crop [1,3,128,128] RGB 0..1 + source latent [1,512]."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from farm.faces.model_stage import FaceModelStage
from farm.faces.session_io import SessionLike, from_blob, run, to_blob

SWAP_SIZE = 128
SWAP_TEMPLATE = "arcface_128"


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if n == 0.0:
        raise ValueError("cannot normalise a zero vector")
    return v / n


def emap_latent(embedding: np.ndarray, emap: np.ndarray) -> np.ndarray:
    """float32 [512] source latent: normalise(normalise(e) @ emap) (insightface)."""
    e = np.asarray(embedding, np.float64).reshape(-1)
    return _unit(_unit(e) @ np.asarray(emap, np.float64)).astype(np.float32)


def load_emap(model_path: str | Path) -> np.ndarray:
    """The emap matrix of an inswapper model: its last graph initializer (512x512).

    Reading it means importing onnx (~1.5 s) and parsing the whole model (554 MB for the
    real one), at every submit. So it is kept beside the model in a hidden .npy named by
    the model's file name, size and mtime (a changed model file misses the cache); where
    that folder is read-only it is read from the model every time.
    """
    path = Path(model_path)
    st = path.stat()
    cache = path.with_name(f".{path.name}.{st.st_size}.{st.st_mtime_ns}.emap.npy")
    try:
        emap = np.load(cache, allow_pickle=False)
        if emap.shape == (512, 512):
            return emap
    except (OSError, ValueError):
        pass
    import onnx
    from onnx import numpy_helper

    emap = numpy_helper.to_array(onnx.load(str(path), load_external_data=False).graph.initializer[-1])
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, emap, allow_pickle=False)
        os.replace(tmp, cache)
    except OSError:   # a read-only models folder: no cache
        tmp.unlink(missing_ok=True)
    return emap


def _swap_inputs(session: SessionLike) -> tuple[str, str]:
    """(target name, source name): the 4-D input is the target, the 2-D one the source."""
    nodes = session.get_inputs()
    target = [n.name for n in nodes if len(n.shape) == 4]
    source = [n.name for n in nodes if len(n.shape) == 2]
    if len(target) != 1 or len(source) != 1:
        raise ValueError(f"swapper inputs {[n.name for n in nodes]} are not (target, source)")
    return target[0], source[0]


class SwapStage(FaceModelStage):
    """Swaps every face in frame.faces for the source latent, pasting each result back.

    Its roles: the swapper, and the recognizer that made the source identity at submit
    (the latent is the recognizer's embedding through the swapper's emap)."""

    name = "swap"
    model_roles = ("recognizer", "swapper")
    crop_size = SWAP_SIZE
    template = SWAP_TEMPLATE

    def __init__(self, session: SessionLike, latent: np.ndarray) -> None:
        self.session = session
        self.latent = np.asarray(latent, np.float32).reshape(1, -1)
        self.target_name, self.source_name = _swap_inputs(session)

    @classmethod
    def build(cls, inputs: Any) -> "SwapStage":
        return cls(inputs.session("swapper"), inputs.source_latent)

    def run_crop(self, crop_bgr: np.ndarray) -> np.ndarray:
        """The 128x128 BGR swapped face for an aligned 128x128 BGR crop."""
        feed = {self.target_name: to_blob([crop_bgr], 0.0, 255.0), self.source_name: self.latent}
        return from_blob(run(self.session, feed)[0], 0.0, 1.0)
