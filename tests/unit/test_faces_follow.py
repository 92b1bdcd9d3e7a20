"""The demo pack's detector (Haar cascade + FaceFollower) finds ordinary faces in video.

Issue 12, point 9: on 1080p footage of a person at a desk (face 80-170 px tall) the demo
detector found nothing in most frames, because the cascade saw a copy of at most 480 px.
Real faces (skimage's astronaut, LFW crops), real backgrounds (skimage photos, warm and
cool), real OpenCV cascade, through DetectStage as a chunk runner drives it (setup, then
frames in order). Nothing is mocked.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests import face_scenes as scenes

from farm.faces import haar
from farm.faces.detect import DetectStage, HaarDetector
from farm.pipeline.frame import Frame

FRAMES = 30
"""Frames per sequence: two full scans (frames 0 and SCAN_EVERY) and following in between."""


def frame_of(bgr: np.ndarray, index: int) -> Frame:
    return Frame.from_arrays(scenes.to_i420(bgr), "yuv420p", index=index, colorspace="bt601")


def sequence(bg: np.ndarray, head_at, start=(0.4, 0.45), frames: int = FRAMES):
    """(frame, face box) for each frame of a person moving a little; head_at(size factor) -> Head."""
    h, w = bg.shape[:2]
    for k in range(frames):
        cx, cy, grow = scenes.drift(k, w, h, start)
        img, box = scenes.paste(bg, head_at(grow), cx, cy)
        yield frame_of(img, k), box


def run_chunk(stage: DetectStage, frames) -> list[list]:
    """The stage's faces per frame, driven as a chunk runner drives it."""
    stage.setup()
    out = []
    for frame in frames:
        stage.process(frame)
        out.append(list(frame.faces))
    return out


def recall(stage: DetectStage, seq) -> tuple[float, int]:
    """(share of frames whose face was found, count of boxes that are no face)."""
    seq = list(seq)
    found = run_chunk(stage, (f for f, _ in seq))
    hits = [any(scenes.iou(f.bbox, box) > 0.4 for f in faces) for faces, (_, box) in zip(found, seq)]
    wrong = sum(sum(scenes.iou(f.bbox, box) <= 0.4 for f in faces) for faces, (_, box) in zip(found, seq))
    return sum(hits) / len(hits), wrong


@pytest.mark.parametrize("kind", scenes.WARM + scenes.COOL)
def test_a_person_at_a_desk_is_found_in_nearly_every_1080p_frame(kind):
    # Given 1080p footage on a warm or cool background, a face 80..170 px tall moving a little
    bg = scenes.background(kind, 1920, 1080)
    stage = DetectStage(HaarDetector())        # the job option's default copy (detect_max_side 640)
    for i, face_h in enumerate((80, 100, 130, 170)):
        mirror = i % 2 == 1
        start = (0.3 + 0.12 * i, 0.35 + 0.08 * i)
        # When the stage runs over the chunk
        share, wrong = recall(stage, sequence(bg, lambda g: scenes.astronaut_head(face_h * g, mirror), start))
        # Then the face is found in at least 95 % of the frames, and nothing else is
        assert share >= 0.95, f"{kind}, face {face_h} px: found in {share:.0%} of the frames"
        assert wrong <= 0.05 * FRAMES, f"{kind}, face {face_h} px: {wrong} boxes that are no face"


def test_on_a_warm_background_the_skin_gate_cannot_help():
    # The premise of the warm cases: skin-toned pixels all over, so full scans see the whole copy
    from farm.faces.skin import skin_roi

    for kind in scenes.WARM:
        frame = frame_of(scenes.background(kind, 1920, 1080), 0)
        x0, y0, x1, y1 = skin_roi(frame, 640, 360)
        assert (x1 - x0) * (y1 - y0) >= 0.8 * 640 * 360, kind


@pytest.mark.parametrize("face_h", [160, 240])
def test_a_face_of_160_px_and_more_is_found_in_4k(face_h):
    bg = scenes.background("coffee", 3840, 2160)
    share, wrong = recall(DetectStage(HaarDetector()),
                          sequence(bg, lambda g: scenes.astronaut_head(face_h * g), frames=26))
    assert share >= 0.95 and wrong == 0, (share, wrong)


@pytest.mark.parametrize("kind", scenes.WARM + scenes.COOL)
def test_no_face_is_found_where_there_is_none(kind):
    # Given a panning shot of a background without a person
    big = scenes.background(kind, 1920 + FRAMES * 8, 1080)
    frames = [frame_of(np.ascontiguousarray(big[:, 8 * k:8 * k + 1920]), k) for k in range(FRAMES)]
    found = run_chunk(DetectStage(HaarDetector()), frames)
    assert sum(len(f) for f in found) == 0, [len(f) for f in found]


def test_real_lfw_faces_are_followed_wherever_a_scan_finds_them():
    # Given eight real faces (LFW crops, tinted) 130 px tall in 1080p, on a warm and a cool background
    stage = DetectStage(HaarDetector())
    scanned = followed = 0
    for kind in ("skin_brick", "rocket"):
        bg = scenes.background(kind, 1920, 1080)
        for index in range(8):
            seq = list(sequence(bg, lambda g: scenes.lfw_head(index, 130 * g), frames=26))
            first = haar.scan_frame(stage.detector, seq[0][0], stage.max_side)
            if not any(scenes.iou(f.bbox, seq[0][1]) > 0.4 for f in first):
                continue
            scanned += 1
            share, wrong = recall(stage, seq)
            # Then a face the full scan finds is followed through >= 95 % of the frames
            assert share >= 0.95 and wrong == 0, (kind, index, share, wrong)
            followed += 1
    # The cascade itself misses some of these small, tight crops; most it finds
    assert scanned >= 11, f"the first frame's scan found only {scanned} of 16 faces"
    assert followed == scanned


class CountingHaar(HaarDetector):
    """The real cascade, noting each call: 'scan' (whole copy) or 'follow' (a region, sizes limited)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def detect(self, image, max_size_px=None, min_size_px=None):
        self.calls.append("follow" if max_size_px else "scan")
        return super().detect(image, max_size_px=max_size_px, min_size_px=min_size_px)


def test_whole_frames_are_scanned_only_on_the_schedule():
    detector = CountingHaar()
    bg = scenes.background("skin_brick", 1920, 1080)
    found = run_chunk(DetectStage(detector), (f for f, _ in sequence(bg, lambda g: scenes.astronaut_head(120 * g))))
    assert all(len(f) == 1 for f in found)
    assert detector.calls.count("scan") == len(range(0, FRAMES, haar.SCAN_EVERY))
    assert detector.calls.count("follow") >= FRAMES - 1


def test_a_chunk_gives_the_same_faces_whatever_the_worker_rendered_before():
    # Given one chunk's frames, and a worker's stage that has just rendered another chunk
    bg = scenes.background("coffee", 1920, 1080)
    chunk = [f for f, _ in sequence(bg, lambda g: scenes.astronaut_head(110 * g), start=(0.3, 0.4))]
    other = [f for f, _ in sequence(bg, lambda g: scenes.astronaut_head(150 * g), start=(0.7, 0.5), frames=10)]
    fresh = run_chunk(DetectStage(HaarDetector()), chunk)
    used = DetectStage(HaarDetector())
    run_chunk(used, other)
    again = run_chunk(used, chunk)                       # setup() at the chunk's start forgets the other
    twice = run_chunk(used, chunk)                       # a chunk may run twice

    def boxes(found):
        return [[f.bbox.tolist() for f in faces] for faces in found]

    assert boxes(fresh) == boxes(again) == boxes(twice)
    assert all(len(f) == 1 for f in fresh)


def test_a_face_that_enters_mid_chunk_is_found_at_the_next_scan():
    bg = scenes.background("rocket", 1920, 1080)
    with_face = [f for f, _ in sequence(bg, lambda g: scenes.astronaut_head(120 * g))]
    frames = [f if f.index >= 10 else frame_of(bg, f.index) for f in with_face]
    found = run_chunk(DetectStage(HaarDetector()), frames)
    assert all(not f for f in found[:10])
    first = next(i for i, f in enumerate(found) if f)
    assert first <= haar.SCAN_EVERY and all(found[first:])


def test_a_face_that_jumps_beyond_its_region_is_scanned_for_at_once():
    # Given a face that jumps across the picture every frame (a cut, a fast pan)
    bg = scenes.background("blue_gravel", 1920, 1080)
    frames, boxes = [], []
    for k in range(8):
        img, box = scenes.paste(bg, scenes.astronaut_head(120), 500 if k % 2 else 1400, 540)
        frames.append(frame_of(img, k))
        boxes.append(box)
    found = run_chunk(DetectStage(HaarDetector()), frames)
    # Then it is found in every frame: losing it triggers a full scan of that frame
    assert all(any(scenes.iou(f.bbox, b) > 0.4 for f in faces) for faces, b in zip(found, boxes)), \
        [len(f) for f in found]
