"""The masks a face is pasted back with: box, occlusion and region, combined by their minimum.

- box: each pasting stage's own feathered square over its aligned crop (`box_mask`): a
  zero border of `blur / 4` of the crop on every side (widened per side by the padding,
  in percent of the crop), Gaussian-blurred with sigma = half that border, then rescaled
  so the outermost pixels are exactly 0. This is FaceFusion's face_mask_blur /
  face_mask_padding arithmetic (blur amount = crop * blur / 2, zero area = half of it,
  sigma = a quarter of it) plus the exact-zero edge; at the default blur 0.28 with no
  padding it is the feather every face has had (paste.feather_mask), bit for bit.
- occlusion: an XSeg occluder's "visible face" probability (1 = face, 0 = a hand, hair,
  glasses in front of it) on the face's aligned crop (`occluder_input`/`occluder_mask`).
- region: a BiSeNet face parser's classes (19 CelebAMask-HQ labels) on the aligned crop,
  1 where the class is one of the chosen FACE_REGIONS (`parser_input`/`region_mask`).

Occlusion and region are softened inwards (`soften`): blurred, and only the part above
one half kept, rescaled to 0..1 (as FaceFusion does), and never above the mask itself,
so a pixel the model excludes stays exactly 0. They are computed once per face per
frame from the original frame (farm.faces.mask_stage) and kept on the face in frame
coordinates (`FaceMask.area`), so every stage that pastes the face (swap and enhance)
leaves those pixels as they were decoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from farm.pipeline import regions

MASK_TYPES = ("box", "occlusion", "region")
"""What `--mask` may combine; box alone is the default (the paste every job had before)."""

DEFAULT_MASK = ("box",)
DEFAULT_MASK_BLUR = 0.28
"""Box blur as a fraction of the crop: 0.28 gives the zero border of 7% (paste.BORDER_FRACTION)."""
NO_PADDING = (0.0, 0.0, 0.0, 0.0)

FACE_REGIONS: dict[str, int] = {
    "skin": 1, "left-eyebrow": 2, "right-eyebrow": 3, "left-eye": 4, "right-eye": 5, "glasses": 6,
    "nose": 10, "mouth": 11, "upper-lip": 12, "lower-lip": 13,
}
"""Region name -> class index of the face parser (CelebAMask-HQ order, as BiSeNet face-parsing
models and FaceFusion number them: 0 background, 7/8 ears, 9 earring, 14 neck, 15 necklace,
16 cloth, 17 hair, 18 hat are never part of a face region). 'mouth' is the inside of the
mouth (teeth, tongue); the lips are upper-lip and lower-lip."""

PARSER_CLASSES = 19
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
"""The face parser's input normalisation, per RGB channel of x / 255."""

SOFTEN_FRACTION = 5.0 / 256.0
"""Sigma of the inward softening of occlusion and region masks, as a fraction of their crop
(FaceFusion blurs them with sigma 5 px)."""


@lru_cache(maxsize=32)
def box_mask(size: int, blur: float = DEFAULT_MASK_BLUR, padding: tuple[float, ...] = NO_PADDING) -> np.ndarray:
    """size x size float32 (read-only): 1 inside, 0 in a border of max(blur border, padding)
    on each side (padding: top, right, bottom, left in percent of the crop), feathered by the
    blur, exactly 0 on the outermost pixels. blur 0: a hard box with a 1 px zero border."""
    border = max(1, round(size * blur / 4.0))
    top, right, bottom, left = (max(border, int(size * float(p) / 100.0)) for p in padding)
    mask = _inner(size, top, right, bottom, left)
    if blur > 0:
        sigma = border * 0.5
        plain = mask if (top, right, bottom, left) == (border,) * 4 else _inner(size, border, border, border, border)
        edge = float(cv2.GaussianBlur(plain, (0, 0), sigmaX=sigma)[0, size // 2])   # what the blur spreads outwards
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma)
        mask = np.clip((mask - edge) / (1.0 - edge), 0.0, 1.0)
        mask[mask < 1e-3] = 0.0   # float noise of the blur: keep the border exactly zero
    mask.setflags(write=False)
    return mask


def _inner(size: int, top: int, right: int, bottom: int, left: int) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    if top + bottom < size and left + right < size:
        mask[top:size - bottom, left:size - right] = 1.0
    return mask


def soften(mask: np.ndarray) -> np.ndarray:
    """A 0..1 mask with its edges drawn in and smoothed: min(mask, 2 * (clip(blur, 0.5, 1) - 0.5)),
    the blur's sigma SOFTEN_FRACTION of the mask's side. A 0 stays 0."""
    m = np.clip(np.asarray(mask, np.float32), 0.0, 1.0)
    blurred = cv2.GaussianBlur(m, (0, 0), sigmaX=max(0.5, SOFTEN_FRACTION * m.shape[0]))
    return np.minimum(m, (np.clip(blurred, 0.5, 1.0) - 0.5) * 2.0)


def combine(masks: Sequence[np.ndarray]) -> np.ndarray:
    """The element-wise minimum of same-shaped masks, clipped to 0..1 (their intersection)."""
    if not masks:
        raise ValueError("no mask to combine")
    return np.clip(np.minimum.reduce([np.asarray(m, np.float32) for m in masks]), 0.0, 1.0)


def occluder_input(crop_bgr: np.ndarray) -> np.ndarray:
    """An XSeg occluder's input for an aligned crop at its size: [1, H, W, 3] float32, BGR, x / 255."""
    return (crop_bgr.astype(np.float32) / 255.0)[None]


def occluder_mask(output: np.ndarray) -> np.ndarray:
    """H x W float32 in 0..1 (1 = visible face) from the occluder's [1, H, W, 1] output."""
    out = np.asarray(output, np.float32)
    return np.clip(out.reshape(out.shape[-3], out.shape[-2]), 0.0, 1.0)


def parser_input(crop_bgr: np.ndarray) -> np.ndarray:
    """A BiSeNet face parser's input for an aligned crop at its size: [1, 3, H, W] float32,
    RGB, (x / 255 - IMAGENET_MEAN) / IMAGENET_STD."""
    rgb = crop_bgr[..., ::-1].astype(np.float32) / 255.0
    return np.ascontiguousarray(((rgb - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)[None])


def region_mask(logits: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """H x W float32, 1 where the most likely class of the parser's [1, 19, H, W] scores is
    one of the regions `names` (FACE_REGIONS), else 0."""
    scores = np.asarray(logits, np.float32)
    labels = scores.reshape(scores.shape[-3:]).argmax(axis=0)
    return np.isin(labels, [FACE_REGIONS[n] for n in names]).astype(np.float32)


@dataclass
class FaceMask:
    """How the pasting stages blend one face back (set by farm.faces.mask_stage).

    box: whether each stage's crop gets its feathered box (`blur`, `padding`: see box_mask);
    without it a stage's crop counts 1 up to its edge. area: (frame box, float32 values of
    that box's size) of the occlusion/region mask from the original frame, or None when
    the job asks for neither. limited: the job asked for occlusion or region, so a face
    without an area (its crop off the frame) is not changed at all.
    """

    box: bool = True
    blur: float = DEFAULT_MASK_BLUR
    padding: tuple[float, float, float, float] = NO_PADDING
    area: tuple[regions.Box, np.ndarray] | None = None
    limited: bool = False

    def crop_mask(self, size: int) -> np.ndarray:
        """The size x size mask a stage warps back with its crop (before `over`)."""
        if self.box:
            return box_mask(size, float(self.blur), tuple(float(p) for p in self.padding))
        return _ones(size)

    def over(self, box: regions.Box) -> np.ndarray | None:
        """The area's values on a frame box ((y1-y0) x (x1-x0) float32, 0 where the area does
        not reach), or None when nothing limits the paste beyond the crop mask."""
        if self.area is None:
            return np.zeros((box[3] - box[1], box[2] - box[0]), np.float32) if self.limited else None
        (ax0, ay0, ax1, ay1), values = self.area
        x0, y0, x1, y1 = box
        out = np.zeros((y1 - y0, x1 - x0), np.float32)
        ix0, iy0, ix1, iy1 = max(x0, ax0), max(y0, ay0), min(x1, ax1), min(y1, ay1)
        if ix0 < ix1 and iy0 < iy1:
            out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = values[iy0 - ay0:iy1 - ay0, ix0 - ax0:ix1 - ax0]
        return out


@lru_cache(maxsize=8)
def _ones(size: int) -> np.ndarray:
    mask = np.ones((size, size), np.float32)
    mask.setflags(write=False)
    return mask
