"""farm.faces.skin: the demo Haar detector scans only around skin-toned pixels.

Real faces: skimage's astronaut; real detector: OpenCV's bundled Haar cascade.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.unit.test_faces_standins import astronaut_frame

from farm.faces.detect import HaarDetector, detect_small
from farm.faces.skin import skin_roi
from farm.pipeline.frame import Frame


class CountingHaar(HaarDetector):
    """The real cascade, counting the pixels it was asked to scan."""

    def __init__(self, gated: bool = True) -> None:
        super().__init__()
        self.skin_gated = gated
        self.scanned: list[tuple[int, int]] = []

    def detect(self, image):
        self.scanned.append(image.shape[:2])
        return super().detect(image)


def boxes(faces) -> list[list[int]]:
    return [[int(round(v)) for v in f.bbox] for f in faces]


@pytest.mark.parametrize("ten_bit", [False, True])
def test_the_astronaut_is_found_as_without_the_gate_scanning_less(ten_bit):
    frame = astronaut_frame(ten_bit)
    gated, whole = CountingHaar(True), CountingHaar(False)
    found = detect_small(gated, frame, 480)
    assert boxes(found) == boxes(detect_small(whole, frame, 480))
    assert len(found) == 1


def test_a_face_on_a_skinless_background_is_found_scanning_a_part_of_the_frame():
    # Given the astronaut's head pasted on a blue 1024x1024 picture
    import cv2
    import skimage

    bgr = np.zeros((1024, 1024, 3), np.uint8)
    bgr[:] = (180, 90, 30)
    bgr[600:800, 300:500] = skimage.data.astronaut()[20:220, 140:340, ::-1]
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    planes = [i420[:1024].copy(), i420[1024:1280].reshape(512, 512).copy(), i420[1280:].reshape(512, 512).copy()]
    frame = Frame.from_arrays(planes, "yuv420p", colorspace="bt601")
    gated, whole = CountingHaar(True), CountingHaar(False)
    # When both detect at 480 px
    found = detect_small(gated, frame, 480)
    # Then they find the same face (within the cascade's pixel grid: the crop moves the scan
    # windows by a fraction of a step), the gated one scanning under half the copy
    full = detect_small(whole, frame, 480)
    assert len(found) == len(full) == 1
    assert np.abs(found[0].bbox - full[0].bbox).max() <= 4
    x0, y0, x1, y1 = (int(v) for v in found[0].bbox)
    assert 300 <= x0 < x1 <= 500 and 600 <= y0 < y1 <= 800
    (gh, gw), (wh, ww) = gated.scanned[0], whole.scanned[0]
    assert gh * gw < 0.5 * wh * ww


def synthetic_frame(u_value: int, v_value: int, size: int = 256) -> Frame:
    """Textured luma (as a busy test pattern), flat chroma."""
    rng = np.random.default_rng(5)
    y = rng.integers(16, 236, (size, size)).astype(np.uint8)
    u = np.full((size // 2, size // 2), u_value, np.uint8)
    v = np.full((size // 2, size // 2), v_value, np.uint8)
    return Frame.from_arrays([y, u, v], "yuv420p", colorspace="bt601")


def test_a_frame_without_skin_tones_is_not_scanned():
    frame = synthetic_frame(200, 60)          # saturated blue-green: no skin anywhere
    detector = CountingHaar()
    assert detect_small(detector, frame, 480) == [] and detector.scanned == []
    assert skin_roi(frame, 256, 256) is None


def test_lone_skin_samples_at_colour_edges_do_not_open_the_gate():
    frame = synthetic_frame(200, 60)
    frame.planes[1][::16, ::16], frame.planes[2][::16, ::16] = 100, 150   # isolated skin-toned samples
    assert skin_roi(frame, 256, 256) is None


def test_a_grey_frame_is_scanned_whole_and_its_face_found():
    # Given the astronaut in black and white (chroma exactly neutral)
    frame = astronaut_frame()
    frame.planes[1][:], frame.planes[2][:] = 128, 128
    detector = CountingHaar()
    faces = detect_small(detector, frame, 480)
    # Then the whole copy is scanned (colour cannot tell) and the face is there
    assert skin_roi(frame, 480, 480) == (0, 0, 480, 480)
    assert detector.scanned == [(480, 480)]
    assert len(faces) == 1


def test_the_region_covers_the_skin_patch_with_a_margin():
    frame = synthetic_frame(200, 60)
    frame.planes[1][40:60, 30:50], frame.planes[2][40:60, 30:50] = 100, 150   # a skin patch: luma 60..100 x 80..120
    x0, y0, x1, y1 = skin_roi(frame, 256, 256)
    assert x0 <= 60 and y0 <= 80 and x1 >= 100 and y1 >= 120
    assert (x1 - x0) < 256 and (y1 - y0) < 256
