"""The `detector` face option: YuNet chosen by name, run through the real session factory and
the detect stage on a stand-in with YuNet's exact I/O (the demo pack's generator), into
which one known face is planted; SCRFD/auto/Haar and the refusals around the choice."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from farm.errors import InputError, ModelError
from farm.faces.chain import build_chain
from farm.faces.detect import HaarDetector, ScrfdDetector, YunetDetector, build_detector
from farm.jobs.face_prep import prepare_faces
from farm.jobs.submit import SubmitRequest
from farm.models.checks import check_signature
from farm.models.demo import build_demo_pack, default_manifest_path
from farm.models.manifest import MANIFEST_FILE, dump_manifest, load_manifest
from farm.models.packs import clear_pack_cache, load_pack
from farm.models.standins import yunet_standin
from farm.pipeline.frame import Frame
from tests import clips

SIZE = 640                      # the YuNet input side the detector letterboxes into (dynamic dims)
STRIDE, ROW, COL = 16, 10, 20   # where the planted face sits: cell (row, col) of stride 16
# the planted face in detector-input pixels: centre ((col+.5)*16, (row+.5)*16), 96 x 128
BOX = np.array([328 - 48, 168 - 64, 328 + 48, 168 + 64], np.float32)
KPS = np.array([[305, 150], [351, 150], [328, 175], [310, 200], [346, 200]], np.float32)


def planted_yunet(entry) -> onnx.ModelProto:
    """The demo YuNet stand-in (all scores 0) plus one face at (ROW, COL) of stride 16, for a
    640x640 input: outputs = stand-in outputs + constants, names and shapes unchanged."""
    model = yunet_standin(entry)
    graph = model.graph
    cell = ROW * (SIZE // STRIDE) + COL
    plant = {
        "cls": 0.9, "obj": 0.9,
        "bbox": np.array([0.5, 0.5, np.log(96 / STRIDE), np.log(128 / STRIDE)], np.float32),
        "kps": (KPS / STRIDE - np.array([COL, ROW], np.float32)).reshape(-1),
    }
    outputs = [o.name for o in graph.output]
    for node in graph.node:   # the stand-in's own tensors get a suffix; the real names are re-made below
        node.input[:] = [f"{n}_zero" if n in outputs else n for n in node.input]
        node.output[:] = [f"{n}_zero" if n in outputs else n for n in node.output]
    added = []
    for name in outputs:
        head, _, stride = name.partition("_")
        width = {"cls": 1, "obj": 1, "bbox": 4, "kps": 10}[head]
        const = np.zeros((1, (SIZE // int(stride)) ** 2, width), np.float32)
        if int(stride) == STRIDE:
            const[0, cell] = plant[head]
        graph.initializer.insert(0, numpy_helper.from_array(const, f"{name}_plant"))
        added.append(helper.make_node("Add", [f"{name}_zero", f"{name}_plant"], [name]))
    graph.node.extend(added)
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def onnx_pack(tmp_path_factory) -> Path:
    """A directory pack of demo stand-ins with detector = "onnx" and the planted YuNet."""
    root = tmp_path_factory.mktemp("yunet-pack")
    demo = build_demo_pack(root)
    entry = demo.entry("detector_yunet")
    data = planted_yunet(entry).SerializeToString()
    (root / entry.file).write_bytes(data)
    models = tuple(dataclasses.replace(m, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
                   if m.role == "detector_yunet" else m for m in demo.models)
    manifest = dataclasses.replace(demo, name="yunet-test", demo=False, detector="onnx", models=models)
    (root / MANIFEST_FILE).write_text(dump_manifest(manifest), encoding="utf-8")
    return root


@pytest.fixture
def pack(onnx_pack, tmp_path):
    clear_pack_cache()
    yield load_pack(onnx_pack, tmp_path / "models", providers="cpu")
    clear_pack_cache()


def grey_frame(width: int = 1280, height: int = 720) -> Frame:
    planes = [np.full((height, width), 90, np.uint8), np.full((height // 2, width // 2), 128, np.uint8),
              np.full((height // 2, width // 2), 128, np.uint8)]
    return Frame.from_arrays(planes, "yuv420p")


def test_the_yunet_stand_in_keeps_the_real_signature(onnx_pack):
    real = load_manifest(default_manifest_path()).entry("detector_yunet")
    pack_entry = load_manifest(onnx_pack / MANIFEST_FILE).entry("detector_yunet")
    assert check_signature(real, onnx_pack / pack_entry.file) == []


def test_detector_yunet_runs_the_yunet_model_through_the_stage_at_full_resolution(pack):
    # Given a chain asked for detector=yunet on a pack whose SCRFD finds nothing
    latent = np.ones(512, np.float32) / np.sqrt(512)
    chain = build_chain({"detector": "yunet", "faces": "all"}, pack, latent)
    detect = chain.stages[0]
    assert isinstance(detect.detector, YunetDetector)
    assert detect.detector.session is pack.session("detector_yunet")
    # When a 1280x720 frame goes through (the detector sees it halved: 640x360, letterboxed)
    frame = grey_frame()
    with chain:
        chain.process(frame)
    # Then the planted face comes back in full-resolution pixels and is swapped
    assert len(frame.faces) == 1
    face = frame.faces[0]
    assert np.allclose(face.bbox, BOX * 2, atol=1e-3)
    assert np.allclose(face.kps, KPS * 2, atol=1e-3)
    assert np.isclose(face.score, 0.9, atol=1e-5)
    assert frame.touched


def test_scrfd_and_auto_use_the_scrfd_model(pack):
    latent = np.ones(512, np.float32) / np.sqrt(512)
    for choice in ("scrfd", "auto"):
        chain = build_chain({"detector": choice}, pack, latent)
        assert isinstance(chain.stages[0].detector, ScrfdDetector)
        frame = grey_frame()
        chain.process(frame)
        assert frame.faces == [] and not frame.touched   # the SCRFD stand-in finds nothing


def test_the_demo_pack_uses_haar_and_refuses_a_named_detector(tmp_path):
    clear_pack_cache()
    demo = load_pack("demo", tmp_path / "models", providers="cpu")
    assert isinstance(build_detector(demo, choice="auto"), HaarDetector)
    for choice in ("scrfd", "yunet"):
        with pytest.raises(ModelError) as info:
            build_detector(demo, choice=choice)
        assert info.value.exit_code == 2 and "Haar" in info.value.message and choice in info.value.message
        assert "auto" in info.value.hint


def test_a_pack_without_yunet_refuses_detector_yunet():
    entry = SimpleNamespace(name="det_10g")
    pack = SimpleNamespace(name="mine", detector="onnx", has=lambda role: role == "detector",
                           entry=lambda role: entry, session=lambda role: pytest.fail("no session expected"))
    with pytest.raises(ModelError) as info:
        build_detector(pack, choice="yunet")
    assert "'mine'" in info.value.message and "detector_yunet" in info.value.message


def _request(tmp_path: Path, models: str, **face_options) -> SubmitRequest:
    video = clips.make_clip(tmp_path / "v.mp4", seconds=0.2)
    face = clips.make_face_image(tmp_path / "face.jpg")
    return SubmitRequest(video=video, sources=[face], models=models, face_options=dict(face_options))


def _settings(tmp_path: Path):
    return SimpleNamespace(models="default", models_path=tmp_path / "models", storage_dir=tmp_path / "storage",
                           max_image_side=8192, max_image_bytes=50 * 1024 * 1024,   # image limits (issue 11.5)
                           providers="cpu")   # the workers' providers (the precision plan, issue 14.4)


def test_submit_refuses_an_unknown_detector(tmp_path):
    with pytest.raises(InputError) as info:
        prepare_faces(_request(tmp_path, "demo", detector="retinaface"), _settings(tmp_path))
    assert info.value.exit_code == 2 and "detector" in info.value.message
    assert "yunet" in info.value.hint


def test_submit_with_detector_yunet_labels_the_yunet_model(onnx_pack, tmp_path):
    clear_pack_cache()
    prep = prepare_faces(_request(tmp_path, str(onnx_pack), detector="yunet"), _settings(tmp_path))
    entry = load_manifest(onnx_pack / MANIFEST_FILE).entry("detector_yunet")
    assert prep.options["detector"] == "yunet"
    assert prep.label["models"]["detector_yunet"] == {"name": entry.name, "sha256": entry.sha256}
    assert "detector" not in prep.label["models"]   # the SCRFD model did not make this output
    assert prep.source_embedding is not None and prep.source_embedding.shape == (512,)


def test_submit_with_yunet_not_installed_says_how_to_fetch_it(onnx_pack, tmp_path):
    # Given a copy of the pack where YuNet is optional and its file absent
    root = tmp_path / "pack"
    root.mkdir()
    manifest = load_manifest(onnx_pack / MANIFEST_FILE)
    models = tuple(dataclasses.replace(m, optional=True) if m.role == "detector_yunet" else m
                   for m in manifest.models)
    for m in models:
        if m.role != "detector_yunet":
            (root / m.file).write_bytes((onnx_pack / m.file).read_bytes())
    (root / MANIFEST_FILE).write_text(dump_manifest(dataclasses.replace(manifest, models=models)), encoding="utf-8")
    clear_pack_cache()
    # When a job asks for it, it is refused at submit with the exact command
    with pytest.raises(ModelError) as info:
        prepare_faces(_request(tmp_path, str(root), detector="yunet"), _settings(tmp_path))
    yunet = manifest.entry("detector_yunet")
    assert yunet.file in info.value.message
    assert f"farm models fetch {yunet.name} --models {root}" in info.value.hint
