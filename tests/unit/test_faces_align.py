"""farm.faces.align: similarity estimation and warps, against skimage and exact constructions."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.transform import SimilarityTransform

from farm.faces.align import TEMPLATES, crop_footprint, estimate_norm, invert, shift, transform_points, warp_face


def similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


@pytest.mark.parametrize("name,size", [("arcface_112_v2", 112), ("arcface_128", 128), ("ffhq_512", 512)])
def test_template_points_map_exactly_for_similarity_inputs(name, size):
    # Given image landmarks that are an exact similarity image of the template
    dst = TEMPLATES[name] * size
    true = similarity(2.7, 0.4, 310.0, -45.0)  # crop -> image
    kps = transform_points(true, dst)
    # When the alignment is estimated
    m = estimate_norm(kps, name, size)
    # Then it maps the landmarks onto the template within 1e-3 px, and is the inverse
    assert np.abs(transform_points(m, kps) - dst).max() < 1e-3
    assert np.allclose(invert(m), true, atol=1e-6)


def test_matches_skimage_similarity_on_noisy_points():
    # Given noisy landmarks
    rng = np.random.default_rng(0)
    dst = TEMPLATES["arcface_128"] * 128
    kps = transform_points(similarity(1.9, -0.3, 800, 400), dst) + rng.normal(0, 3.0, (5, 2))
    # When estimated by us and by skimage (least squares, Umeyama)
    m = estimate_norm(kps, "arcface_128", 128)
    ref = SimilarityTransform.from_estimate(kps, dst) if hasattr(SimilarityTransform, "from_estimate") else None
    if ref is None:
        ref = SimilarityTransform()
        ref.estimate(kps, dst)
    # Then the matrices agree
    assert np.allclose(m, ref.params[:2], atol=1e-6)


def test_template_data_is_consistent():
    # arcface_128 is arcface_112 shifted by 8 px and scaled to 128
    assert np.allclose(TEMPLATES["arcface_128"] * 128, TEMPLATES["arcface_112_v2"] * 112 + [8, 0], atol=1e-3)
    for t in TEMPLATES.values():
        assert t.shape == (5, 2) and (t > 0).all() and (t < 1).all()


def test_warp_and_shifted_region_give_the_same_crop():
    # Given an image, an alignment and a region cut out of the image
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (300, 400, 3)).astype(np.uint8)
    m = estimate_norm(transform_points(similarity(0.8, 0.2, 150, 90), TEMPLATES["arcface_128"] * 128),
                      "arcface_128", 128)
    x0, y0, x1, y1 = (int(v) for v in crop_footprint(m, 128))
    region = image[y0:y1, x0:x1]
    # Then warping the region with the shifted matrix equals warping the full image
    full = warp_face(image, m, 128)
    part = warp_face(region, shift(m, x0, y0), 128)
    assert np.abs(full.astype(int) - part).max() <= 1


def test_footprint_covers_crop_corners():
    m = estimate_norm(transform_points(similarity(1.5, 0.5, 200, 100), TEMPLATES["ffhq_512"] * 512),
                      "ffhq_512", 512)
    x0, y0, x1, y1 = crop_footprint(m, 512, margin_px=0)
    corners = transform_points(invert(m), [[0, 0], [512, 0], [0, 512], [512, 512]])
    assert np.isclose(corners[:, 0].min(), x0) and np.isclose(corners[:, 1].max(), y1)
