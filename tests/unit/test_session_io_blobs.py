"""to_blob / to_planes (the model inputs of every face model) are bit for bit the plain
formula: the whole stack to float32, RGB order, (x - mean) / std, transposed to N x 3 x H x W."""

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
