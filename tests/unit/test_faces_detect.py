"""farm.faces.decode / detect: decoders on constructed tensors, NMS, Haar on a real face."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import skimage.data
from tests.unit.test_faces_standins import astronaut_frame

from farm.faces import decode
from farm.faces.detect import DetectStage, HaarDetector, ScrfdDetector, YunetDetector, detect_image
from farm.faces.types import Face
from farm.pipeline.frame import Frame


def scrfd_outputs(size: int = 640) -> tuple[list[np.ndarray], dict]:
    """9 SCRFD outputs (scores 8/16/32, boxes 8/16/32, kps 8/16/32) holding known faces."""
    outs = {}
    for s in (8, 16, 32):
        n = (size // s) ** 2 * 2
        outs[s] = [np.zeros((n, 1), np.float32), np.zeros((n, 4), np.float32), np.zeros((n, 10), np.float32)]
    # face A: stride 16, cell row 10 col 20, anchor 1 -> centre (320, 160)
    i = (10 * (size // 16) + 20) * 2 + 1
    outs[16][0][i] = 0.9
    outs[16][1][i] = [3, 4, 5, 6]                      # distances in strides
    outs[16][2][i] = np.arange(10, dtype=np.float32) * 0.25 - 1.0
    # face A again, weaker, at stride 8 (centre (320, 160), nearly the same box) -> suppressed by NMS
    j = (20 * (size // 8) + 40) * 2
    outs[8][0][j] = 0.8
    outs[8][1][j] = [6, 8, 10, 12]
    # below threshold at stride 32
    outs[32][0][5] = 0.3
    expected = {
        "box": [320 - 48, 160 - 64, 320 + 80, 160 + 96],
        "kps": np.array([320, 160], np.float32) + (np.arange(10, dtype=np.float32) * 0.25 - 1.0).reshape(5, 2) * 16,
    }
    flat = [outs[s][k] for k in range(3) for s in (8, 16, 32)]
    return flat, expected


def test_decode_scrfd_known_box_and_landmarks():
    outs, expected = scrfd_outputs()
    boxes, scores, kps = decode.decode_scrfd(outs[0:3], outs[3:6], outs[6:9], (640, 640), 0.5)
    assert len(scores) == 2  # the 0.3 one is dropped
    boxes, scores, kps = decode.suppress((boxes, scores, kps), 0.4)
    assert len(scores) == 1 and np.isclose(scores[0], 0.9)
    assert np.allclose(boxes[0], expected["box"])
    assert np.allclose(kps[0], expected["kps"])


def test_yunet_decode_known_box():
    size = 640
    heads: dict[str, list[np.ndarray]] = {k: [] for k in ("cls", "obj", "bbox", "kps")}
    for s in (8, 16, 32):
        n = (size // s) ** 2
        heads["cls"].append(np.zeros((1, n, 1), np.float32))
        heads["obj"].append(np.zeros((1, n, 1), np.float32))
        heads["bbox"].append(np.zeros((1, n, 4), np.float32))
        heads["kps"].append(np.zeros((1, n, 10), np.float32))
    # stride 32, row 3, col 5
    i = 3 * (size // 32) + 5
    heads["cls"][2][0, i] = 0.81
    heads["obj"][2][0, i] = 1.0
    heads["bbox"][2][0, i] = [0.5, 0.25, np.log(4.0), np.log(2.0)]
    heads["kps"][2][0, i] = [0.1, 0.2, 0.9, 0.2, 0.5, 0.5, 0.2, 0.8, 0.8, 0.8]
    boxes, scores, kps = decode.decode_yunet(heads["cls"], heads["obj"], heads["bbox"], heads["kps"], (640, 640))
    # centre ((5 + 0.5) * 32, (3 + 0.25) * 32) = (176, 104); size (4 * 32, 2 * 32)
    assert len(scores) == 1 and np.isclose(scores[0], 0.9)  # sqrt(0.81 * 1), as OpenCV
    assert np.allclose(boxes[0], [176 - 64, 104 - 32, 176 + 64, 104 + 32])
    assert np.allclose(kps[0, 0], [(5 + 0.1) * 32, (3 + 0.2) * 32])
    assert np.allclose(kps[0, 4], [(5 + 0.8) * 32, (3 + 0.8) * 32])

    # and through the detector class, with output names and a letterboxed 1280x720 image
    class FakeYunet:
        def get_inputs(self):
            return [SimpleNamespace(name="input", shape=[1, 3, 640, 640], type="tensor(float)")]

        def get_outputs(self):
            return [SimpleNamespace(name=f"{k}_{s}") for k in ("bbox", "cls", "kps", "obj") for s in (8, 16, 32)]

        def run(self, names, feed):
            self.feed = feed
            return [heads[k][j] for k in ("bbox", "cls", "kps", "obj") for j in range(3)]

    fake = FakeYunet()
    faces = YunetDetector(fake).detect(np.full((720, 1280, 3), 200, np.uint8))
    assert np.allclose(faces[0].bbox, np.array([112, 72, 240, 136]) * 2)  # det_scale 0.5
    assert fake.feed["input"].max() == 200.0  # raw 0..255 input


def test_nms_against_hand_computed_iou():
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    # IoU(0, 1) = 80 / 120 = 0.667; box 3 duplicates box 0 with a higher score
    assert list(decode.nms(boxes, scores, 0.4)) == [3, 2]
    assert list(decode.nms(boxes, scores, 0.7)) == [3, 1, 2]
    assert list(decode.nms(boxes[:0], scores[:0], 0.4)) == []


def test_scrfd_detector_letterboxes_and_maps_back():
    outs, expected = scrfd_outputs()

    class FakeScrfd:
        def get_inputs(self):
            return [SimpleNamespace(name="input.1", shape=[1, 3, "?", "?"], type="tensor(float)")]

        def get_outputs(self):
            return [SimpleNamespace(name=str(i)) for i in range(9)]

        def run(self, names, feed):
            self.feed = feed
            return list(reversed(outs))  # order must not matter

    fake = FakeScrfd()
    image = np.zeros((720, 1280, 3), np.uint8)
    image[..., 2] = 255  # red in BGR
    faces = ScrfdDetector(fake).detect(image)
    assert len(faces) == 1
    assert np.allclose(faces[0].bbox, np.array(expected["box"]) / 0.5)  # 1280 -> 640: det_scale 0.5
    assert np.allclose(faces[0].kps, expected["kps"] / 0.5, atol=1e-4)
    blob = fake.feed["input.1"]
    assert blob.shape == (1, 3, 640, 640)
    # RGB order, (x - 127.5) / 128; the letterbox padding is black
    assert np.isclose(blob[0, 0, 0, 0], (255 - 127.5) / 128) and np.isclose(blob[0, 2, 0, 0], -127.5 / 128)
    assert np.isclose(blob[0, 0, 639, 0], -127.5 / 128)


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


ASTRONAUT_FACE = (175, 62, 275, 165)  # by eye: hairline to chin, ear to ear


def test_haar_finds_the_astronaut_in_a_yuv_frame():
    # Given the astronaut photo as a yuv420p frame
    frame = astronaut_frame()
    # When the demo detector runs on a downscaled copy
    DetectStage(HaarDetector(), max_side=256).process(frame)
    # Then one face is found, at full resolution, with plausible landmarks
    assert len(frame.faces) == 1
    face = frame.faces[0]
    assert iou(face.bbox, ASTRONAUT_FACE) > 0.6
    (lx, ly), (rx, ry) = face.kps[0], face.kps[1]
    assert 190 < lx < 215 and 235 < rx < 260 and 90 < ly < 115 and 90 < ry < 115
    assert not frame.touched


def test_detect_image_on_a_photo_and_nothing_on_a_flat_one():
    bgr = np.ascontiguousarray(skimage.data.astronaut()[..., ::-1])
    faces = detect_image(HaarDetector(), bgr, max_side=256)
    assert len(faces) == 1 and iou(faces[0].bbox, ASTRONAUT_FACE) > 0.6
    assert detect_image(HaarDetector(), np.full((200, 300, 3), 128, np.uint8)) == []


def test_detect_stage_maps_to_full_resolution_and_filters_scores():
    class Fake:
        wants_gray = False

        def detect(self, image):
            self.shape = image.shape
            kps = np.tile([[10.0, 20.0]], (5, 1))
            return [Face([10, 20, 30, 40], 0.9, kps), Face([50, 50, 60, 60], 0.2, kps)]

    y = np.zeros((720, 1280), np.uint8)
    frame = Frame.from_arrays([y, np.zeros((360, 640), np.uint8), np.zeros((360, 640), np.uint8)], "yuv420p")
    fake = Fake()
    DetectStage(fake, max_side=640, min_score=0.5).process(frame)
    assert fake.shape == (360, 640, 3)
    assert len(frame.faces) == 1
    assert np.allclose(frame.faces[0].bbox, [20, 40, 60, 80]) and np.allclose(frame.faces[0].kps[0], [20, 40])
