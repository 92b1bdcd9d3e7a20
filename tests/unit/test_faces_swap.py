"""farm.faces.swap: the emap latent maths and the swap stage on a stand-in inswapper."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from tests.unit.test_faces_standins import KPS, astronaut_frame, outside, save, session, swapper_model

from farm.faces.align import estimate_norm, warp_face
from farm.faces.paste import region_box
from farm.faces.swap import SwapStage, emap_latent, load_emap
from farm.faces.types import Face
from farm.pipeline import regions


def test_emap_latent_matches_direct_numpy():
    rng = np.random.default_rng(0)
    e = rng.normal(0, 3, 512)
    emap = rng.normal(0, 0.1, (512, 512))
    # insightface: latent = (e / |e|) @ emap, then latent /= |latent|
    ref = (e / np.sqrt((e * e).sum())).reshape(1, -1) @ emap
    ref = ref / np.sqrt((ref * ref).sum())
    got = emap_latent(e.astype(np.float32), emap.astype(np.float32))
    assert got.dtype == np.float32 and got.shape == (512,)
    assert np.allclose(got, ref.ravel(), atol=1e-5)
    assert np.isclose(np.linalg.norm(got), 1.0, atol=1e-5)


def test_load_emap_reads_the_last_initializer(tmp_path):
    model, emap = swapper_model(seed=3)
    assert np.array_equal(load_emap(save(model, tmp_path / "inswapper.onnx")), emap)


def test_load_emap_is_cached_beside_the_model_and_a_changed_model_misses_the_cache(tmp_path):
    import os

    path = save(swapper_model(seed=3)[0], tmp_path / "inswapper.onnx")
    first = load_emap(path)
    caches = list(tmp_path.glob(".inswapper.onnx.*.emap.npy"))
    assert len(caches) == 1 and np.array_equal(np.load(caches[0]), first)
    # a second read comes from the cache (the model itself is not parsed: make it unreadable as ONNX
    # but keep its size and mtime)
    st = path.stat()
    path.write_bytes(b"\0" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert np.array_equal(load_emap(path), first)
    # a replaced model (new mtime) is read again
    model2, emap2 = swapper_model(seed=4)
    save(model2, path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert np.array_equal(load_emap(path), emap2)


def face() -> Face:
    return Face([175, 62, 275, 165], 0.9, KPS)


def test_swap_stage_feeds_the_model_contract():
    # Given a stand-in session that records what it is fed and returns mid grey
    class Fake:
        def get_inputs(self):
            return [SimpleNamespace(name="target", shape=[1, 3, 128, 128], type="tensor(float)"),
                    SimpleNamespace(name="source", shape=[1, 512], type="tensor(float)")]

        def get_outputs(self):
            return [SimpleNamespace(name="output", shape=[1, 3, 128, 128], type="tensor(float)")]

        def run(self, names, feed):
            self.feed = feed
            return [np.full((1, 3, 128, 128), 0.5, np.float32)]

    frame = astronaut_frame()
    expected_crop = warp_face(regions.read_bgr(frame, (0, 0, 512, 512)), estimate_norm(KPS, "arcface_128", 128), 128)
    latent = np.linspace(-1, 1, 512).astype(np.float32)
    fake = Fake()
    frame.faces = [face()]
    SwapStage(fake, latent).process(frame)
    # Then the target is the arcface_128 crop as RGB in [0, 1] and the source the latent
    target = fake.feed["target"]
    assert target.shape == (1, 3, 128, 128) and target.dtype == np.float32
    rgb = expected_crop[..., ::-1].transpose(2, 0, 1)[None] / 255.0
    assert np.abs(target - rgb).mean() < 1.0 / 255
    assert np.array_equal(fake.feed["source"], latent.reshape(1, 512))
    # and the face centre is now mid grey
    cx, cy = (KPS[0] + KPS[4]) / 2
    centre = regions.read_bgr(frame, (int(cx), int(cy), int(cx) + 1, int(cy) + 1))
    assert np.abs(centre.astype(int) - 128).max() <= 3


def test_swap_with_an_inverting_model_changes_only_the_face_region():
    frame = astronaut_frame()
    before = [p.copy() for p in frame.planes]
    original = regions.read_bgr(frame, (0, 0, 512, 512)).astype(int)
    model, emap = swapper_model(invert=True)
    frame.faces = [face()]
    SwapStage(session(model), emap_latent(np.ones(512, np.float32), emap)).process(frame)
    assert frame.touched
    box = region_box(frame, estimate_norm(KPS, "arcface_128", 128), 128)
    for i, (a, b) in enumerate(zip(before, frame.planes)):
        keep = outside(box, a.shape, 1 if i == 0 else 2, 1 if i == 0 else 2)
        assert (a[keep] == b[keep]).all()
    # the nose is inverted
    x, y = int(KPS[2, 0]), int(KPS[2, 1])
    after = regions.read_bgr(frame, (x - 2, y - 2, x + 2, y + 2)).astype(int)
    assert np.abs(after - (255 - original[y - 2 : y + 2, x - 2 : x + 2])).mean() < 12


def test_swap_with_an_identity_model_keeps_the_face():
    frame = astronaut_frame()
    original = regions.read_bgr(frame, (0, 0, 512, 512)).astype(int)
    model, emap = swapper_model()
    frame.faces = [face()]
    SwapStage(session(model), emap_latent(np.ones(512, np.float32), emap)).process(frame)
    x0, y0, x1, y1 = region_box(frame, estimate_norm(KPS, "arcface_128", 128), 128)
    after = regions.read_bgr(frame, (0, 0, 512, 512)).astype(int)
    assert np.abs(after - original)[y0:y1, x0:x1].mean() < 4.0
