"""A skin-tone gate for the demo pack's Haar detector: scan only where a face could be.

A full Haar scan costs tens to hundreds of ms of CPU (its 720-pixel copy, 2 cores), as
much as a libx264 veryfast encode of the frame; farm.faces.haar scans whole frames only on
a schedule, and this gate narrows those scans. Human skin of every complexion falls in a narrow box of the YCbCr chroma plane
(Chai & Ngan, 1999: Cb 77..127, Cr 133..173 in 8-bit codes), so the cascade scans only
the box around the frame's skin-toned samples (plus a margin), and nothing when there
are none. A frame too grey to judge by colour (black-and-white footage) is scanned
whole. What this gives up: a face lit so that its skin leaves that chroma box (strong
coloured stage light) is not found by the demo detector. The real detectors (SCRFD,
YuNet) are never gated.
"""

from __future__ import annotations

import numpy as np

from farm.pipeline import regions
from farm.pipeline.frame import Frame

SKIN_CB = (77.0, 127.0)
SKIN_CR = (133.0, 173.0)
"""Skin-toned chroma, 8-bit code values (deeper frames are scaled to 8 bits first)."""

GREY_SPREAD = 6.0
"""A chroma sample within 128 +/- this (8-bit codes) in both Cb and Cr counts as grey."""

GREY_SHARE = 0.98
"""A frame with at least this share of grey samples cannot be judged by colour: scan it all."""

SHRINK = 2
"""Chroma is judged on a copy SHRINK times smaller than the detection copy (cheap to make)."""

CELL = 4
"""... per CELL x CELL block of that copy: a block counts when at least CELL_SHARE of it is
skin-toned (lone samples at colour edges are not skin)."""

CELL_SHARE = 0.25

MARGIN = 0.5
"""Added around the skin box on each side, as a share of its longer side ..."""

MIN_MARGIN_SHARE = 0.1
"""... and at least this share of the image's longer side (a face around a small patch of skin)."""

Roi = tuple[int, int, int, int]


def skin_roi(frame: Frame, width: int, height: int) -> Roi | None:
    """The part (x0, y0, x1, y1) of a width x height detection copy of `frame` worth
    scanning for faces: the whole copy for a grey frame, None when no sample is skin-toned."""
    step = float(1 << (frame.bit_depth - 8))
    cw, ch = max(1, width // SHRINK), max(1, height // SHRINK)
    u = regions.resize_plane(frame.planes[1], cw, ch).astype(np.float32) / step
    v = regions.resize_plane(frame.planes[2], cw, ch).astype(np.float32) / step
    grey = (np.abs(u - 128.0) <= GREY_SPREAD) & (np.abs(v - 128.0) <= GREY_SPREAD)
    if grey.mean() >= GREY_SHARE:
        return 0, 0, width, height
    skin = (u >= SKIN_CB[0]) & (u <= SKIN_CB[1]) & (v >= SKIN_CR[0]) & (v <= SKIN_CR[1])
    cells = skin_cells(skin)
    rows, cols = np.flatnonzero(cells.any(axis=1)), np.flatnonzero(cells.any(axis=0))
    if rows.size == 0:
        return None
    cell_w, cell_h = CELL * width / cw, CELL * height / ch   # a cell in detection-copy pixels
    x0, y0 = int(cols[0] * cell_w), int(rows[0] * cell_h)
    x1 = min(width, int(np.ceil((cols[-1] + 1) * cell_w)))
    y1 = min(height, int(np.ceil((rows[-1] + 1) * cell_h)))
    margin = int(np.ceil(max(MARGIN * max(x1 - x0, y1 - y0), MIN_MARGIN_SHARE * max(width, height))))
    return max(0, x0 - margin), max(0, y0 - margin), min(width, x1 + margin), min(height, y1 + margin)


def skin_cells(skin: np.ndarray) -> np.ndarray:
    """Per CELL x CELL block (edge blocks padded with non-skin): at least CELL_SHARE skin-toned."""
    h, w = skin.shape
    padded = np.zeros((-(-h // CELL) * CELL, -(-w // CELL) * CELL), np.float32)
    padded[:h, :w] = skin
    share = padded.reshape(padded.shape[0] // CELL, CELL, padded.shape[1] // CELL, CELL).mean(axis=(1, 3))
    return share >= CELL_SHARE
