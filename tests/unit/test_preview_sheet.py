"""The preview picture (farm.jobs.preview_sheet): sizes, halves that differ only inside the
face boxes (also when a large frame is shown scaled down), the panel's text, the PNG."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from farm.jobs.preview_sheet import LINE_PX, MARGIN_PX, compose, png_bytes, wrap


def frames(width: int, height: int, boxes: list[tuple[int, int, int, int]], seed: int = 0):
    """A textured frame and a copy changed (noise) only inside `boxes`."""
    rng = np.random.default_rng(seed)
    original = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    result = original.copy()
    for x0, y0, x1, y1 in boxes:
        result[y0:y1, x0:x1] = rng.integers(0, 256, (y1 - y0, x1 - x0, 3), dtype=np.uint8)
    return original, result


def outside(shape: tuple[int, ...], boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    mask = np.ones(shape[:2], bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = False
    return mask


def test_the_sheet_is_two_frames_wide_and_a_panel_taller_and_its_halves_differ_only_in_the_boxes():
    boxes = [(40, 30, 120, 110), (200, 60, 260, 150)]
    original, result = frames(320, 180, boxes)
    sheet = compose(original, result, boxes, ["first line", "second line"])
    assert (sheet.half_width, sheet.picture_height, sheet.scale, sheet.boxes) == (320, 180, 1.0, boxes)
    assert sheet.image.shape == (180 + 2 * MARGIN_PX + 2 * LINE_PX, 640, 3)
    left, right = sheet.image[:180, :320], sheet.image[:180, 320:]
    changed = (left != right).any(axis=2)
    assert changed[~outside(left.shape, boxes)].mean() > 0.5   # the result's changes are shown ...
    assert not changed[outside(left.shape, boxes)].any()       # ... and the boxes and numbers drawn alike
    assert (left != original).any()   # drawn on the sheet, never on the caller's frames:
    assert (original == frames(320, 180, boxes)[0]).all()


def test_a_large_frame_is_shown_scaled_with_its_boxes_scaled_outwards():
    boxes = [(1001, 333, 1377, 731)]   # odd edges: they fall inside picture pixels
    original, result = frames(3840, 2160, boxes, seed=3)
    sheet = compose(original, result, boxes, ["a 4K frame"], max_side=1920)
    assert (sheet.half_width, sheet.picture_height, sheet.scale) == (1920, 1080, 0.5)
    assert sheet.image.shape[1] == 3840
    (x0, y0, x1, y1), = sheet.boxes
    assert (x0, y0) <= (500, 166) and (x1, y1) >= (689, 366) and (x1 - x0) * (y1 - y0) < 0.05 * 1920 * 1080
    left, right = sheet.image[:1080, :1920], sheet.image[:1080, 1920:]
    changed = (left != right).any(axis=2)
    assert changed.any() and not changed[outside(left.shape, sheet.boxes)].any()
    odd = compose(*frames(1000, 700, [(301, 203, 555, 441)], seed=4), [(301, 203, 555, 441)], [], max_side=333)
    assert (odd.half_width, odd.picture_height) == (333, 233)
    changed = (odd.image[:233, :333] != odd.image[:233, 333:]).any(axis=2)
    assert changed.any() and not changed[outside(changed.shape, odd.boxes)].any()


def test_frames_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="differ in size"):
        compose(np.zeros((10, 20, 3), np.uint8), np.zeros((10, 22, 3), np.uint8), [], [])


def test_panel_lines_are_wrapped_to_the_width_and_nothing_is_lost():
    text = "options: " + ", ".join(f"option_{n}=value_{n}" for n in range(40)) + " " + "x" * 300
    lines = wrap(text, 300)
    assert len(lines) > 5
    assert all(cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0] <= 300 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert wrap("caf\u00e9", 300) == ["caf?"]   # the panel's font is ASCII


def chunks_of(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of each chunk of a PNG, its CRC checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        assert struct.unpack(">I", data[at + 8 + length:at + 12 + length])[0] == zlib.crc32(kind + body)
        out.append((kind, body))
        at += 12 + length
    return out


def test_the_png_holds_the_picture_and_says_it_is_synthetic():
    image = np.random.default_rng(5).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    data = png_bytes(image, {"Software": "farm test", "Description": "synthetic media"})
    assert (cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) == image).all()
    chunks = chunks_of(data)
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    assert (b"tEXt", b"Software\0farm test") in chunks and (b"tEXt", b"Description\0synthetic media") in chunks
