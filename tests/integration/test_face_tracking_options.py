"""The track stage's options (issue 15.3) on the CLI, in a spec file and on the API, from the
one table: `--smooth`, `--smooth-min-cutoff`, `--smooth-beta`, `--fill-gaps`. Real Typer
CLI (the submit itself recorded, not run), real spec files, the real FastAPI app's schema."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import farm.cli.main as cli
from farm.api.app import create_app
from farm.config import load_settings
from farm.errors import InputError
from farm.jobs.spec import CLI, check_options, load_spec, submit_request
from farm.state.db import Database, upgrade_schema




def test_smoothing_options_work_on_the_cli_the_spec_file_and_the_api(submit_with_faces, farm_home, tmp_path,
                                                                     monkeypatch):
    runner = CliRunner()
    shown = runner.invoke(cli.app, ["submit", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    for flag in ("--smooth", "--smooth-min-cutoff", "--smooth-beta", "--fill-gaps"):
        assert flag in shown.output, flag
    given: dict = {}
    monkeypatch.setattr(cli, "run_submit", lambda video, options, **kw: given.update(options))
    argv = ["submit", "v.mp4", "--smooth", "--fill-gaps", "3", "--smooth-beta", "0.3", "--smooth-min-cutoff", "1"]
    assert runner.invoke(cli.app, argv).exit_code == 0
    assert given == {"smooth": True, "fill_gaps": 3, "smooth_beta": 0.3, "smooth_min_cutoff": 1.0}
    assert runner.invoke(cli.app, ["submit", "v.mp4", "--fill-gaps", "many"]).exit_code == 2   # a usage error
    with pytest.raises(InputError, match="--fill-gaps must be 0..10"):
        check_options({"fill_gaps": 11}, "the command line", names=CLI)
    # a spec file takes the same keys
    spec = tmp_path / "render.toml"
    spec.write_text("smooth = true\nfill_gaps = 1\n")
    assert load_spec(spec) == {"smooth": True, "fill_gaps": 1}
    req = submit_request(tmp_path / "v.mp4", {"source": [str(tmp_path / "f.jpg")], **load_spec(spec)})
    assert req.face_options["smooth"] is True and req.face_options["fill_gaps"] == 1
    assert req.face_options["smooth_min_cutoff"] == 0.3 and req.face_options["smooth_beta"] == 0.2
    with pytest.raises(InputError, match="fill_gaps needs smooth"):
        submit_request(tmp_path / "v.mp4", {"source": [str(tmp_path / "f.jpg")], "fill_gaps": 4})
    # the API: both bodies' schema, and its form and JSON values converted by the same table
    settings = load_settings({"FARM_HOME": str(farm_home)})
    db = Database(settings.database)
    upgrade_schema(db)
    body = create_app(settings, db).openapi()["paths"]["/jobs"]["post"]["requestBody"]["content"]
    for kind in ("multipart/form-data", "application/json"):
        props = body[kind]["schema"]["properties"]
        assert props["smooth"]["type"] == "boolean" and props["fill_gaps"]["maximum"] == 10, props["fill_gaps"]
        assert props["smooth_beta"]["type"] == "number" and props["smooth_min_cutoff"]["minimum"] == 0.01
    assert check_options({"smooth": "true", "fill_gaps": "2"}, "the form", text=True) == {"smooth": True, "fill_gaps": 2}
    assert check_options({"smooth": True, "smooth_beta": 0.4}, "the JSON body") == {"smooth": True, "smooth_beta": 0.4}
    db.dispose()
