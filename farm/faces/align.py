"""Five-point face alignment: templates, similarity transforms, warps.

A matrix M is a 2x3 float64 affine that maps image pixels to crop pixels. Templates
are normalised to [0, 1] (multiply by the crop size in pixels); point order: left eye,
right eye, nose, left mouth corner, right mouth corner.
"""

from __future__ import annotations

import cv2
import numpy as np

TEMPLATES: dict[str, np.ndarray] = {
    # the original ArcFace/SphereFace 112x112 points (39.73, 51.138), ... / 112 (SimSwap input)
    "arcface_112_v1": np.array(
        [[0.35473214, 0.45658929], [0.64526786, 0.45658929], [0.50000000, 0.61154464],
         [0.37913393, 0.77687500], [0.62086607, 0.77687500]], dtype=np.float64),
    # insightface arcface_dst / 112 (recogniser input)
    "arcface_112_v2": np.array(
        [[0.34191607, 0.46157411], [0.65653393, 0.45983393], [0.50022500, 0.64050536],
         [0.37097589, 0.82469196], [0.63151696, 0.82325089]], dtype=np.float64),
    # arcface_dst with x + 8, / 128 (inswapper input)
    "arcface_128": np.array(
        [[0.36167656, 0.40387734], [0.63696719, 0.40235469], [0.50019687, 0.56044219],
         [0.38710391, 0.72160547], [0.61507734, 0.72034453]], dtype=np.float64),
    # GFPGAN / facexlib template / 512 (enhancer input)
    "ffhq_512": np.array(
        [[0.37691676, 0.46864664], [0.62285697, 0.46912813], [0.50123859, 0.61331904],
         [0.39308822, 0.72541100], [0.61150205, 0.72490465]], dtype=np.float64),
}


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) src -> dst, 2x3."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rot = u @ sign @ vt
    var_s = (s**2).sum() / len(src)
    scale = float(np.trace(np.diag(sig) @ sign)) / var_s if var_s > 0 else 1.0
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def estimate_norm(kps: np.ndarray, template: str | np.ndarray, size: int) -> np.ndarray:
    """The 2x3 similarity mapping the 5 image points kps onto template * size."""
    points = TEMPLATES[template] if isinstance(template, str) else np.asarray(template)
    return umeyama_similarity(np.asarray(kps, dtype=np.float64).reshape(5, 2), points * float(size))


def warp_face(image: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """The size x size crop of image under M (bilinear, edge pixels replicated)."""
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def invert(m: np.ndarray) -> np.ndarray:
    """The inverse 2x3 affine (crop pixels -> image pixels)."""
    return cv2.invertAffineTransform(np.asarray(m, dtype=np.float64))


def transform_points(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to Nx2 points."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return p @ np.asarray(m)[:, :2].T + np.asarray(m)[:, 2]


def shift(m: np.ndarray, x0: float, y0: float) -> np.ndarray:
    """M for an image cut out at (x0, y0): maps region pixels to the same crop pixels."""
    out = np.array(m, dtype=np.float64)
    out[:, 2] += out[:, :2] @ np.array([x0, y0], dtype=np.float64)
    return out


def crop_footprint(m: np.ndarray, size: int, margin_px: float = 2.0) -> tuple[float, float, float, float]:
    """Bounding box (x0, y0, x1, y1) in image pixels of the size x size crop of M."""
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64)
    pts = transform_points(invert(m), corners)
    lo, hi = pts.min(axis=0) - margin_px, pts.max(axis=0) + margin_px
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])
