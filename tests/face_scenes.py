"""Scenes for face-detector recall tests and benchmarks: real faces composited onto real
or textured backgrounds, with a known box per frame.

Faces: skimage's astronaut (a colour photo; the face box is judged by eye, hairline to
chin, ear to ear) and the faces of skimage's LFW subset (25 x 25 grey crops of real
photos, tinted with a skin tone so that they read as skin). Backgrounds: skimage photos
(coffee and chelsea: warm, skin-toned colours nearly everywhere; rocket: blue sky and
shadows) and grey textures (brick, gravel) tinted warm or cool. Everything is
deterministic; sizes are in pixels, the face height is the height of its box.

This module does not import the project's code: fixtures stay independent of what they test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from skimage import data

ASTRONAUT_FACE = (175, 62, 275, 165)
"""x0, y0, x1, y1 of the face in skimage.data.astronaut(), by eye (hairline to chin)."""

WARM = ("coffee", "chelsea", "skin_brick")
COOL = ("rocket", "blue_gravel")


def background(kind: str, width: int, height: int) -> np.ndarray:
    """A width x height BGR background of one of WARM + COOL."""
    if kind in ("coffee", "chelsea", "rocket"):
        img = getattr(data, kind)()[..., ::-1]
    elif kind == "skin_brick":
        g = data.brick().astype(np.float32)[..., None] / 255.0
        img = g * np.array([120, 130, 120], np.float32) + np.array([60, 90, 135], np.float32)
    elif kind == "blue_gravel":
        g = data.gravel().astype(np.float32)[..., None] / 255.0
        img = g * np.array([120, 100, 80], np.float32) + np.array([120, 80, 30], np.float32)
    else:
        raise ValueError(f"unknown background {kind!r}")
    img = np.clip(img, 0, 255).astype(np.uint8)
    return cv2.resize(np.ascontiguousarray(img), (width, height), interpolation=cv2.INTER_LINEAR)


@dataclass
class Head:
    """A face picture (BGR), its blending mask (float32 0..1) and its face box inside it."""

    bgr: np.ndarray
    mask: np.ndarray
    box: np.ndarray


def _oval_mask(h: int, w: int, soft: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    e = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    return np.clip((1.0 - e) / soft, 0.0, 1.0).astype(np.float32)


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    interp = cv2.INTER_AREA if w < img.shape[1] else cv2.INTER_CUBIC
    return cv2.resize(img, (w, h), interpolation=interp)


def astronaut_head(face_h: float, mirror: bool = False) -> Head:
    """The astronaut's head and some of her suit, scaled so that her face is face_h tall."""
    img = data.astronaut()[..., ::-1]
    x0, y0, x1, y1 = ASTRONAUT_FACE
    fw, fh = x1 - x0, y1 - y0
    cx0, cy0 = int(x0 - 0.45 * fw), max(0, int(y0 - 0.45 * fh))
    cx1, cy1 = int(x1 + 0.45 * fw), int(y1 + 0.45 * fh)
    crop = img[cy0:cy1, cx0:cx1]
    s = face_h / fh
    bgr = _resize(crop, round(crop.shape[1] * s), round(crop.shape[0] * s))
    box = np.array([(x0 - cx0) * s, (y0 - cy0) * s, (x1 - cx0) * s, (y1 - cy0) * s])
    if mirror:
        bgr = bgr[:, ::-1]
        box = np.array([bgr.shape[1] - box[2], box[1], bgr.shape[1] - box[0], box[3]])
    return Head(np.ascontiguousarray(bgr), _oval_mask(*bgr.shape[:2], 0.25), box)


def lfw_head(index: int, face_h: float) -> Head:
    """Face `index` (0..99) of skimage's LFW subset, tinted to a skin tone, face_h tall."""
    grey = (data.lfw_subset()[index] * 255).astype(np.uint8)          # 25 x 25, the face itself
    padded = cv2.copyMakeBorder(grey, 6, 6, 6, 6, cv2.BORDER_REPLICATE).astype(np.float32) / 255.0
    tone = np.array([0.55, 0.68, 0.92], np.float32)                     # B, G, R of a light skin
    bgr = np.clip(padded[..., None] * tone * 255 + 20, 0, 255).astype(np.uint8)
    s = face_h / 25.0
    bgr = _resize(bgr, round(37 * s), round(37 * s))
    return Head(bgr, _oval_mask(*bgr.shape[:2], 0.3), np.array([6 * s, 6 * s, 31 * s, 31 * s]))


def paste(bg: np.ndarray, head: Head, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """bg with the head blended in, centred at (cx, cy); (image, face box in image pixels)."""
    img = bg.copy()
    hh, ww = head.bgr.shape[:2]
    x, y = int(round(cx - ww / 2)), int(round(cy - hh / 2))
    if x < 0 or y < 0 or x + ww > img.shape[1] or y + hh > img.shape[0]:
        raise ValueError("the head does not fit the picture there")
    m = head.mask[..., None]
    region = img[y:y + hh, x:x + ww].astype(np.float32)
    img[y:y + hh, x:x + ww] = (region * (1 - m) + head.bgr * m + 0.5).astype(np.uint8)
    return img, head.box + np.array([x, y, x, y])


def drift(k: int, width: int, height: int, start: tuple[float, float]) -> tuple[float, float, float]:
    """Small motion of a person at a desk at frame k: (cx, cy, size factor); start in 0..1 of the frame."""
    unit = height / 1080.0
    cx = start[0] * width + 60 * unit * math.sin(k / 7.0)
    cy = start[1] * height + 20 * unit * math.cos(k / 5.0)
    return cx, cy, 1.0 + 0.04 * math.sin(k / 9.0)


def to_i420(bgr: np.ndarray) -> list[np.ndarray]:
    """Y, U, V planes (bt601, limited range, 8-bit) of an even-sized BGR picture, by OpenCV."""
    h, w = bgr.shape[:2]
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    return [i420[:h].copy(), i420[h:h + h // 4].reshape(h // 2, w // 2).copy(),
            i420[h + h // 4:].reshape(h // 2, w // 2).copy()]


def iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
