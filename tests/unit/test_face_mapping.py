"""--map (issue 15.2), the parts that need no model and no video: each face to the nearest
reference within the similarity, everyone else to the others source or kept; the refusals;
FOLDER/person-N read from a `farm faces` faces.json; the option's conversion and label;
the swap stage swapping each face to its own source."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from farm.errors import InputError
from farm.faces.mapping import FaceMap, check_distinct, map_label, prepare_map, reference_identity
from farm.faces.options import FACE_OPTIONS, validate_options
from farm.faces.select import SelectStage
from farm.faces.swap import SwapStage
from farm.faces.types import Face
from farm.options import convert
from tests.unit.test_faces_standins import astronaut_frame


def unit(*values: float) -> np.ndarray:
    v = np.zeros(8, np.float32)
    v[: len(values)] = values
    return v / np.linalg.norm(v)


REFS = np.stack([unit(1, 0), unit(0, 1)])


def test_each_face_goes_to_the_nearest_reference_within_the_similarity():
    keep = FaceMap(REFS, np.ones((2, 4)), others=False)
    faces = [unit(1, 0.2), unit(0.2, 1), unit(1, 1), unit(0, 0, 1), None]
    # nearest wins; cos 45 deg = 0.71 is over 0.7 (to the first of two equal ones) and under 0.75
    assert keep.assign(faces, 0.7) == [0, 1, 0, None, None]
    assert keep.assign(faces, 0.75) == [0, 1, None, None, None]
    # with an others source, everyone like no reference gets it (index K)
    others = FaceMap(REFS, np.ones((3, 4)), others=True)
    assert others.assign(faces, 0.75) == [0, 1, 2, 2, 2]


def test_a_face_map_survives_its_saved_arrays_and_checks_its_counts():
    saved = FaceMap(REFS, np.arange(12).reshape(3, 4), others=True).arrays()
    back = FaceMap.from_arrays(saved)
    assert back is not None and back.others and np.array_equal(back.latents, np.arange(12).reshape(3, 4))
    assert FaceMap.from_arrays({"source": np.zeros(4)}) is None
    with pytest.raises(ValueError, match="3 source latents for 2 references"):
        FaceMap(REFS, np.ones((3, 4)), others=False)


def test_two_references_of_one_person_are_refused():
    check_distinct(["a", "b"], REFS, 0.35)
    with pytest.raises(InputError, match="a and c are the same person"):
        check_distinct(["a", "b", "c"], np.stack([*REFS, unit(1, 0.1)]), 0.35)


def test_the_option_takes_pairs_and_the_label_lists_them():
    option = FACE_OPTIONS["map"]
    assert convert("map", option, "ref.png = a.jpg", "x") == ["ref.png=a.jpg"]
    assert convert("map", option, ["r1=s1", "r2=s=2"], "x") == ["r1=s1", "r2=s=2"]
    for bad in ("ref.png", "=a.jpg", "ref.png=", [], ["a=b", 3]):
        with pytest.raises(InputError, match="map must be one or more PATH=PATH items"):
            convert("map", option, bad, "x")
    options = validate_options({"map": ["/v/faces/person-1=/src/a.jpg", "b.png=/src/b.jpg"]})
    assert options["map_others"] == "keep"
    assert map_label(options) == "map: person-1 -> a.jpg, b.png -> b.jpg, others kept"
    assert map_label({**options, "map_others": "/src/c.jpg"}).endswith("others -> c.jpg")


def test_map_goes_with_faces_all_and_map_others_needs_map():
    with pytest.raises(InputError, match="goes with faces=all, not faces=largest"):
        validate_options({"map": ["r=s"], "faces": "largest"})
    with pytest.raises(InputError, match="needs map"):
        validate_options({"map_others": "c.jpg"})
    assert SelectStage.roles(validate_options({"map": ["r=s"]}), None) == ["recognizer"]
    assert SelectStage.roles(validate_options({}), None) == []


def faces_folder(tmp_path, recognizer_sha="abc"):
    folder = tmp_path / "clip.faces"
    folder.mkdir()
    people = [{"name": "person-1", "embedding": [1.0] + [0.0] * 7}, {"name": "person-2", "embedding": [0.0, 2.0] + [0.0] * 6}]
    recognizer = {"name": "r", "sha256": recognizer_sha}
    (folder / "faces.json").write_text(json.dumps({"people": people, "recognizer": recognizer}))
    return folder


def test_a_reference_may_be_a_person_of_a_farm_faces_folder(tmp_path):
    folder = faces_folder(tmp_path)
    never = lambda path: pytest.fail(f"{path} read as an image")   # noqa: E731
    got = reference_identity(str(folder / "person-2"), never, {"name": "r", "sha256": "abc"})
    assert np.array_equal(got, [0.0, 2.0] + [0.0] * 6)
    with pytest.raises(InputError, match="has no person-3"):
        reference_identity(str(folder / "person-3"), never)
    with pytest.raises(InputError, match="made with recogniser r, this job's is other"):
        reference_identity(str(folder / "person-1"), never, {"name": "other", "sha256": "def"})
    # an image (a crop person-1.png, or anything else) goes to the image reader
    crop = folder / "person-1.png"
    crop.write_bytes(b"png")
    assert reference_identity(str(crop), lambda path: np.array([path.name == "person-1.png"], np.float32)) == 1


def test_prepare_map_computes_each_identity_once_in_order(tmp_path):
    folder = faces_folder(tmp_path)
    read: list[tuple[str, str]] = []

    def identity(path, what):
        read.append((path.name, what))
        return {"a.jpg": unit(1), "b.jpg": unit(0, 1), "c.jpg": unit(0, 0, 1), "ref.png": unit(0, 1)}[path.name]

    options = {"map": [f"{folder / 'person-1'}=a.jpg", "ref.png=b.jpg"], "map_others": "c.jpg", "similarity": 0.35}
    face_map = prepare_map(options, identity, lambda e: e * 2)
    assert read == [("ref.png", "--map reference image"), ("a.jpg", "--map source image"),
                    ("b.jpg", "--map source image"), ("c.jpg", "--map source image")]
    assert face_map.others and np.allclose(face_map.latents, 2 * np.stack([unit(1), unit(0, 1), unit(0, 0, 1)]))
    assert np.allclose(face_map.references[:, :2], [[1, 0], [0, 1]])
    with pytest.raises(InputError, match="same person"):
        prepare_map({**options, "map": ["ref.png=a.jpg", "ref.png=b.jpg"]}, identity, lambda e: e)


def face_at(x: float, embedding: np.ndarray | None) -> Face:
    kps = np.array([[x + 30, 230], [x + 70, 230], [x + 50, 250], [x + 35, 270], [x + 65, 270]], np.float32)
    return Face(np.array([x, 200, x + 100, 300]), 0.9, kps, embedding)


def test_the_select_stage_gives_each_face_its_source_and_drops_the_kept():
    class NoRecognizer:   # every face is embedded already: the recogniser is never run
        def get_inputs(self):
            raise AssertionError("the recogniser ran")

    stage = SelectStage("map", similarity=0.75, recognizer=NoRecognizer(),
                        face_map=FaceMap(REFS, np.ones((2, 4)), others=False))
    frame = SimpleNamespace(faces=[face_at(0, unit(0, 1)), face_at(150, unit(1, 1)), face_at(300, unit(1, 0))])
    [out] = stage.process_batch([frame])
    assert [(f.bbox[0], f.source) for f in out.faces] == [(0, 1), (300, 0)]


class TintSwapper:
    """A swapper stand-in: the target crop times the source latent's first value."""

    def get_inputs(self):
        return [SimpleNamespace(name="target", shape=[1, 3, 128, 128], type="tensor(float)"),
                SimpleNamespace(name="source", shape=[1, 512], type="tensor(float)")]

    def run(self, names, feed):
        return [feed["target"] * feed["source"][:, :1, None, None]]


def test_the_swap_stage_swaps_each_face_to_its_own_source():
    latents = np.zeros((2, 512), np.float32)
    latents[0, 0], latents[1, 0] = 1.0, 0.0   # source 0 keeps the crop, source 1 blacks it out
    stage = SwapStage(TintSwapper(), latents)
    frame = astronaut_frame()
    before = frame.planes[0].copy()
    frame.faces = [face_at(40, None), face_at(300, None)]
    frame.faces[1].source = 1
    stage.process(frame)
    luma = frame.planes[0]
    assert frame.faces_changed == 2
    left, right = (slice(230, 270), slice(75, 105)), (slice(230, 270), slice(335, 365))
    assert np.abs(luma[left].astype(int) - before[left]).mean() < 3   # source 0: the crop itself
    assert luma[right].mean() < 0.5 * before[right].mean()           # source 1: dark


def test_a_face_keeps_its_source_through_copies_and_tracking():
    from farm.faces.tracking import FaceTracker, interpolate
    from farm.faces.tracking_filter import OneEuroFilter

    face = face_at(10, unit(1))
    face.source = 1
    assert face.scaled(0.5).source == face.shifted(3, 4).source == 1
    other = face_at(30, unit(1))
    other.source = 1
    assert interpolate(face, other, 0.5).source == 1
    assert FaceTracker._smoothed(OneEuroFilter(), face, 0.0).source == 1
