"""farm.faces.recognise / identity: embeddings, batching, the source identity and its errors."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import skimage.data
from tests.unit.test_faces_standins import KPS, astronaut_frame, recognizer_model, session

from farm.errors import InputError
from farm.faces.align import TEMPLATES, estimate_norm, transform_points
from farm.faces.detect import HaarDetector, detect_image
from farm.faces.identity import compute_identity, reference_from_frame
from farm.faces.recognise import align_for_recognition, cosine_similarity, embed


def expected_embedding(crop_bgr: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The stand-in recogniser computed directly: channel means of x/127.5-1 (RGB) @ W."""
    rgb = crop_bgr[..., ::-1].astype(np.float64) / 127.5 - 1.0
    return rgb.reshape(-1, 3).mean(axis=0) @ w


def test_embed_batches_and_normalises_input():
    model, w = recognizer_model()
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (112, 112, 3)).astype(np.uint8) for _ in range(3)]
    out = embed(session(model), crops)
    assert out.shape == (3, 512) and out.dtype == np.float32
    for crop, vec in zip(crops, out):
        assert np.allclose(vec, expected_embedding(crop, w), atol=1e-4)
    assert embed(session(model), []).shape == (0, 512)


def test_embed_with_a_fixed_batch_model_runs_one_at_a_time():
    calls = []

    class Fixed:
        def get_inputs(self):
            return [SimpleNamespace(name="data", shape=[1, 3, 112, 112], type="tensor(float)")]

        def get_outputs(self):
            return [SimpleNamespace(name="fc1", shape=[1, 512], type="tensor(float)")]

        def run(self, names, feed):
            calls.append(feed["data"].shape)
            return [np.full((1, 512), feed["data"].mean(), np.float32)]

    out = embed(Fixed(), [np.zeros((112, 112, 3), np.uint8), np.full((112, 112, 3), 255, np.uint8)])
    assert calls == [(1, 3, 112, 112)] * 2
    assert np.allclose(out[:, 0], [-1.0, 1.0])


def test_alignment_for_recognition_uses_arcface_112_v2():
    image = np.ascontiguousarray(skimage.data.astronaut()[..., ::-1])
    crop = align_for_recognition(image, KPS)
    m = estimate_norm(KPS, "arcface_112_v2", 112)
    assert crop.shape == (112, 112, 3)
    assert np.abs(transform_points(m, KPS) - TEMPLATES["arcface_112_v2"] * 112).max() < 6  # hand-placed points


def write_astronaut(path, flip=False):
    image = np.ascontiguousarray(skimage.data.astronaut()[..., ::-1])
    if flip:
        image = np.ascontiguousarray(image[:, ::-1])
    cv2.imwrite(str(path), image)
    return image


def test_identity_is_the_mean_of_the_largest_faces(tmp_path):
    model, w = recognizer_model()
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    images = [write_astronaut(a), write_astronaut(b, flip=True)]
    det = HaarDetector()
    identity = compute_identity([a, b], det, session(model))
    expected = []
    for image in images:
        face = max(detect_image(det, image), key=lambda f: f.area)
        expected.append(expected_embedding(align_for_recognition(image, face.kps), w))
    assert identity.shape == (512,) and identity.dtype == np.float32
    assert np.allclose(identity, np.mean(expected, axis=0), atol=1e-4)


def test_identity_from_a_pack(tmp_path):
    model, _ = recognizer_model()
    rec = session(model)
    pack = SimpleNamespace(detector="haar", path=lambda role: tmp_path / "missing.xml",
                           session=lambda role: rec)
    path = tmp_path / "a.jpg"
    write_astronaut(path)
    assert compute_identity([path], pack).shape == (512,)


def test_identity_errors_name_the_file(tmp_path):
    model, _ = recognizer_model()
    rec, det = session(model), HaarDetector()
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    flat = tmp_path / "flat.png"
    cv2.imwrite(str(flat), np.full((200, 200, 3), 128, np.uint8))
    missing = tmp_path / "missing.png"
    for path, words in [(broken, "not a readable image"), (flat, "no face"), (missing, "cannot read")]:
        with pytest.raises(InputError) as info:
            compute_identity([path], det, rec)
        assert str(path) in str(info.value) and words in str(info.value)
        assert info.value.exit_code == 2


def test_reference_from_a_video_frame():
    model, _ = recognizer_model()
    frame = astronaut_frame()
    ref = reference_from_frame(frame, HaarDetector(), session(model))
    assert ref.shape == (512,)
    assert not frame.touched
    image = np.ascontiguousarray(skimage.data.astronaut()[..., ::-1])
    face = detect_image(HaarDetector(), image)[0]
    direct = embed(session(model), [align_for_recognition(image, face.kps)])[0]
    assert cosine_similarity(ref, direct) > 0.99
