"""Cut an aligned face crop out of a frame and paste a processed one back.

Only the face's bounding region of the frame is converted (regions.read_bgr /
write_bgr); the crop is warped back into that region alone, blended with a feathered
mask, and every pixel outside the region keeps its exact value. A face with a
`Face.mask` (farm.faces.masks.FaceMask: the job's --mask options) is blended with that
mask's box instead, times its occlusion/region area from the original frame.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from farm.faces.align import crop_footprint, invert, shift, warp_face
from farm.faces.masks import FaceMask
from farm.pipeline import regions
from farm.pipeline.frame import Frame

BORDER_FRACTION = 0.07
"""Zero border of the feather mask, as a fraction of the crop size (FaceFusion: ~7%)."""


@lru_cache(maxsize=8)
def feather_mask(size: int, border_fraction: float = BORDER_FRACTION) -> np.ndarray:
    """size x size float32 mask: 1 inside, a zero border, Gaussian-feathered, exactly 0 at the edge."""
    border = max(1, int(round(size * border_fraction)))
    mask = np.zeros((size, size), np.float32)
    mask[border:-border, border:-border] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=border * 0.5)
    edge = float(mask[0, size // 2])  # what the blur spread onto the outermost pixels
    mask = np.clip((mask - edge) / (1.0 - edge), 0.0, 1.0)
    mask[mask < 1e-3] = 0.0  # float noise of the blur: keep the border exactly zero
    mask.setflags(write=False)
    return mask


def region_box(frame: Frame, m: np.ndarray, size: int) -> regions.Box | None:
    """The chroma-aligned frame box covering the size x size crop of M (None if off-frame)."""
    box = regions.clip_box(crop_footprint(m, size), frame.width, frame.height)
    return None if box is None else regions.align_box(frame, box)


def crop_from_frame(frame: Frame, m: np.ndarray, size: int) -> tuple[np.ndarray, regions.Box] | None:
    """(size x size BGR crop of M, the frame box it was read from), or None if off-frame."""
    box = region_box(frame, m, size)
    if box is None:
        return None
    region = regions.read_bgr(frame, box)
    return warp_face(region, shift(m, box[0], box[1]), size), box


def paste_back(frame: Frame, crop_bgr: np.ndarray, m: np.ndarray, box: regions.Box | None = None,
               face_mask: FaceMask | None = None) -> None:
    """Warp crop_bgr (aligned by M) back into the frame and blend it with a feathered mask.

    box: the frame region to touch (default: region_box of the crop); nothing outside
    it changes. face_mask: the face's masks (None: the feathered box, feather_mask); its
    crop mask is warped back with the crop and multiplied by its area on the box, so a
    pixel the area excludes keeps its value.
    """
    size = crop_bgr.shape[0]
    if box is None:
        box = region_box(frame, m, size)
        if box is None:
            return
    x0, y0, x1, y1 = box
    im = invert(shift(m, x0, y0))
    dsize = (x1 - x0, y1 - y0)
    patch = cv2.warpAffine(crop_bgr, im, dsize, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    crop_mask = feather_mask(size) if face_mask is None else face_mask.crop_mask(size)
    mask = cv2.warpAffine(crop_mask, im, dsize, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    area = None if face_mask is None else face_mask.over(box)
    if area is not None:
        mask *= area
    regions.write_bgr(frame, box, patch, mask)
