"""farm.faces.chain: the assembled stages on stand-in models, with and without faces."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import skimage.data
from tests.unit.test_faces_standins import (
    astronaut_frame, enhancer_model, outside, recognizer_model, save, session, swapper_model,
)

from farm.faces.align import estimate_norm
from farm.faces.chain import build_chain, latent_for_pack
from farm.faces.detect import HaarDetector
from farm.faces.paste import region_box
from farm.faces.swap import emap_latent
from farm.pipeline import regions
from farm.pipeline.frame import Frame


def sessions(invert: bool = True) -> tuple[dict, np.ndarray]:
    swap, emap = swapper_model(invert=invert)
    rec, _ = recognizer_model()
    return {"detector": HaarDetector(), "recognizer": session(rec), "swapper": session(swap),
            "enhancer": session(enhancer_model(0.0))}, emap


def test_chain_order_and_optional_enhance():
    s, emap = sessions()
    latent = emap_latent(np.ones(512, np.float32), emap)
    assert build_chain({}, s, latent).names == ["detect", "select", "swap", "enhance"]
    assert build_chain({"enhance": False}, s, latent).names == ["detect", "select", "swap"]
    assert build_chain({"enhance_blend": 0}, s, latent).names == ["detect", "select", "swap"]


def test_frame_without_a_face_passes_untouched(monkeypatch):
    # Given a frame with no face and a chain that counts region conversions
    reads = []
    real = regions.read_bgr
    monkeypatch.setattr(regions, "read_bgr", lambda *a: reads.append(a) or real(*a))
    s, emap = sessions()
    chain = build_chain({"faces": "largest"}, s, emap_latent(np.ones(512, np.float32), emap))
    rng = np.random.default_rng(0)
    planes = [rng.integers(100, 110, (360, 640)).astype(np.uint8),
              np.full((180, 320), 128, np.uint8), np.full((180, 320), 128, np.uint8)]
    frame = Frame.from_arrays(planes, "yuv420p")
    before = [p.copy() for p in planes]
    # When it goes through the chain
    with chain:
        out = chain.process(frame)
    # Then nothing was converted or written
    assert out is frame and out.faces == [] and not out.touched and reads == []
    assert all((a == b).all() for a, b in zip(before, out.planes))


def test_astronaut_is_swapped_and_enhanced_only_in_the_face_region():
    s, emap = sessions()
    chain = build_chain({"enhance_blend": 0.5}, s, emap_latent(np.ones(512, np.float32), emap))
    frame = astronaut_frame()
    before = [p.copy() for p in frame.planes]
    original = regions.read_bgr(frame, (0, 0, 512, 512)).astype(int)
    with chain:
        chain.process(frame)
    assert frame.touched and len(frame.faces) == 1
    kps = frame.faces[0].kps
    boxes = [region_box(frame, estimate_norm(kps, t, n), n) for t, n in (("arcface_128", 128), ("ffhq_512", 512))]
    for i, (a, b) in enumerate(zip(before, frame.planes)):
        s_ = 1 if i == 0 else 2
        keep = outside(boxes[0], a.shape, s_, s_) & outside(boxes[1], a.shape, s_, s_)
        assert (a[keep] == b[keep]).all()
    # nose: inverted by the swapper, then half grey by the enhancer
    x, y = (int(v) for v in kps[2])
    after = regions.read_bgr(frame, (x, y, x + 1, y + 1)).astype(float)
    expected = 0.5 * 127.5 + 0.5 * (255 - original[y, x])
    assert np.abs(after - expected).max() < 16


def test_reference_mode_from_an_image_and_from_a_pack(tmp_path):
    ref = tmp_path / "ref.png"
    cv2.imwrite(str(ref), np.ascontiguousarray(skimage.data.astronaut()[..., ::-1]))
    swap, emap = swapper_model()
    rec, _ = recognizer_model()
    paths = {"swapper": save(swap, tmp_path / "swap.onnx")}
    by_role = {"recognizer": session(rec), "swapper": session(swap), "enhancer": session(enhancer_model())}
    pack = SimpleNamespace(detector="haar", path=lambda role: paths[role],
                           session=lambda role: by_role[role], entry=lambda role: SimpleNamespace(name=role, role=role))
    latent = latent_for_pack(np.ones(512, np.float32), pack)
    assert np.allclose(latent, emap_latent(np.ones(512, np.float32), emap))
    chain = build_chain({"faces": "reference", "reference": str(ref), "similarity": 0.9}, pack, latent)
    frame = astronaut_frame()
    chain.process(frame)
    assert len(frame.faces) == 1 and frame.touched
