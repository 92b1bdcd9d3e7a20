"""Job spec files: the CLI's options as committed data, checked key by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import InputError
from farm.faces.options import validate_options
from farm.jobs.spec import check_options, load_spec, submit_request, with_overrides


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ci" / "render.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_a_spec_gives_typed_options_with_paths_from_its_folder(tmp_path):
    spec = write(tmp_path, """
source = ["faces/a.jpg", "/abs/b.jpg"]
output = "out/render.mp4"
chunk-seconds = 2
codec = "hevc"
crf = 18
priority = 7
keep_chunks = true
faces = "reference"
reference = "faces/ref.jpg"
similarity = 0.4
enhance = false
enhance_blend = 0.5
""")
    opts = load_spec(spec)
    base = spec.parent
    assert opts["source"] == [base / "faces/a.jpg", Path("/abs/b.jpg")]
    assert opts["output"] == base / "out/render.mp4" and opts["reference"] == base / "faces/ref.jpg"
    assert opts["chunk_seconds"] == 2.0 and isinstance(opts["chunk_seconds"], float)
    assert (opts["codec"], opts["crf"], opts["priority"], opts["keep_chunks"]) == ("hevc", 18, 7, True)
    assert (opts["faces"], opts["similarity"], opts["enhance"], opts["enhance_blend"]) == ("reference", 0.4, False, 0.5)
    assert "overwrite" not in opts and "passthrough" not in opts  # only what the file sets


def test_a_submit_table_and_a_single_source_string(tmp_path):
    opts = load_spec(write(tmp_path, '[submit]\nsource = "face.jpg"\npassthrough = true\n'))
    assert opts == {"source": [tmp_path / "ci" / "face.jpg"], "passthrough": True}


@pytest.mark.parametrize("text, words", [
    ('sorce = ["a.jpg"]', ["'sorce'", "render.toml"]),
    ('[render]\ncrf = 1', ["render", "render.toml"]),
    ('[submit]\ncrf = 1\n[other]\nx = 1', ["'other'", "render.toml"]),
    ('crf = "18"', ["crf", "render.toml"]),
    ('priority = 12', ["priority", "render.toml"]),
    ('enhance = "no"', ["enhance", "render.toml"]),
    ('chunk_seconds = true', ["chunk_seconds"]),
    ('faces = "everyone"', ["faces", "one of"]),
    ('source = []', ["source"]),
    ('crf = ', ["not valid TOML", "render.toml"]),
])
def test_bad_specs_are_refused_naming_the_key_and_the_file(tmp_path, text, words):
    with pytest.raises(InputError) as info:
        load_spec(write(tmp_path, text))
    shown = str(info.value)
    assert all(w in shown for w in words), shown


def test_a_missing_spec_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_spec(tmp_path / "nope.toml")


def test_form_text_values_are_converted():
    opts = check_options({"passthrough": "true", "crf": "20", "chunk_seconds": "0.5", "enhance": "0"}, "the form",
                         text=True)
    assert opts == {"passthrough": True, "crf": 20, "chunk_seconds": 0.5, "enhance": False}
    with pytest.raises(InputError, match="crf"):
        check_options({"crf": "2.5"}, "the form", text=True)
    with pytest.raises(InputError, match="chunk_seconds"):
        check_options({"chunk_seconds": "nan"}, "the form", text=True)


def test_command_line_options_override_the_spec_and_make_a_request(tmp_path):
    spec = load_spec(write(tmp_path, 'source = "face.jpg"\ncrf = 18\npriority = 3\n'))
    opts = with_overrides(spec, {"crf": 22, "codec": None})
    assert opts["crf"] == 22 and opts["priority"] == 3 and "codec" not in opts
    req = submit_request(tmp_path / "v.mp4", opts)
    assert req.sources == [tmp_path / "ci" / "face.jpg"] and req.crf == 22 and req.priority == 3
    assert req.face_options == validate_options({})   # every face option, defaults filled in
    assert req.face_options["faces"] == "all" and req.face_options["enhance"] is True
    with pytest.raises(InputError, match="no source"):
        submit_request(tmp_path / "v.mp4", {})
    assert submit_request(tmp_path / "v.mp4", {"passthrough": True, "source": ["x.jpg"]}).sources == []


def test_the_committed_ci_spec_loads_and_its_encoder_options_are_accepted():
    """deploy/ci/render.toml goes through the spec loader and the encoder check submit runs."""
    from fractions import Fraction

    from farm.media.chunk_codec import choose_encoder, encoder_name
    from farm.media.colour import Colour
    from farm.media.media_info import VideoInfo

    spec = Path(__file__).resolve().parents[2] / "deploy" / "ci" / "render.toml"
    opts = load_spec(spec)
    req = submit_request(Path("clip.mp4"), opts)
    assert req.codec == opts["codec"] and req.crf == opts["crf"]
    video = VideoInfo(index=0, codec="h264", profile="High", width=160, height=90, pix_fmt="yuv420p", bit_depth=8,
                      time_base=Fraction(1, 15360), fps=Fraction(30), frame_count=30, first_pts=0, duration_s=1.0,
                      colour=Colour(1, 1, 1, 1))
    encoder = choose_encoder(video, codec=req.codec, preset=req.preset, crf=req.crf)   # as submit.validate does
    assert encoder.codec == encoder_name(opts["codec"]) and encoder.crf == opts["crf"]
