"""farm.faces.select: all, largest, reference (cosine similarity threshold)."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from tests.unit.test_faces_standins import KPS, astronaut_frame, recognizer_model, session

from farm.faces.recognise import align_for_recognition, embed
from farm.faces.select import SelectStage
from farm.faces.types import Face
from farm.pipeline.frame import Frame


class NoRecogniser:
    def get_inputs(self):
        raise AssertionError("the recogniser must not be needed")

    run = get_outputs = get_inputs


def faces() -> list[Face]:
    kps = np.zeros((5, 2))
    e = np.eye(512, dtype=np.float32)
    return [
        Face([0, 0, 10, 10], 0.9, kps, embedding=e[0] * 5),                  # cos 1.0 to e0
        Face([0, 0, 30, 30], 0.9, kps, embedding=e[1]),                      # cos 0.0
        Face([0, 0, 20, 20], 0.9, kps, embedding=(e[0] + e[1]) * 2),         # cos 0.707
    ]


def frame_with(fs) -> Frame:
    f = Frame.from_arrays([np.zeros((4, 4), np.uint8)] * 3, "yuv444p")
    f.faces = fs
    return f


def test_all_keeps_every_face():
    assert len(SelectStage("all").process(frame_with(faces())).faces) == 3


def test_largest_keeps_the_biggest_box():
    kept = SelectStage("largest").process(frame_with(faces())).faces
    assert len(kept) == 1 and kept[0].area == 900


@pytest.mark.parametrize("threshold,expected", [(0.35, [100, 400]), (0.8, [100]), (0.0, [100, 900, 400])])
def test_reference_keeps_faces_similar_enough(threshold, expected):
    ref = np.eye(512, dtype=np.float32)[0] * 0.1
    stage = SelectStage("reference", ref, threshold, NoRecogniser())
    assert [f.area for f in stage.process(frame_with(faces())).faces] == expected


def test_reference_embeds_faces_of_the_frame_when_needed():
    model, _ = recognizer_model()
    rec = session(model)
    frame = astronaut_frame()
    stranger = Face([0, 0, 50, 50], 0.9, KPS, embedding=-np.ones(512, np.float32))
    frame.faces = [Face([175, 62, 275, 165], 0.9, KPS), stranger]
    me = SelectStage("all").process(frame)  # nothing embedded by 'all'
    assert me.faces[0].embedding is None
    image = np.ascontiguousarray(skimage.data.astronaut()[..., ::-1])
    ref = embed(rec, [align_for_recognition(image, KPS)])[0]
    kept = SelectStage("reference", ref, 0.9, rec).process(frame).faces
    assert len(kept) == 1 and kept[0].embedding is not None and kept[0] is not stranger
    assert not frame.touched


def test_bad_mode_or_missing_reference_is_refused():
    with pytest.raises(ValueError):
        SelectStage("biggest")
    with pytest.raises(ValueError):
        SelectStage("reference")
