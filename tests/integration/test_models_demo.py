"""The demo pack: generated stand-ins with the real models' exact signatures and visible effects."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from farm.models.checks import check_signature
from farm.models.demo import build_demo_pack, default_manifest_path, haar_cascade_path
from farm.models.manifest import load_manifest
from farm.models.sessions import create_session


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return root, build_demo_pack(root)


def _session(demo, role):
    root, manifest = demo
    entry = manifest.entry(role)
    return create_session(root / entry.file, ["cpu"], model_sha256=entry.sha256)


def test_stand_ins_match_the_real_signatures(demo):
    root, manifest = demo
    real = load_manifest(default_manifest_path())
    assert manifest.demo and manifest.detector == "haar"
    for entry in real.models:
        stand_in = manifest.entry(entry.name)   # demo-<name>
        assert stand_in.name == f"demo-{entry.name}" and stand_in.inputs == entry.inputs and stand_in.outputs == entry.outputs
        # the generated file itself passes the real entry's signature check
        assert check_signature(entry, root / stand_in.file) == []


def test_generation_is_deterministic(demo, tmp_path):
    _, first = demo
    second = build_demo_pack(tmp_path / "again")
    assert [e.sha256 for e in first.models] == [e.sha256 for e in second.models]


def test_swapper_emap_is_the_last_initializer(demo):
    root, manifest = demo
    for role in ("swapper", "swapper_fp16"):
        model = onnx.load(str(root / manifest.entry(role).file))
        assert numpy_helper.to_array(model.graph.initializer[-1]).shape == (512, 512)


def test_swapper_visibly_marks_the_face_by_source_identity(demo):
    s = _session(demo, "swapper")
    target = np.full((1, 3, 128, 128), 0.5, np.float32)
    a = s.run(None, {"target": target, "source": np.random.default_rng(1).standard_normal((1, 512)).astype(np.float32)})[0]
    b = s.run(None, {"target": target, "source": np.random.default_rng(2).standard_normal((1, 512)).astype(np.float32)})[0]
    assert a.shape == (1, 3, 128, 128) and 0.0 <= a.min() and a.max() <= 1.0
    centre = a[0, :, 40:100, 30:98]
    assert np.abs(centre - 0.5).mean() > 0.05          # visibly changed
    assert np.abs(a - b).mean() > 0.01                 # depends on the source
    assert np.allclose(a[0, :, :3, :3], 0.5)           # corners untouched


def test_recognizer_gives_different_faces_different_embeddings(demo):
    s = _session(demo, "recognizer")
    rng = np.random.default_rng(3)
    faces = rng.uniform(-1, 1, (2, 3, 112, 112)).astype(np.float32)
    emb = s.run(None, {"input.1": faces})[0]
    assert emb.shape == (2, 512)
    cos = emb[0] @ emb[1] / np.linalg.norm(emb[0]) / np.linalg.norm(emb[1])
    assert cos < 0.9
    again = s.run(None, {"input.1": faces[:1]})[0]
    assert np.allclose(again[0], emb[0], atol=1e-5)


def test_enhancer_sharpens_within_range(demo):
    s = _session(demo, "enhancer")
    x = np.zeros((1, 3, 512, 512), np.float32)
    x[..., 256:] = 0.5
    y = s.run(None, {"input": x})[0]
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert y[0, 0, 10, 257] > x[0, 0, 10, 257]        # edge overshoot = sharpening


def test_detectors_report_the_real_output_shapes_and_no_faces(demo):
    det = _session(demo, "detector")
    outs = det.run(None, {"input.1": np.zeros((1, 3, 640, 640), np.float32)})
    assert [o.shape for o in outs] == [(12800, 1), (3200, 1), (800, 1), (12800, 4), (3200, 4), (800, 4),
                                       (12800, 10), (3200, 10), (800, 10)]
    assert all(float(np.abs(o).max()) == 0.0 for o in outs)
    yunet = _session(demo, "detector_yunet")
    outs = yunet.run(None, {"input": np.zeros((1, 3, 640, 640), np.float32)})
    assert outs[0].shape == (1, 6400, 1) and outs[-1].shape == (1, 400, 10)


def test_haar_cascade_ships_with_opencv():
    import cv2

    assert not cv2.CascadeClassifier(str(haar_cascade_path())).empty()


def test_every_stand_in_role_is_generated_and_onnx_is_only_imported_to_build():
    """Loading a demo pack (submit, workers) must not pay for `import onnx` (~1.5 s)."""
    import subprocess
    import sys

    from farm.models.demo import STANDIN_KINDS
    from farm.models.standins import STANDINS

    assert STANDIN_KINDS == set(STANDINS)
    code = ("import sys, farm.cli.main, farm.models, farm.models.packs, farm.jobs.face_prep, farm.workers.context; "
            "print('onnx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_farm_command_starts_without_onnx_runtime_or_the_face_pipeline():
    """`farm jobs`, `farm status`, `farm submit --passthrough`: every command imports
    farm.cli.main, and ONNX Runtime alone costs ~0.4 s of each start (issue 17.1's fixed
    cost per job). farm.models loads its parts on first use."""
    import subprocess
    import sys

    code = ("import sys, farm.cli.main, farm.models.manifest, farm.models.conventions; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'onnxruntime', 'onnx', 'cv2'}), "
            "'farm.faces.stages' in sys.modules); "
            "from farm.models import load_pack; print(load_pack.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[] False", "farm.models.packs"], out
