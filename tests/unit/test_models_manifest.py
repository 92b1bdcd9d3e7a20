"""The manifest: the real pack's file parses, every role is there, defects are refused."""

from __future__ import annotations

import tomllib

import pytest

from farm.errors import ModelError
from farm.models.demo import default_manifest_path
from farm.models.manifest import dump_manifest, load_manifest, parse_manifest

ROLES = {"detector", "detector_yunet", "recognizer", "swapper", "swapper_fp16", "enhancer", "occluder", "face_parser",
         "embedding_converter"}


def _raw() -> dict:
    return tomllib.loads(default_manifest_path().read_text(encoding="utf-8"))


def test_default_manifest_lists_every_model_with_its_contract():
    m = load_manifest(default_manifest_path())
    assert m.name == "default" and not m.demo and m.detector == "onnx"
    assert {e.role for e in m.models} == ROLES
    swap = m.entry("swapper")
    assert [t.name for t in swap.inputs] == ["target", "source"]
    assert swap.inputs[0].shape == (1, 3, 128, 128) and swap.inputs[1].shape == (1, 512)
    assert m.entry("detector").inputs[0].name == "input.1"
    assert [t.name for t in m.entry("detector").outputs] == ["448", "471", "494", "451", "474", "497", "454", "477", "500"]
    assert m.entry("recognizer").outputs[0].name == "683"
    assert len(m.entry("detector_yunet").outputs) == 12
    occluder, parser = m.entry("occluder"), m.entry("face_parser")   # the masks (issue 14.3): NHWC XSeg, NCHW BiSeNet
    assert occluder.optional and occluder.inputs[0].shape == ("batch", 256, 256, 3)
    assert occluder.outputs[0].shape == ("batch", 256, 256, 1)
    assert parser.optional and parser.inputs[0].shape == ("batch", 3, 512, 512)
    assert [t.shape for t in parser.outputs] == [("batch", 19, 512, 512)] * 3 and parser.outputs[0].name == "output"


def test_every_real_model_has_urls_and_a_sha256_or_a_note():
    for e in load_manifest(default_manifest_path()).models:
        assert e.urls and all(u.startswith("https://") for u in e.urls)
        assert (len(e.sha256) == 64) or e.sha256_note
        assert e.size > 0 or e.size_note


def test_required_selection_skips_optional_models():
    m = load_manifest(default_manifest_path())
    assert {e.name for e in m.select(None)} == {"det_10g", "w600k_r50", "inswapper_128", "gfpgan_1.4"}
    assert m.select(["swapper_fp16"])[0].name == "inswapper_128_fp16"
    with pytest.raises(ModelError, match="no model or role"):
        m.entry("nope")


def test_dump_then_parse_gives_the_same_manifest():
    m = load_manifest(default_manifest_path())
    again = parse_manifest(tomllib.loads(dump_manifest(m)))
    assert again.models == m.models and again.name == m.name


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r["model"][0].update(sha256="abc"), "64 hex"),
        (lambda r: r["model"][0].update(sha256="", sha256_note=""), "sha256_note"),
        (lambda r: r["model"][1].update(name=r["model"][0]["name"]), "share the name"),
        (lambda r: r["model"][0].update(file="../evil.onnx"), "plain name"),
        (lambda r: r["model"][0]["inputs"][0].update(dtype="float8"), "dtype"),
        (lambda r: r["model"][0]["inputs"][0].update(shape=[1, 0]), "positive integer"),
        (lambda r: r["model"][0].update(urls=["ftp://x"]), "http"),
        (lambda r: r["pack"].update(detector="dlib"), "detector"),
    ],
)
def test_defects_are_refused_with_the_field_named(mutate, message):
    raw = _raw()
    mutate(raw)
    with pytest.raises(ModelError, match=message):
        parse_manifest(raw)


def test_missing_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="no model manifest"):
        load_manifest(tmp_path / "manifest.toml")
