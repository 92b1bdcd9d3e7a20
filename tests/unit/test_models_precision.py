"""--precision (issue 14.4): which files and TensorRT engines a job's models run with.

No GPU runs here: the plans for TensorRT and CUDA providers are checked as plans, and
the provider options they give TensorRT as options; the files are real demo stand-ins."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import ModelError
from farm.models.demo import build_demo_pack
from farm.models.packs import load_pack
from farm.models.precision import Plan, plan_for
from farm.models.sessions import tensorrt_options


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("packs") / "demo"
    build_demo_pack(folder)
    return folder


@pytest.mark.parametrize("precision, providers, files, engines", [
    ("auto", ["tensorrt", "cuda"], False, True),    # fp32 files, TensorRT picks fp16 kernels itself
    ("auto", ["cuda", "cpu"], True, True),          # CUDA runs a graph as written: the fp16 file
    ("auto", ["cpu"], False, True),                 # fp16 is emulated on the CPU
    ("fp32", ["tensorrt", "cuda"], False, False),
    ("fp16", ["tensorrt", "cuda"], True, True),
    ("fp16", ["cpu"], True, True),
])
def test_the_plan_for_each_precision_and_provider_set(precision, providers, files, engines):
    plan = plan_for(precision, providers)
    assert (plan.fp16_files, plan.tensorrt_fp16) == (files, engines)
    assert plan.require == (precision == "fp16")
    assert Plan.from_dict(plan.as_dict()) == plan          # stored with the job, used as it is
    with pytest.raises(ValueError, match="not one of auto, fp32, fp16"):
        plan_for("int8", providers)


def test_tensorrt_builds_fp32_engines_only_when_asked_and_caches_them_apart(tmp_path):
    half = tensorrt_options(tmp_path, "ab" * 32, "inswapper_128", "sm90")
    full = tensorrt_options(tmp_path, "ab" * 32, "inswapper_128", "sm90", fp16=False)
    assert half["trt_fp16_enable"] == "True" and full["trt_fp16_enable"] == "False"
    assert half["trt_engine_cache_prefix"] != full["trt_engine_cache_prefix"]


def test_an_fp16_plan_runs_the_swappers_fp16_file_and_the_label_says_so(demo):
    fp32 = load_pack(str(demo), models_dir=demo.parent, providers="cpu", precision=plan_for("fp32", ["cpu"]))
    fp16 = load_pack(str(demo), models_dir=demo.parent, providers="cpu", precision=plan_for("fp16", ["cpu"]))
    assert fp32.entry("swapper").name == "demo-inswapper_128"
    assert fp16.entry("swapper").name == "demo-inswapper_128_fp16"
    assert fp16.entry("enhancer").name == "demo-gfpgan_1.4"      # no fp16 file: the fp32 one
    assert fp16.path("swapper").name == "demo_inswapper_128_fp16.onnx"
    label = fp16.label(["recognizer", "swapper"])
    assert label["precision"] == "fp16" and label["models"]["swapper"]["name"] == "demo-inswapper_128_fp16"
    assert fp32.label(["swapper"])["precision"] == "fp32"
    assert fp16.session("swapper") is not fp32.session("swapper")


def test_fp16_asked_for_by_name_needs_its_file_and_auto_falls_back(demo, tmp_path):
    import shutil

    folder = tmp_path / "mine"
    shutil.copytree(demo, folder)
    (folder / "demo_inswapper_128_fp16.onnx").unlink()
    asked = load_pack(str(folder), models_dir=tmp_path, providers="cpu", precision=plan_for("fp16", ["cpu"]),
                      require_installed=False)
    with pytest.raises(ModelError, match="inswapper_128_fp16"):
        asked.check_installed(["swapper"])
    chosen = load_pack(str(folder), models_dir=tmp_path, providers="cpu", require_installed=False,
                       precision=plan_for("auto", ["cuda", "cpu"]))
    assert chosen.entry("swapper").name == "demo-inswapper_128"      # auto: the fp32 file serves
