"""Pixel boost (issue 14.1) through the farm: the option declared once by the swap stage
is a `farm submit` flag, a spec-file key, an API field and an OpenAPI property; a real
job with a boost runs it (demo pack, ONNX Runtime CPU, real clip, ffmpeg, SQLite) and its
label says so. Real Typer CLI and FastAPI app; the broker calls are recorded, not sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import farm.cli.main as cli
from farm.errors import InputError
from farm.faces.pixel_boost import CHOICES
from farm.jobs.spec import CLI, check_options, load_spec
from farm.state.tokens import create_token
from tests import clips, media_checks
from tests.integration.test_face_stages import render




def test_pixel_boost_is_a_flag_a_spec_key_an_api_field_and_in_the_schema(api_app, submit_with_faces, farm_home, tmp_path,
                                                                        monkeypatch):
    shown = CliRunner().invoke(cli.app, ["submit", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "--pixel-boost" in shown.output, shown.output
    assert "native|auto|128|256|384|512|768|1024" in shown.output, shown.output
    given: dict = {}
    monkeypatch.setattr(cli, "run_submit", lambda video, options, **kw: given.update(options))
    assert CliRunner().invoke(cli.app, ["submit", "v.mp4", "--pixel-boost", "512"]).exit_code == 0
    assert given == {"pixel_boost": "512"}
    with pytest.raises(InputError, match="--pixel-boost must be one of native, auto, 128"):   # what run_submit does
        check_options({"pixel_boost": "200"}, "the command line", names=CLI)
    spec = tmp_path / "render.toml"
    spec.write_text("pixel_boost = 512\n")   # a number in TOML
    assert load_spec(spec) == {"pixel_boost": "512"}
    spec.write_text("pixel-boost = 64\n")
    with pytest.raises(InputError, match="pixel_boost must be one of native, auto, 128"):
        load_spec(spec)
    settings, db, app = api_app   # a migrated database and the app (conftest)
    body = app.openapi()["paths"]["/jobs"]["post"]["requestBody"]["content"]
    for kind in ("multipart/form-data", "application/json"):
        prop = body[kind]["schema"]["properties"]["pixel_boost"]
        assert prop["enum"] == list(CHOICES) and prop["default"] == "native", prop
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {create_token(db, 'ci')}"
    refused = client.post("/jobs", json={"path": "clip.mp4", "pixel_boost": 200})
    assert refused.status_code == 422 and "pixel_boost must be one of" in refused.json()["detail"], refused.text
    db.dispose()


def test_a_boosted_job_runs_and_its_label_says_pixel_boost(inproc, tmp_path):
    settings, db, ctx = inproc
    video = clips.make_clip(tmp_path / "face.mp4", width=480, height=270, seconds=0.5, moving_face=True)
    job = render(settings, db, ctx, video, tmp_path / "out" / "face.farm.mp4", pixel_boost="256")
    assert sum(c.faces_changed for c in job.chunks) > 0
    assert job.models["stages"] == ["swap", "enhance"]
    assert job.models["stage_labels"] == {"swap": "swap (pixel boost 256)"}
    swap = next(stage for stage in ctx.chain_for(job).stages if stage.name == "swap")
    assert (swap.pixel_boost, swap.crop_size) == ("256", 128)   # the workers align at 256 for a 128 px swapper
    tags = media_checks.container_tags(job.output_path)
    assert "faces altered by swap (pixel boost 256) + enhance in " in tags["comment"], tags
    assert Path(job.output_path).is_file()
