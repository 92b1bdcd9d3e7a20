"""farm.pipeline.regions: region-limited YUV <-> BGR, checked against OpenCV and published matrices."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from farm.pipeline import regions
from farm.pipeline.frame import Frame


def smooth_bgr(h: int, w: int) -> np.ndarray:
    """An in-gamut image with gentle colour gradients (no clipping in YUV round trips)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    b = 60 + 120 * xx / w
    g = 70 + 100 * yy / h
    r = 90 + 60 * np.sin(xx / 23.0) * np.cos(yy / 17.0) + 40
    return np.clip(np.dstack([b, g, r]), 0, 255).astype(np.uint8)


def i420_frame(bgr: np.ndarray, **kw) -> Frame:
    """yuv420p bt601 limited-range frame converted by OpenCV (the independent reference)."""
    h, w = bgr.shape[:2]
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    y = i420[:h].copy()
    u = i420[h : h + h // 4].reshape(h // 2, w // 2).copy()
    v = i420[h + h // 4 :].reshape(h // 2, w // 2).copy()
    return Frame.from_arrays([y, u, v], "yuv420p", colorspace="bt601", **kw)


def i420_to_bgr(frame: Frame) -> np.ndarray:
    y, u, v = frame.planes
    return cv2.cvtColor(np.concatenate([y, u.reshape(-1, y.shape[1]), v.reshape(-1, y.shape[1])]),
                        cv2.COLOR_YUV2BGR_I420)


def test_read_bgr_matches_opencv_full_frame_conversion_bt601():
    # Given a 4:2:0 bt601 frame and OpenCV's conversion of the whole frame
    frame = i420_frame(smooth_bgr(240, 320))
    ref = i420_to_bgr(frame)
    # When odd, non-aligned regions are read
    for box in [(0, 0, 320, 240), (33, 17, 201, 155), (1, 1, 2, 2), (319, 239, 320, 240)]:
        got = regions.read_bgr(frame, box)
        x0, y0, x1, y1 = box
        # Then they equal the reference within one level
        assert got.shape == (y1 - y0, x1 - x0, 3)
        assert np.abs(got.astype(int) - ref[y0:y1, x0:x1]).max() <= 1


def test_write_then_read_round_trip_within_two_levels():
    # Given OpenCV's decoded image of a frame, written onto a black frame of the same format
    src = i420_frame(smooth_bgr(240, 320))
    ref = i420_to_bgr(src)
    dst = Frame.from_arrays([np.full_like(p, v) for p, v in zip(src.planes, (16, 128, 128))],
                            "yuv420p", colorspace="bt601")
    regions.write_bgr(dst, (0, 0, 320, 240), ref, np.ones((240, 320), np.float32))
    # Then the planes match OpenCV's and reading back gives the image, within 2 levels
    for a, b in zip(src.planes, dst.planes):
        assert np.abs(a.astype(int) - b).max() <= 2
    assert np.abs(regions.read_bgr(dst, (0, 0, 320, 240)).astype(int) - ref).max() <= 2
    assert dst.touched


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le"])
@pytest.mark.parametrize("colorspace", ["bt601", "bt709", "bt2020"])
@pytest.mark.parametrize("full_range", [False, True])
def test_read_write_round_trip_every_format(pix_fmt, colorspace, full_range):
    # Given a frame whose planes come from a smooth image
    bgr = smooth_bgr(64, 96)
    frame = blank_frame(pix_fmt, 96, 64, colorspace=colorspace, full_range=full_range)
    box = (0, 0, 96, 64)
    regions.write_bgr(frame, box, bgr, np.ones((64, 96), np.float32))
    before = [p.copy() for p in frame.planes]
    # When a region is read and written back unchanged
    sub = (9, 5, 71, 43)
    regions.write_bgr(frame, sub, regions.read_bgr(frame, sub), np.ones((38, 62), np.float32))
    # Then no sample moves by more than ~1 level of 8-bit
    tol = 1 if frame.bit_depth == 8 else 6
    for a, b in zip(before, frame.planes):
        assert np.abs(a.astype(int) - b).max() <= tol
    assert np.abs(regions.read_bgr(frame, box).astype(int) - bgr).max() <= 4  # chroma subsampling loss


def blank_frame(pix_fmt: str, w: int, h: int, **kw) -> Frame:
    from farm.pipeline.frame import PLANAR_FORMATS

    size, sx, sy = PLANAR_FORMATS[pix_fmt]
    dtype = np.uint8 if size == 1 else np.uint16
    cw, ch = -(-w // sx), -(-h // sy)
    planes = [np.zeros((h, w), dtype), np.zeros((ch, cw), dtype), np.zeros((ch, cw), dtype)]
    return Frame.from_arrays(planes, pix_fmt, **kw)


def test_mask_zero_and_outside_box_stay_bit_identical():
    # Given a noisy odd-sized 4:2:0 frame and a patch whose mask is zero in places
    rng = np.random.default_rng(1)
    w, h = 101, 77
    frame = blank_frame("yuv420p", w, h)
    for p in frame.planes:
        p[:] = rng.integers(16, 236, p.shape)
    before = [p.copy() for p in frame.planes]
    box = (13, 7, 61, 50)  # odd corners: not chroma aligned
    bh, bw = 43, 48
    mask = rng.random((bh, bw)).astype(np.float32)
    mask[:, :10] = 0.0
    mask[mask < 0.3] = 0.0
    # When it is written
    regions.write_bgr(frame, box, rng.integers(0, 256, (bh, bw, 3)).astype(np.uint8), mask)
    # Then luma is unchanged where mask == 0 and outside the box
    full = np.zeros((h, w), np.float32)
    full[7:50, 13:61] = mask
    y_changed = frame.planes[0] != before[0]
    assert not (y_changed & (full == 0)).any()
    assert y_changed.any()
    # and chroma changes only for samples with some masked pixel
    cover = cv2.resize(np.pad(full, ((0, 1), (0, 1))), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    for i in (1, 2):
        changed = frame.planes[i] != before[i]
        assert not (changed & (cover[: changed.shape[0], : changed.shape[1]] == 0)).any()


def test_bt709_and_bt2020_match_published_matrices():
    # Given 8-bit limited-range samples and the published conversion constants
    rng = np.random.default_rng(2)
    y = rng.integers(40, 200, (8, 8)).astype(np.uint8)
    u = rng.integers(100, 156, (8, 8)).astype(np.uint8)
    v = rng.integers(100, 156, (8, 8)).astype(np.uint8)
    published = {
        "bt709": (1.792741, 0.213249, 0.532909, 2.112402),
        "bt2020": (1.678674, 0.187326, 0.650424, 2.141772),
        "bt601": (1.596027, 0.391762, 0.812968, 2.017232),
    }
    for name, (rv, gu, gv, bu) in published.items():
        frame = Frame.from_arrays([y, u, v], "yuv444p", colorspace=name)
        yf, uf, vf = (a.astype(np.float64) for a in (y, u, v))
        r = 1.164384 * (yf - 16) + rv * (vf - 128)
        g = 1.164384 * (yf - 16) - gu * (uf - 128) - gv * (vf - 128)
        b = 1.164384 * (yf - 16) + bu * (uf - 128)
        ref = np.clip(np.rint(np.dstack([b, g, r])), 0, 255)
        assert np.abs(regions.read_bgr(frame, (0, 0, 8, 8)) - ref).max() <= 1, name


def test_full_range_matches_opencv_ycrcb():
    # Given a full-range (JPEG) bt601 4:4:4 frame
    rng = np.random.default_rng(3)
    y, u, v = (rng.integers(30, 220, (16, 16)).astype(np.uint8) for _ in range(3))
    frame = Frame.from_arrays([y, u, v], "yuvj444p", colorspace="bt601", full_range=True)
    ref = cv2.cvtColor(np.dstack([y, v, u]), cv2.COLOR_YCrCb2BGR)
    assert np.abs(regions.read_bgr(frame, (0, 0, 16, 16)).astype(int) - ref).max() <= 1


def test_ten_bit_reads_like_eight_bit():
    # Given a 10-bit frame whose samples are the 8-bit frame's times 4
    f8 = i420_frame(smooth_bgr(48, 64))
    f10 = Frame.from_arrays([p.astype(np.uint16) * 4 for p in f8.planes], "yuv420p10le", colorspace="bt601")
    # Then both read the same BGR
    assert np.abs(regions.read_bgr(f10, (0, 0, 64, 48)).astype(int) - regions.read_bgr(f8, (0, 0, 64, 48))).max() <= 1


def test_small_bgr_and_small_gray_are_downscaled_copies():
    # Given a 320x240 frame
    frame = i420_frame(smooth_bgr(240, 320))
    before = [p.copy() for p in frame.planes]
    # When small copies with a longer side of 160 are made
    img, scale = regions.small_bgr(frame, 160)
    gray, gscale = regions.small_gray(frame, 160)
    # Then they are half size and look like the downscaled full conversion
    assert img.shape == (120, 160, 3) and gray.shape == (120, 160) and scale == gscale == 0.5
    ref = cv2.resize(i420_to_bgr(frame), (160, 120), interpolation=cv2.INTER_AREA)
    assert np.abs(img.astype(int) - ref).mean() < 1.5
    ref_gray = cv2.cvtColor(ref, cv2.COLOR_BGR2GRAY)
    assert np.abs(gray.astype(int) - ref_gray).mean() < 3.0
    # and the frame is untouched
    assert not frame.touched and all((a == b).all() for a, b in zip(before, frame.planes))
    assert regions.small_bgr(frame, 1000)[1] == 1.0


def test_box_outside_frame_is_refused():
    frame = i420_frame(smooth_bgr(16, 16))
    with pytest.raises(ValueError):
        regions.read_bgr(frame, (0, 0, 17, 16))
    with pytest.raises(ValueError):
        regions.read_bgr(frame, (4, 4, 4, 8))


def reference_blend(frame: Frame, box, bgr: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """The planes write_bgr must produce, by the plain definition: every pixel converted to
    YUV at full resolution, luma blended by its mask, each chroma sample set to the mean over
    its pixels of (m * new + (1 - m) * old). Whole-plane float64, no shortcuts."""
    x0, y0, x1, y1 = box
    h, w = frame.height, frame.width
    sx, sy = frame.chroma_subsampling
    a, b = regions.bgr_to_yuv_affine(frame.colorspace, bool(frame.full_range), frame.bit_depth)
    m = np.zeros((h, w))
    m[y0:y1, x0:x1] = np.clip(mask, 0, 1)
    new = np.zeros((h, w, 3))
    new[y0:y1, x0:x1] = bgr.astype(np.float64) @ a.T + b
    maxv = (1 << frame.bit_depth) - 1
    y = frame.planes[0].astype(np.float64)
    out_y = np.where(m > 0, np.clip(np.rint(y + m * (new[..., 0] - y)), 0, maxv), y)
    outs = [out_y]
    for k, plane in ((1, frame.planes[1]), (2, frame.planes[2])):
        old = plane.astype(np.float64)
        up = np.repeat(np.repeat(old, sy, 0), sx, 1)[:h, :w]
        mixed = m * new[..., k] + (1 - m) * up
        pad = ((0, -h % sy), (0, -w % sx))
        mixed, cover = np.pad(mixed, pad, mode="edge"), np.pad(m, pad, mode="edge")
        mean = mixed.reshape(old.shape[0], sy, old.shape[1], sx).mean(axis=(1, 3))
        cm = cover.reshape(old.shape[0], sy, old.shape[1], sx).mean(axis=(1, 3))
        outs.append(np.where(cm > 0, np.clip(np.rint(mean), 0, maxv), old))
    return [o.astype(frame.planes[0].dtype) for o in outs]


@pytest.mark.parametrize("pix_fmt,w,h,box", [
    ("yuv420p", 64, 48, (8, 6, 56, 40)),          # aligned box
    ("yuv420p", 101, 77, (13, 7, 101, 77)),       # odd corners, reaching the odd frame edge
    ("yuv422p", 50, 30, (3, 1, 47, 29)),
    ("yuv444p", 40, 30, (5, 5, 33, 21)),
    ("yuv420p10le", 64, 48, (7, 5, 55, 43)),
])
def test_write_bgr_equals_the_plain_definition(pix_fmt, w, h, box):
    # Given a noisy frame, a random patch and a mask that is 0 on a margin and in holes
    rng = np.random.default_rng(7)
    frame = blank_frame(pix_fmt, w, h)
    top = 1023 if pix_fmt.endswith("10le") else 255
    for p in frame.planes:
        p[:] = rng.integers(0, top + 1, p.shape)
    x0, y0, x1, y1 = box
    mask = rng.random((y1 - y0, x1 - x0)).astype(np.float32)
    mask[:3], mask[:, -4:] = 0.0, 0.0
    mask[mask < 0.2] = 0.0
    patch = rng.integers(0, 256, (y1 - y0, x1 - x0, 3)).astype(np.uint8)
    want = reference_blend(frame, box, patch, mask)
    # When write_bgr blends it (tight support, chroma from block means of mask * BGR)
    regions.write_bgr(frame, box, patch, mask)
    # Then every plane matches the definition to within one code value (float32 vs float64 rounding)
    for got, exp in zip(frame.planes, want):
        diff = np.abs(got.astype(np.int32) - exp.astype(np.int32))
        assert diff.max() <= 1, pix_fmt
        assert (diff > 0).mean() < 0.01


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p", "yuv444p", "yuv420p10le"])
def test_read_bgr_of_an_odd_box_is_the_same_cut_of_the_whole_frame(pix_fmt):
    # Given a noisy odd-sized frame
    rng = np.random.default_rng(3)
    frame = blank_frame(pix_fmt, 45, 31)
    for p in frame.planes:
        p[:] = rng.integers(0, (1024 if pix_fmt.endswith("10le") else 256), p.shape)
    whole = regions.read_bgr(frame, (0, 0, 45, 31))
    # Then a box with odd corners reads exactly those pixels of the whole-frame conversion
    for box in [(1, 1, 44, 30), (3, 2, 4, 3), (0, 5, 45, 31), (7, 0, 40, 1)]:
        x0, y0, x1, y1 = box
        assert np.array_equal(regions.read_bgr(frame, box), whole[y0:y1, x0:x1]), box
