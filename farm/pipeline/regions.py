"""The only YUV <-> BGR conversions in the pipeline, limited to a region of a frame.

A box is (x0, y0, x1, y1) in full-resolution luma pixels, x1/y1 exclusive, inside the
frame. BGR images are uint8, 0..255. Chroma is upsampled by sample repetition (as
OpenCV's I420 conversion does) and written back as the mask-weighted mean of the
luma pixels that share a chroma sample, so a sample whose pixels all have mask 0
keeps its exact value. The small_* helpers shrink the planes first and convert only
the small image (for detection).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from farm.pipeline.frame import Frame

Box = tuple[int, int, int, int]

# (Kr, Kb) luma coefficients of each YUV matrix.
MATRICES: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
}


@lru_cache(maxsize=64)
def yuv_to_bgr_affine(colorspace: str, full_range: bool, bit_depth: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, b) with bgr_0_255 = A @ [Y, U, V] + b for integer code values of that depth."""
    if colorspace not in MATRICES:
        raise ValueError(f"unsupported colorspace {colorspace!r}")
    kr, kb = MATRICES[colorspace]
    kg = 1.0 - kr - kb
    step = float(1 << (bit_depth - 8))
    if full_range:
        y_off, y_scale, c_scale = 0.0, float((1 << bit_depth) - 1), float((1 << bit_depth) - 1)
    else:
        y_off, y_scale, c_scale = 16.0 * step, 219.0 * step, 224.0 * step
    c_off = float(1 << (bit_depth - 1))
    # normalised (Y' in 0..1, Pb/Pr in -0.5..0.5) -> R, G, B in 0..1
    to_rgb = np.array(
        [
            [1.0, 0.0, 2.0 * (1.0 - kr)],
            [1.0, -2.0 * (1.0 - kb) * kb / kg, -2.0 * (1.0 - kr) * kr / kg],
            [1.0, 2.0 * (1.0 - kb), 0.0],
        ]
    )
    norm = np.diag([1.0 / y_scale, 1.0 / c_scale, 1.0 / c_scale])
    a = 255.0 * to_rgb @ norm
    b = -a @ np.array([y_off, c_off, c_off])
    a, b = a[::-1].copy(), b[::-1].copy()  # RGB rows -> BGR rows
    return a, b


@lru_cache(maxsize=64)
def bgr_to_yuv_affine(colorspace: str, full_range: bool, bit_depth: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, b) with [Y, U, V] = A @ bgr_0_255 + b (the inverse of yuv_to_bgr_affine)."""
    a, b = yuv_to_bgr_affine(colorspace, full_range, bit_depth)
    inv = np.linalg.inv(a)
    return inv, -inv @ b


def _affine(frame: Frame, to_bgr: bool) -> tuple[np.ndarray, np.ndarray]:
    fn = yuv_to_bgr_affine if to_bgr else bgr_to_yuv_affine
    a, b = fn(frame.colorspace, bool(frame.full_range), frame.bit_depth)
    return a.astype(np.float32), b.astype(np.float32)


def _check_box(frame: Frame, box: Box) -> Box:
    x0, y0, x1, y1 = (int(v) for v in box)
    if not (0 <= x0 < x1 <= frame.width and 0 <= y0 < y1 <= frame.height):
        raise ValueError(f"box {box} is empty or outside the {frame.width}x{frame.height} frame")
    return x0, y0, x1, y1


def clip_box(box: tuple[float, float, float, float], width: int, height: int) -> Box | None:
    """Round a float box outwards and clip it to the frame; None if nothing is left."""
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def align_box(frame: Frame, box: Box) -> Box:
    """Expand a box to whole chroma samples (clipped to the frame)."""
    sx, sy = frame.chroma_subsampling
    x0, y0, x1, y1 = _check_box(frame, box)
    x0, y0 = x0 - x0 % sx, y0 - y0 % sy
    x1, y1 = min(frame.width, -(-x1 // sx) * sx), min(frame.height, -(-y1 // sy) * sy)
    return x0, y0, x1, y1


def _to_bgr(y: np.ndarray, u: np.ndarray, v: np.ndarray, frame: Frame) -> np.ndarray:
    """Convert same-sized Y, U, V arrays (code values) to uint8 BGR."""
    a, b = _affine(frame, to_bgr=True)
    yuv = cv2.merge([np.ascontiguousarray(p) for p in (y, u, v)])
    out = cv2.transform(yuv, np.hstack([a, b[:, None]]))  # same depth as the input, saturated
    return out if out.dtype == np.uint8 else np.minimum(out, 255).astype(np.uint8)


def read_bgr(frame: Frame, box: Box) -> np.ndarray:
    """The box of the frame as (y1-y0) x (x1-x0) x 3 uint8 BGR."""
    x0, y0, x1, y1 = _check_box(frame, box)
    sx, sy = frame.chroma_subsampling
    yp, up, vp = frame.planes[:3]
    ax0, ay0, ax1, ay1 = align_box(frame, (x0, y0, x1, y1))
    cx0, cy0, cx1, cy1 = ax0 // sx, ay0 // sy, -(-ax1 // sx), -(-ay1 // sy)
    u, v = up[cy0:cy1, cx0:cx1], vp[cy0:cy1, cx0:cx1]
    if (sx, sy) != (1, 1):   # sample repetition over the aligned box, then cut the box out
        aw, ah = (cx1 - cx0) * sx, (cy1 - cy0) * sy
        u = cv2.resize(u, (aw, ah), interpolation=cv2.INTER_NEAREST)
        v = cv2.resize(v, (aw, ah), interpolation=cv2.INTER_NEAREST)
        u = u[y0 - ay0:y1 - ay0, x0 - ax0:x1 - ax0]
        v = v[y0 - ay0:y1 - ay0, x0 - ax0:x1 - ax0]
    return _to_bgr(yp[y0:y1, x0:x1], u, v, frame)


def _block_mean(a: np.ndarray, sy: int, sx: int) -> np.ndarray:
    """Mean over sy x sx blocks (edge-replicated to whole blocks)."""
    if sy == sx == 1:
        return a
    h, w = a.shape[:2]
    ph, pw = -h % sy, -w % sx
    if ph or pw:
        pad = [(0, ph), (0, pw)] + [(0, 0)] * (a.ndim - 2)
        a = np.pad(a, pad, mode="edge")
    total = sum(a[dy::sy, dx::sx] for dy in range(sy) for dx in range(sx))
    return total * (1.0 / (sy * sx))


def _block_mean_fast(a: np.ndarray, sy: int, sx: int) -> np.ndarray:
    """_block_mean, by OpenCV's area resize when the array is whole blocks (exact there)."""
    h, w = a.shape[:2]
    if (sy, sx) != (1, 1) and h % sy == 0 and w % sx == 0:
        return cv2.resize(a, (w // sx, h // sy), interpolation=cv2.INTER_AREA)
    return _block_mean(a, sy, sx)


def _weighted_sum(channels: list[np.ndarray], weights: np.ndarray, offset: float) -> np.ndarray:
    """float32 w0 * c0 + w1 * c1 + w2 * c2 + offset of three same-sized planes (OpenCV, no 3-channel float copy)."""
    part = cv2.addWeighted(channels[0], float(weights[0]), channels[1], float(weights[1]), offset, dtype=cv2.CV_32F)
    return cv2.scaleAdd(channels[2].astype(np.float32), float(weights[2]), part)


def _round_to(values: np.ndarray, dtype: np.dtype, maxv: float) -> np.ndarray:
    """Round to the nearest code value and clip to 0..maxv, as `dtype`."""
    if dtype == np.uint8:
        return cv2.convertScaleAbs(np.maximum(values, 0.0, out=values))   # rounds and saturates at 255
    return np.clip(np.rint(values), 0, maxv).astype(dtype)


def _support(m: np.ndarray) -> Box | None:
    """The tight box (x0, y0, x1, y1) of mask > 0 inside m, or None if the mask is all 0."""
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def write_bgr(frame: Frame, box: Box, bgr: np.ndarray, mask: np.ndarray) -> None:
    """Blend a BGR patch (the box's size) into the frame's planes, weighted by mask.

    mask: float32 HxW in [0, 1]. Luma samples with mask 0, chroma samples whose
    luma pixels all have mask 0, and everything outside the box keep their exact
    values. Sets frame.touched.

    Cost (bench/bench_face_ms.py): only the mask's support is converted; luma is one
    transform row at full resolution, and chroma is computed at chroma resolution from
    the block means of mask * BGR (the conversion is affine, so the mean of the
    converted values is the conversion of the mean).
    """
    x0, y0, x1, y1 = _check_box(frame, box)
    h, w = y1 - y0, x1 - x0
    if bgr.shape[:2] != (h, w) or mask.shape[:2] != (h, w):
        raise ValueError(f"patch {bgr.shape[:2]} / mask {mask.shape[:2]} do not match box {h}x{w}")
    m = np.clip(mask.astype(np.float32, copy=False), 0.0, 1.0)
    tight = _support(m)
    if tight is None:
        return
    ax0, ay0, ax1, ay1 = align_box(frame, (x0 + tight[0], y0 + tight[1], x0 + tight[2], y0 + tight[3]))
    pad = ((max(0, y0 - ay0), max(0, ay1 - y1)), (max(0, x0 - ax0), max(0, ax1 - x1)))
    if any(pad[0]) or any(pad[1]):   # whole chroma samples reach past the box: mask 0 there
        m = np.pad(m, pad)
        bgr = np.pad(bgr, pad + ((0, 0),), mode="edge")
        x0, y0 = x0 - pad[1][0], y0 - pad[0][0]
    m = np.ascontiguousarray(m[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0])
    channels = cv2.split(np.ascontiguousarray(bgr[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0]))   # B, G, R
    a, b = _affine(frame, to_bgr=False)
    maxv = float((1 << frame.bit_depth) - 1)
    sx, sy = frame.chroma_subsampling
    yp, up, vp = frame.planes[:3]

    # luma: old + m * (new - old); where m == 0 that is old exactly
    new_y = _weighted_sum(channels, a[0], float(b[0]))
    old_y = yp[ay0:ay1, ax0:ax1]
    blend = new_y - old_y
    blend *= m
    blend += old_y
    old_y[...] = _round_to(blend, yp.dtype, maxv)

    # chroma: mean over each sample's pixels of (m * new + (1 - m) * old)
    #       = A_c @ mean(m * bgr) + b_c * cm + (1 - cm) * old, cm = mean(m)
    cm = _block_mean_fast(m, sy, sx)
    means = [_block_mean_fast(cv2.multiply(ch, m, dtype=cv2.CV_32F), sy, sx) for ch in channels]
    cy0, cx0 = ay0 // sy, ax0 // sx
    cy1, cx1 = cy0 + cm.shape[0], cx0 + cm.shape[1]
    for k, plane in ((1, up), (2, vp)):
        old_c = plane[cy0:cy1, cx0:cx1]
        mixed = a[k, 0] * means[0] + a[k, 1] * means[1] + a[k, 2] * means[2] + b[k] * cm
        mixed += (1.0 - cm) * old_c
        old_c[...] = _round_to(mixed, plane.dtype, maxv)
    frame.touched = True


def _small_size(frame: Frame, max_side: int) -> tuple[int, int, float]:
    scale = min(1.0, float(max_side) / max(frame.width, frame.height))
    return max(1, round(frame.width * scale)), max(1, round(frame.height * scale)), scale


DECIMATE_ABOVE = 4
"""Shrinking by more than this, a plane is first sampled down to twice the target size, so
that area averaging reads ~4 input pixels per output pixel instead of all of a 4K frame
(~9 ms -> ~1 ms for 4K to 320 px); good enough for a detector's copy."""


def resize_plane(plane: np.ndarray, w: int, h: int) -> np.ndarray:
    """One plane resized to w x h (as the small_* copies are made), same dtype."""
    return _resize_to(plane, w, h)


def _resize_to(plane: np.ndarray, w: int, h: int) -> np.ndarray:
    """Resize a plane to w x h: area averaging when shrinking, bilinear otherwise."""
    if plane.shape[1] == w and plane.shape[0] == h:
        return plane
    shrink = plane.shape[1] >= w and plane.shape[0] >= h
    if shrink and min(plane.shape[1] / w, plane.shape[0] / h) > DECIMATE_ABOVE:
        plane = cv2.resize(plane, (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST)
    return cv2.resize(plane, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def small_bgr(frame: Frame, max_side: int) -> tuple[np.ndarray, float]:
    """A BGR copy whose longer side is at most max_side; full-res coords = small / scale."""
    w, h, scale = _small_size(frame, max_side)
    y, u, v = (_resize_to(p, w, h) for p in frame.planes[:3])
    return _to_bgr(y, u, v, frame), scale


def small_gray(frame: Frame, max_side: int) -> tuple[np.ndarray, float]:
    """Luma only, full-range uint8, longer side at most max_side; coords = small / scale."""
    w, h, scale = _small_size(frame, max_side)
    y = _resize_to(frame.planes[0], w, h).astype(np.float32)
    step = float(1 << (frame.bit_depth - 8))
    if frame.full_range:
        g = y * (255.0 / ((1 << frame.bit_depth) - 1))
    else:
        g = (y - 16.0 * step) * (255.0 / (219.0 * step))
    return np.clip(np.rint(g), 0, 255).astype(np.uint8), scale
