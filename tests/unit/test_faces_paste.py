"""farm.faces.paste: only the face region changes; the geometry round-trips."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from tests.unit.test_faces_standins import KPS, astronaut_frame, outside

from farm.faces.align import estimate_norm, invert, shift
from farm.faces.paste import crop_from_frame, feather_mask, paste_back, region_box
from farm.pipeline import regions

@pytest.mark.parametrize("ten_bit", [False, True])
@pytest.mark.parametrize("size,template", [(128, "arcface_128"), (512, "ffhq_512")])
def test_pixels_outside_the_face_region_are_bit_identical(ten_bit, size, template):
    # Given a frame and a face crop replaced by noise
    frame = astronaut_frame(ten_bit)
    before = [p.copy() for p in frame.planes]
    m = estimate_norm(KPS, template, size)
    box = region_box(frame, m, size)
    noise = np.random.default_rng(1).integers(0, 256, (size, size, 3)).astype(np.uint8)
    # When it is pasted back
    paste_back(frame, noise, m, box)
    # Then the region is a small part of the frame, changed inside and bit-identical outside
    x0, y0, x1, y1 = box
    assert (x1 - x0) * (y1 - y0) < 0.25 * frame.width * frame.height
    assert frame.touched
    for i, (a, b) in enumerate(zip(before, frame.planes)):
        s = 1 if i == 0 else 2
        keep = outside(box, a.shape, s, s)
        assert (a[keep] == b[keep]).all()
        assert (a[~keep] != b[~keep]).any()


def test_inside_the_box_luma_changes_only_under_the_mask():
    frame = astronaut_frame()
    before = frame.planes[0].copy()
    m = estimate_norm(KPS, "arcface_128", 128)
    box = region_box(frame, m, 128)
    paste_back(frame, np.zeros((128, 128, 3), np.uint8), m, box)
    x0, y0, x1, y1 = box
    mask = cv2.warpAffine(feather_mask(128), invert(shift(m, x0, y0)), (x1 - x0, y1 - y0))
    changed = frame.planes[0][y0:y1, x0:x1] != before[y0:y1, x0:x1]
    assert not (changed & (mask == 0)).any()
    # the crop's centre is fully replaced (black -> Y = 16)
    cx, cy = (KPS[0] + KPS[4]) / 2
    assert frame.planes[0][int(cy), int(cx)] == 16


def test_crop_then_paste_back_changes_little():
    # Given a face crop read from the frame, pasted back unchanged
    frame = astronaut_frame()
    before = regions.read_bgr(frame, (0, 0, 512, 512)).astype(int)
    m = estimate_norm(KPS, "arcface_128", 128)
    crop, box = crop_from_frame(frame, m, 128)
    paste_back(frame, crop, m, box)
    # Then the face region looks the same (only resampling blur)
    x0, y0, x1, y1 = box
    after = regions.read_bgr(frame, (0, 0, 512, 512)).astype(int)
    assert np.abs(after - before)[y0:y1, x0:x1].mean() < 4.0


def test_feather_mask_shape():
    mask = feather_mask(128)
    assert mask.dtype == np.float32 and mask.shape == (128, 128)
    assert mask[0].max() == 0 and mask[:, 0].max() == 0 and mask[:, -1].max() == 0
    assert mask[64, 64] == 1.0 and mask[20:108, 20:108].min() > 0.98
    assert 0 < mask[64, 9] < 1  # feathered around the ~7% border


def test_face_at_the_frame_edge_is_clipped_and_off_frame_face_skipped():
    # Given a face whose crop reaches past the top-left corner
    frame = astronaut_frame()
    before = [p.copy() for p in frame.planes]
    kps = KPS - [185, 80]
    m = estimate_norm(kps, "ffhq_512", 512)
    crop, box = crop_from_frame(frame, m, 512)
    assert box[0] == 0 and box[1] == 0
    # When a white crop is pasted back, only the clipped box changes
    paste_back(frame, np.full_like(crop, 255), m, box)
    for i, (a, b) in enumerate(zip(before, frame.planes)):
        s = 1 if i == 0 else 2
        keep = outside(box, a.shape, s, s)
        assert (a[keep] == b[keep]).all()
    # and a face entirely off the frame gives nothing to read
    assert crop_from_frame(frame, estimate_norm(KPS + 5000, "arcface_128", 128), 128) is None
