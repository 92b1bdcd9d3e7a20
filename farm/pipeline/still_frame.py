"""A still image as the pipeline's one frame representation, and back.

An image's RGB becomes a full-range BT.601 yuv444p Frame (no chroma subsampling, so a
face's pixels convert back at full resolution); after the stages, only the pixels whose
Y, U or V a stage changed are converted back to RGB: every other pixel keeps the input's
RGB exactly (the round trip through YUV is never applied to them)."""

from __future__ import annotations

import numpy as np

from farm.pipeline.frame import Frame
from farm.pipeline.regions import bgr_to_yuv_affine, yuv_to_bgr_affine

STILL_PIX_FMT = "yuvj444p"
STILL_COLORSPACE = "bt601"


def frame_from_rgb(rgb: np.ndarray, index: int = 0) -> Frame:
    """H x W x 3 uint8 RGB -> a Frame whose planes are new arrays (full range, BT.601, 4:4:4)."""
    a, b = bgr_to_yuv_affine(STILL_COLORSPACE, True, 8)
    bgr = rgb[..., ::-1].astype(np.float32)
    yuv = bgr @ a.T.astype(np.float32) + b.astype(np.float32)
    planes = [np.ascontiguousarray(np.clip(np.rint(yuv[..., k]), 0, 255).astype(np.uint8)) for k in range(3)]
    return Frame.from_arrays(planes, STILL_PIX_FMT, index=index, colorspace=STILL_COLORSPACE, full_range=True)


def rgb_from_frame(frame: Frame, before: Frame, rgb: np.ndarray) -> np.ndarray:
    """`rgb` (the image the frame was made from) with the pixels the stages changed in
    `frame` (compared with `before`, a copy of its planes) converted back from YUV."""
    changed = np.zeros(rgb.shape[:2], bool)
    for now, was in zip(frame.planes, before.planes, strict=True):
        changed |= now != was
    out = rgb.copy()
    if not changed.any():
        return out
    a, b = yuv_to_bgr_affine(STILL_COLORSPACE, True, 8)
    yuv = np.stack([p[changed] for p in frame.planes], axis=1).astype(np.float32)
    bgr = yuv @ a.T.astype(np.float32) + b.astype(np.float32)
    out[changed] = np.clip(np.rint(bgr[:, ::-1]), 0, 255).astype(np.uint8)
    return out


def copy_planes(frame: Frame) -> Frame:
    """The frame's planes copied (what rgb_from_frame compares against)."""
    return Frame.from_arrays([p.copy() for p in frame.planes], frame.pix_fmt, colorspace=frame.colorspace,
                             full_range=frame.full_range)
