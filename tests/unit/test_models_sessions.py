"""The session factory: provider parsing, no silent CPU fallback, clear errors, CPU works."""

from __future__ import annotations

import logging

import pytest

from farm.errors import InputError, ProviderError
from farm.models import providers as prov
from farm.models import sessions
from farm.models.demo import build_demo_pack
from farm.models.packs import ModelPack, PackLocation
from farm.models.sessions import create_session

NO_GPU = bool(prov.diagnose("cuda"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return PackLocation("demo", build_demo_pack(root), root)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("tensorrt,cuda,cpu", ["tensorrt", "cuda", "cpu"]),
        ("cpu,cuda,tensorrt", ["tensorrt", "cuda", "cpu"]),
        (" CPU ", ["cpu"]),
        ("trt,gpu", ["tensorrt", "cuda"]),
        (["cuda"], ["cuda"]),
        (None, ["auto"]),
        ("auto", ["auto"]),
        ("", ["auto"]),
    ],
)
def test_provider_lists_are_parsed_into_preference_order(spec, expected):
    assert prov.parse_providers(spec) == expected


def test_unknown_provider_is_refused():
    with pytest.raises(InputError, match="rocm"):
        prov.parse_providers("rocm,cpu")


def test_cpu_fallback_is_disabled_unless_cpu_was_asked_for():
    gpu_only = sessions.session_options(["tensorrt", "cuda"])
    assert gpu_only.get_session_config_entry(sessions.DISABLE_CPU_FALLBACK) == "1"
    with_cpu = sessions.session_options(["cuda", "cpu"])
    with pytest.raises(RuntimeError, match="does not have configuration"):
        with_cpu.get_session_config_entry(sessions.DISABLE_CPU_FALLBACK)


def test_tensorrt_caches_live_per_architecture_under_a_per_model_hash_prefix(tmp_path):
    opts = sessions.tensorrt_options(tmp_path, "ab" * 32, "inswapper_128", "sm90")
    assert opts["trt_fp16_enable"] == "True"
    assert opts["trt_engine_cache_path"] == opts["trt_timing_cache_path"] == str(tmp_path / "tensorrt" / "sm90")
    assert opts["trt_engine_cache_prefix"] == "inswapper_128_" + "ab" * 8
    plist = sessions.provider_list(["tensorrt", "cuda", "cpu"], cache_dir=tmp_path, model_sha256="",
                                   model_stem="m", gpu_arch=None)
    assert [p if isinstance(p, str) else p[0] for p in plist] == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert plist[1][1]["device_id"] == "0"


def test_cpu_session_works_and_logs_its_providers(demo, caplog):
    caplog.set_level(logging.INFO, logger="farm.models")
    s = create_session(demo.root / demo.manifest.entry("swapper").file, "cpu")
    assert s.get_providers() == ["CPUExecutionProvider"]
    assert "runs on CPUExecutionProvider" in caplog.text


@pytest.mark.skipif(not NO_GPU, reason="this machine has a usable GPU")
@pytest.mark.parametrize("spec", ["cuda", "tensorrt", "tensorrt,cuda", "tensorrt,cuda,cpu"])
def test_gpu_provider_without_a_gpu_refuses_and_names_what_is_missing(demo, spec):
    with pytest.raises(ProviderError) as info:
        create_session(demo.root / demo.manifest.entry("enhancer").file, spec)
    text = str(info.value)
    assert "missing" in text and ("driver" in text or "GPU" in text or "onnxruntime build" in text)
    assert "--providers cpu" in text
    if "tensorrt" in spec and "onnxruntime build" not in text:
        assert "TensorRT" in text or "GPU" in text


def test_a_session_that_lost_its_gpu_provider_is_refused():
    class Quiet:
        def get_providers(self):
            return ["CPUExecutionProvider"]

    with pytest.raises(ProviderError, match="did not enable cuda"):
        sessions.check_providers(Quiet(), ["cuda"], "m.onnx")


def test_auto_picks_the_gpu_when_it_is_usable(monkeypatch):
    def machine(found) -> None:   # another machine: 'auto' is found once per process, so forget it
        monkeypatch.setattr(prov, "diagnose", found)
        prov._auto_providers.cache_clear()

    machine(lambda p: [])
    assert prov.resolve_providers("auto") == ["tensorrt", "cuda"]
    machine(lambda p: ["TensorRT 10"] if p == "tensorrt" else [])
    assert prov.resolve_providers(None) == ["cuda"]
    machine(lambda p: ["the NVIDIA driver"])
    assert prov.resolve_providers(None) == ["cpu"]
    prov._auto_providers.cache_clear()   # this machine again for the tests after


def test_stand_ins_go_through_the_same_factory(demo, monkeypatch):
    calls = []
    real = sessions.create_session

    def spy(path, providers, cache_dir=None, model_sha256=None, **kw):
        calls.append((path.name, list(providers), model_sha256))
        return real(path, providers, cache_dir, model_sha256, **kw)

    monkeypatch.setattr(sessions, "create_session", spy)
    pack = ModelPack(demo, providers="cpu")
    first = pack.session("recognizer")
    assert pack.session("recognizer") is first          # cached per process
    entry = demo.manifest.entry("recognizer")
    assert calls == [(entry.file, ["cpu"], entry.sha256)]


@pytest.mark.skipif(not NO_GPU, reason="this machine has a usable GPU")
def test_demo_pack_on_cuda_refuses_like_the_real_weights(demo):
    with pytest.raises(ProviderError):
        ModelPack(demo, providers="cuda").session("swapper")


def test_providers_in_use_are_what_the_sessions_report(demo, monkeypatch):
    # Given a pack asked for "tensorrt,cuda" whose sessions report CUDA + CPU only
    class Reported:
        def __init__(self, names):
            self.names = names

        def get_providers(self):
            return list(self.names)

    monkeypatch.setattr(prov, "require", lambda names: None)
    made = iter([Reported(["CUDAExecutionProvider", "CPUExecutionProvider"]),
                 Reported(["CUDAExecutionProvider"])])
    monkeypatch.setattr(sessions, "create_session", lambda *a, **k: next(made))
    pack = ModelPack(demo, providers="tensorrt,cuda")
    assert pack.providers == ["tensorrt", "cuda"]
    assert pack.providers_in_use() == []               # no session yet: nothing is in use
    # When sessions are made
    pack.session("swapper")
    pack.session("enhancer")
    # Then the providers in use are the sessions' own, in order, once each
    assert pack.providers_in_use() == ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_a_real_cpu_pack_reports_the_cpu_provider(demo):
    pack = ModelPack(demo, providers="cpu")
    pack.session("recognizer")
    assert pack.providers_in_use() == ["CPUExecutionProvider"]
