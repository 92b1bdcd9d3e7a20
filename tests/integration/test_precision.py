"""--precision (issue 14.4) from the CLI, a spec file and the API to the workers: the plan is
made once at submit, stored with the job, and the workers load exactly the files it names
(no GPU here: the CPU plans, and the fp16 file asked for by name)."""

from __future__ import annotations

from typer.testing import CliRunner

import farm.cli.main as cli
from farm.api.app import create_app
from farm.config import load_settings
from farm.jobs.spec import load_spec
from farm.state.db import Database, upgrade_schema
from farm.workers.context import job_plan
from tests import clips, media_checks
from tests.integration.test_face_stages import render


def test_precision_is_a_flag_a_spec_key_and_an_api_field(submit_with_faces, farm_home, tmp_path, monkeypatch):
    shown = CliRunner().invoke(cli.app, ["submit", "--help"], env={"COLUMNS": "200"})
    assert "--precision" in shown.output and "auto|fp32|fp16" in shown.output, shown.output
    given: dict = {}
    monkeypatch.setattr(cli, "run_submit", lambda video, options, **kw: given.update(options))
    assert CliRunner().invoke(cli.app, ["submit", "v.mp4", "--precision", "fp16"]).exit_code == 0
    assert given == {"precision": "fp16"}
    spec = tmp_path / "render.toml"
    spec.write_text('precision = "fp32"\n')
    assert load_spec(spec) == {"precision": "fp32"}
    settings = load_settings({"FARM_HOME": str(farm_home)})
    db = Database(settings.database)
    upgrade_schema(db)
    body = create_app(settings, db).openapi()["paths"]["/jobs"]["post"]["requestBody"]["content"]
    prop = body["application/json"]["schema"]["properties"]["precision"]
    assert prop["enum"] == ["auto", "fp32", "fp16"] and prop["default"] == "auto", prop
    db.dispose()


def test_an_fp16_job_runs_the_fp16_swapper_on_its_workers_and_says_so(inproc, tmp_path):
    settings, db, ctx = inproc
    video = clips.make_clip(tmp_path / "face.mp4", width=320, height=180, seconds=0.5, moving_face=True)
    job = render(settings, db, ctx, video, tmp_path / "out" / "face.farm.mp4", precision="fp16")
    assert job.models["precision"] == "fp16" and job.models["precision_plan"]["fp16_files"] is True
    assert job.models["models"]["swapper"]["name"] == "demo-inswapper_128_fp16"
    pack = ctx.pack(job.models["pack_ref"], job_plan(job))
    assert pack.entry("swapper").name == "demo-inswapper_128_fp16"          # what the workers loaded
    assert sum(c.faces_changed for c in job.chunks) > 0
    tags = media_checks.container_tags(job.output_path)
    assert "with model pack demo, precision fp16" in tags["comment"] and "inswapper_128_fp16" in tags["farm_models"], tags
    plain = render(settings, db, ctx, video, tmp_path / "out2" / "face.farm.mp4")
    assert plain.models["precision"] == "fp32" and plain.models["models"]["swapper"]["name"] == "demo-inswapper_128"
