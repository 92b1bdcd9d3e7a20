"""`farm submit VIDEO --output ...` for a single video: a folder (existing, or a name ending
in a slash, created if missing) means "the output goes in that folder", and `--json` prints
the job's object whatever form --output takes; the refusals of a bad output say what to do.
Real CLI subprocesses on a private FARM_HOME (a user-side audit's findings)."""

from __future__ import annotations

import json
import os


from tests import clips
from tests.e2e.test_submit_cli import job_rows


def one_object(proc) -> dict:
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout + proc.stderr
    return json.loads(lines[0])


def test_a_single_video_into_a_folder_is_a_job_whatever_form_output_takes(cli, tmp_path):
    src = clips.make_clip(tmp_path / "in" / "clip.mov", seconds=0.5)
    new = tmp_path / "x" / "newout"
    proc = cli.run("submit", str(src), "--passthrough", "--json", "--output", f"{new}{os.sep}")
    result = one_object(proc)
    assert proc.returncode == 0, proc.stderr
    assert "batch" not in result and result["id"] and result["output"] == str(new / "clip.mov"), result
    assert new.is_dir()
    for existing, slash in [(tmp_path / "renders", ""), (tmp_path / "renders2", os.sep)]:
        existing.mkdir()
        proc = cli.run("submit", str(src), "--passthrough", "--json", "--output", f"{existing}{slash}")
        result = one_object(proc)
        assert proc.returncode == 0, proc.stderr
        assert "batch" not in result and "items" not in result, result
        assert {"id", "state", "output", "frames", "error"} <= result.keys(), result
        assert result["output"] == str(existing / "clip.mov"), result


def test_a_refused_job_leaves_no_folder_made_for_its_output(cli, tmp_path):
    bad = clips.make_not_video(tmp_path / "notes.mp4")
    new = tmp_path / "made" / "deeper"
    proc = cli.run("submit", str(bad), "--passthrough", "--output", f"{new}{os.sep}")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(bad) in proc.stderr
    assert not (tmp_path / "made").exists() and job_rows(cli.home) == 0
