"""Bit for bit the plain whole-array formulas: to_blob / to_planes (the input of every face model:
the stack to float32, RGB order, (x - mean) / std, N x 3 x H x W), the detectors' letterboxed
input (farm.faces.decode.letterbox_blob) and the restorer's output blended back into its crop
(farm.faces.enhance.blend_planes)."""

from __future__ import annotations

import numpy as np
import pytest

from farm.faces.session_io import to_blob, to_planes


def _reference_blob(images, mean, std, rgb=True):
    arr = np.stack(images).astype(np.float32)
    if rgb:
        arr = arr[..., ::-1]
    arr = (arr - mean) / std
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))


def _reference_planes(images, mean, std):
    arr = np.stack(images).astype(np.float32)[..., ::-1]
    arr = (arr - np.float32(255.0) * np.asarray(mean, np.float32)) / (np.float32(255.0) * np.asarray(std, np.float32))
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))


def _images(n: int, h: int, w: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.flags.c_contiguous and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("n,h,w", [(1, 640, 640), (3, 112, 112), (2, 37, 51)])
@pytest.mark.parametrize("mean,std,rgb", [(127.5, 128.0, True), (0.0, 1.0, False), (127.5, 127.5, True)])
def test_to_blob_is_the_plain_formula(n, h, w, mean, std, rgb) -> None:
    images = _images(n, h, w)
    assert _same(to_blob(images, mean, std, rgb), _reference_blob(images, mean, std, rgb))


@pytest.mark.parametrize("mean,std", [((0, 0, 0), (1, 1, 1)), ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
                                      ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), (0.5, 0.5)])
def test_to_planes_is_the_plain_formula(mean, std) -> None:
    images = _images(2, 128, 128, seed=1) + _images(1, 128, 128, seed=2)
    assert _same(to_planes(images, mean, std), _reference_planes(images, mean, std))


def test_views_and_size_mismatch() -> None:
    big = _images(1, 700, 700)[0]
    view = big[10:650, 5:645]            # not contiguous
    assert _same(to_blob([view], 127.5, 128.0), _reference_blob([view], 127.5, 128.0))
    with pytest.raises(ValueError):
        to_blob([big[:64, :64], big[:64, :32]], 0.0, 1.0)


def _reference_blend(out, crop_bgr, output_range, blend):
    lo, hi = output_range
    rgb = np.asarray(out, np.float32).reshape(3, *crop_bgr.shape[:2]).transpose(1, 2, 0)
    enhanced = np.clip((rgb[..., ::-1] - lo) * (255.0 / (hi - lo)), 0.0, 255.0)
    mixed = blend * enhanced + (1.0 - blend) * crop_bgr.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", [512, 64])
@pytest.mark.parametrize("output_range", [(-1.0, 1.0), (0.0, 1.0), (0, 1)])
@pytest.mark.parametrize("blend", [0.8, 0.37, 1.0, 1e-4])
def test_enhance_blend_is_the_plain_formula(size, output_range, blend) -> None:
    """The restorer's output back to BGR, blended with the crop (EnhanceStage.run_crop)."""
    from farm.faces.enhance import blend_planes

    rng = np.random.default_rng(size)
    lo, hi = output_range
    out = rng.uniform(lo - 0.2, hi + 0.2, (1, 3, size, size)).astype(np.float32)   # past the range too
    crop = _images(1, size, size, seed=3)[0]
    got = blend_planes(out, crop, output_range, blend)
    assert got.dtype == np.uint8 and got.flags.c_contiguous
    assert np.array_equal(got, _reference_blend(out, crop, output_range, blend))


@pytest.mark.parametrize("shape", [(360, 640), (640, 640), (720, 1280), (100, 37), (640, 360)])
@pytest.mark.parametrize("size", [(640, 640), (320, 320), (640, 480)])
@pytest.mark.parametrize("mean,std,rgb", [(127.5, 128.0, True), (0.0, 1.0, False)])
def test_letterbox_blob_is_to_blob_of_letterbox(shape, size, mean, std, rgb) -> None:
    """The detectors' input (SCRFD, YuNet): as to_blob of the zero-padded letterbox images."""
    from farm.faces import decode

    images = _images(2, *shape, seed=4)
    boxed = [decode.letterbox(image, size) for image in images]
    got, scales = decode.letterbox_blob(images, size, mean, std, rgb)
    assert _same(got, _reference_blob([b for b, _ in boxed], mean, std, rgb))
    assert scales == [s for _, s in boxed]
