"""Pixel boost: run a swapper of native size M on a face aligned at P = n * M pixels.

Why: inswapper_128 sees a face at 128 x 128 pixels, so a face that covers 500 frame
pixels comes back blurred when the 128 px result is warped up to 500 px. Pixel boost
(FaceFusion, Rope, VisoMaster, roop-unleashed; shared/reference.md section 5) aligns the
face at P x P instead, splits that crop into n * n polyphase sub-images of M x M
(sub-image (i, j) = crop[i::n, j::n], a pixel-unshuffle; each is the whole face,
sampled at a 1/n pixel offset), runs each through the swapper with the same source, and
re-interleaves the results (a pixel-shuffle) into P x P. It is not spatial tiling: every
run sees the whole face. Cost: n * n swapper runs per face (16 at P = 512 for M = 128).

Units: every size here is in pixels of the square aligned crop (crop px) unless it says
frame px; `n` is the whole factor P / M. Images are H x W x C arrays (any dtype).
"""

from __future__ import annotations

import math

import numpy as np

BOOST_SIZES = (128, 256, 384, 512, 768, 1024)
"""The crop sizes (crop px) a job may ask for; a model takes those that are multiples of its size."""
MAX_BOOST = 1024
"""The largest crop `auto` picks (crop px): 64 swapper runs per face for inswapper_128."""
NATIVE, AUTO = "native", "auto"
"""The option's words: the swapper's own size (the default), or a size per face."""
CHOICES = (NATIVE, AUTO, *(str(s) for s in BOOST_SIZES))


def allowed_sizes(native: int) -> tuple[int, ...]:
    """The boost sizes (crop px) a swapper of `native` px takes: native itself, then every
    size of BOOST_SIZES that is a larger multiple of it."""
    return (native, *(s for s in BOOST_SIZES if s > native and s % native == 0))


def size_problem(size: int, native: int) -> str | None:
    """Why a boost of `size` crop px does not fit a swapper of `native` px, or None."""
    if size < native:
        return f"{size} px is below the swapper's native size of {native} px"
    if size % native:
        return f"{size} px is not a multiple of the swapper's native size of {native} px"
    return None


def factor(size: int, native: int) -> int:
    """n = size / native, the sub-images per side; ValueError when size does not fit."""
    problem = size_problem(size, native)
    if problem:
        raise ValueError(f"pixel boost: {problem}")
    return size // native


def unshuffle(crop: np.ndarray, n: int) -> np.ndarray:
    """(n * n, P/n, P/n, C) polyphase sub-images of a P x P x C crop; index i * n + j is
    crop[i::n, j::n] (pixel-unshuffle, exact: it only moves values)."""
    p, w, c = crop.shape
    if p != w or p % n:
        raise ValueError(f"pixel boost: a {p}x{w} crop does not split into {n}x{n} sub-images")
    m = p // n
    return np.ascontiguousarray(crop.reshape(m, n, m, n, c).transpose(1, 3, 0, 2, 4).reshape(n * n, m, m, c))


def shuffle(subs: np.ndarray, n: int) -> np.ndarray:
    """The P x P x C crop whose sub-images (unshuffle) are `subs` (n * n, M, M, C), P = n * M
    (pixel-shuffle, the exact inverse of unshuffle)."""
    k, m, w, c = subs.shape
    if k != n * n or m != w:
        raise ValueError(f"pixel boost: {k} sub-images of {m}x{w} are not {n}x{n} square ones")
    return np.ascontiguousarray(subs.reshape(n, n, m, m, c).transpose(2, 0, 3, 1, 4).reshape(n * m, n * m, c))


def face_span(matrix: np.ndarray, size: int) -> float:
    """The face's size on the frame (frame px): the side of the region that a size x size
    aligned crop of `matrix` (2x3, frame px -> crop px, a similarity) covers, that is
    size / the alignment's scale. The scale is read from the matrix (sqrt of the
    determinant of its 2x2 part): the least-squares fit of the five landmarks (eyes,
    nose, mouth corners) onto the template, so it follows the eye and mouth span."""
    scale = math.sqrt(abs(float(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))
    return size / scale if scale > 0 else float("inf")


def auto_size(span: float, native: int) -> int:
    """The boost for a face `span` frame px across (face_span): the smallest allowed size
    >= span, so the crop has at least one crop px per frame px; at most MAX_BOOST (or the
    largest allowed size under it), at least `native`."""
    sizes = [s for s in allowed_sizes(native) if s <= max(MAX_BOOST, native)]
    return next((s for s in sizes if s >= span), sizes[-1])
