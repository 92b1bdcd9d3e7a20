"""`farm submit --spec render.toml`: committed settings, overridden by the command line."""

from __future__ import annotations

import json


from tests import clips, media_checks


def test_spec_file_settings_with_command_line_overrides(cli, tmp_path):
    src = clips.make_clip(tmp_path / "clip.mp4", seconds=1.0, gop=10)
    spec = tmp_path / "ci" / "render.toml"
    spec.parent.mkdir()
    spec.write_text('passthrough = true\noutput = "../rendered.mp4"\ncrf = 30\nchunk_seconds = 0.5\npriority = 7\n')
    proc = cli.run("submit", str(src), "--spec", str(spec), "--crf", "20", "--wait", "--json")
    assert proc.returncode == 0, proc.stderr
    job = json.loads(proc.stdout)
    assert job["output"] == str(tmp_path / "rendered.mp4") and job["priority"] == 7
    assert job["chunks"] > 1   # the spec's chunk_seconds (the default of 4 s would give one chunk)
    assert media_checks.frame_count(tmp_path / "rendered.mp4") == 30
    status = cli.run("status", job["id"], check=True)
    assert status.returncode == 0


def test_a_spec_with_an_unknown_key_is_refused_naming_it(cli, tmp_path):
    src = clips.make_clip(tmp_path / "clip.mp4", seconds=0.5)
    spec = tmp_path / "render.toml"
    spec.write_text("passthrough = true\ncrf_value = 3\n")
    proc = cli.run("submit", str(src), "--spec", str(spec))
    assert proc.returncode == 2 and "crf_value" in proc.stderr and "render.toml" in proc.stderr
