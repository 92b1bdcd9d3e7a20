"""Small helpers around injected session-like objects.

A session is anything with run(output_names, feed) -> list of arrays and
get_inputs()/get_outputs() returning objects with .name, .shape and .type (an
onnxruntime.InferenceSession, or a stand-in in tests).
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np


class SessionLike(Protocol):
    def run(self, output_names: Sequence[str] | None, feed: dict[str, np.ndarray]) -> list[np.ndarray]: ...

    def get_inputs(self) -> list[Any]: ...

    def get_outputs(self) -> list[Any]: ...


def input_dtype(node: Any) -> type:
    """numpy dtype of an input node: float16 or float64 (CodeFormer's weight) where the
    model declares it ('tensor(float16)', 'tensor(double)'), else float32."""
    declared = str(getattr(node, "type", ""))
    return np.float16 if "float16" in declared else np.float64 if "double" in declared else np.float32


def run(session: SessionLike, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run with each input cast to the dtype the model declares; outputs as float32."""
    types = {n.name: input_dtype(n) for n in session.get_inputs()}
    cast = {k: np.ascontiguousarray(v, dtype=types.get(k, np.float32)) for k, v in feed.items()}
    return [np.asarray(o, dtype=np.float32) for o in session.run(None, cast)]


def input_size(session: SessionLike, default: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of the first input if fixed, else default."""
    shape = list(session.get_inputs()[0].shape)
    h, w = (shape[2], shape[3]) if len(shape) == 4 else (None, None)
    if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
        return w, h
    return default


def fixed_batch(session: SessionLike) -> int | None:
    """The first input's batch size if the model fixes it, else None (dynamic)."""
    b = list(session.get_inputs()[0].shape)[0]
    return b if isinstance(b, int) and b > 0 else None


def to_blob(images: Sequence[np.ndarray], mean: float, std: float, rgb: bool = True) -> np.ndarray:
    """N x 3 x H x W float32 from HxWx3 uint8 BGR images: (x - mean) / std, RGB order if rgb."""
    arr = np.stack(images).astype(np.float32)
    if rgb:
        arr = arr[..., ::-1]
    arr = (arr - mean) / std
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))


def from_blob(blob: np.ndarray, lo: float, hi: float, rgb: bool = True) -> np.ndarray:
    """HxWx3 uint8 BGR from a 1x3xHxW (or 3xHxW) array whose range lo..hi maps to 0..255."""
    arr = np.asarray(blob, dtype=np.float32).reshape(3, *blob.shape[-2:]).transpose(1, 2, 0)
    arr = (arr - lo) * (255.0 / (hi - lo))
    if rgb:
        arr = arr[..., ::-1]
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def to_planes(images: Sequence[np.ndarray], mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """N x 3 x H x W float32 RGB planes from HxWx3 uint8 BGR images, per channel
    (rgb/255 - mean) / std (mean, std of R, G, B on the 0..1 scale); computed as
    (x - 255 mean) / (255 std), which equals to_blob's arithmetic where all three agree."""
    arr = np.stack(images).astype(np.float32)[..., ::-1]
    arr = (arr - np.float32(255.0) * np.asarray(mean, np.float32)) / (np.float32(255.0) * np.asarray(std, np.float32))
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))
