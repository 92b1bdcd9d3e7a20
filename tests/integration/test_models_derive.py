"""The batched copy of a fixed-batch swapper (issue 14.1): derived at install, checked
against single runs, loaded by the pack, named in the label, and refused for a graph
that cannot take a batch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from farm.cli.main import main
from farm.faces import pixel_boost as boost
from farm.faces.swap import SwapStage
from farm.models.demo import build_demo_pack
from farm.models.derive import DERIVED_DIR, batched_copy, derive_batched, record_path
from farm.models.packs import clear_pack_cache, load_pack


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("packs") / "demo"
    build_demo_pack(folder)
    return folder


def test_the_demo_packs_fixed_batch_swapper_gets_a_batched_copy_that_swaps_the_same_pixels(demo):
    clear_pack_cache()
    pack = load_pack(str(demo), models_dir=demo.parent, providers="cpu")
    entry = pack.entry("swapper")
    assert [t.shape[0] for t in entry.inputs] == [1, 1]                 # the manifest's graph fixes batch 1
    derived = pack.derived("swapper")
    assert derived is not None and derived.path.parent.name == DERIVED_DIR
    session = pack.session("swapper")
    assert [n.shape[0] for n in session.get_inputs()] == ["batch", "batch"]   # the copy is what loads
    label = pack.label(["swapper"])["models"]["swapper"]
    assert label["derived"]["sha256"] == derived.sha256 != label["sha256"]

    import onnxruntime as ort

    original = ort.InferenceSession(str(demo / entry.file), providers=["CPUExecutionProvider"])
    latent = np.random.default_rng(1).standard_normal(512).astype(np.float32)
    latent /= np.linalg.norm(latent)
    crop = np.random.default_rng(2).integers(0, 256, (512, 512, 3)).astype(np.uint8)
    batched, single = SwapStage(session, latent, "512"), SwapStage(original, latent, "512")
    assert batched.batched and not single.batched
    assert np.array_equal(batched.run_crop(crop), single.run_crop(crop))   # 16 sub-images in one run
    assert boost.factor(512, batched.crop_size) == 4


def _fixed_reshape_swapper(path: Path) -> None:
    """An inswapper-shaped graph whose Reshape fixes the batch at 1: it cannot take two."""
    nodes = [helper.make_node("Reshape", ["source", "shape"], ["flat"]),
             helper.make_node("ReduceMean", ["flat"], ["m"], axes=[1], keepdims=1),
             helper.make_node("Reshape", ["m", "shape4"], ["m4"]),
             helper.make_node("Add", ["target", "m4"], ["output"])]
    graph = helper.make_graph(
        nodes, "fixed", [helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, 128, 128]),
                         helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 128, 128])],
        [numpy_helper.from_array(np.array([1, 512], np.int64), "shape"),
         numpy_helper.from_array(np.array([1, 1, 1, 1], np.int64), "shape4"),
         numpy_helper.from_array(np.eye(512, dtype=np.float32), "emap")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


def test_a_graph_that_cannot_take_a_batch_keeps_its_original_and_says_why(demo, tmp_path):
    folder = tmp_path / "mine"
    shutil.copytree(demo, folder)
    pack = load_pack(str(folder), models_dir=tmp_path, providers="cpu")
    entry = pack.entry("swapper")
    _fixed_reshape_swapper(folder / entry.file)
    assert derive_batched(folder, entry, "f" * 64) is None
    record = json.loads(record_path(folder, entry).read_text())
    assert record["ok"] is False and "batch of 2" in record["why"], record
    assert batched_copy(folder, entry, "f" * 64) is None


def test_a_copy_made_from_another_file_is_never_used(demo):
    entry = load_pack(str(demo), models_dir=demo.parent, providers="cpu").entry("swapper")
    assert batched_copy(demo, entry, entry.sha256) is not None
    assert batched_copy(demo, entry, "0" * 64) is None        # the original was replaced since


def test_installing_a_swapper_derives_its_batched_copy(demo, tmp_path, monkeypatch, capsys):
    """`farm models import` of a pack folder (a directory pack with the demo files as its weights)."""
    monkeypatch.setenv("FARM_HOME", str(tmp_path / "home"))
    clear_pack_cache()
    source = tmp_path / "usb"
    source.mkdir()
    pack = tmp_path / "pack"
    pack.mkdir()
    manifest = (demo / "manifest.toml").read_text().replace("demo = true", "demo = false")
    (pack / "manifest.toml").write_text(manifest)
    for onnx_file in demo.glob("*.onnx"):
        shutil.copy(onnx_file, source / onnx_file.name)
    with pytest.raises(SystemExit) as done:
        main(["models", "import", str(source), "--models", str(pack), "demo-inswapper_128"])
    assert done.value.code == 0, capsys.readouterr().err
    assert (pack / DERIVED_DIR / "demo_inswapper_128.batch.onnx").is_file()
    clear_pack_cache()
