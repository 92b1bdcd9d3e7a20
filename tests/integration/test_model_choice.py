"""A choice of swapper and restorer (issue 14.2) from the CLI, a spec file and the API, and
a real demo job that renders with them and names them in its label."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import farm.cli.main as cli
from farm.errors import InputError
from farm.jobs.face_prep import prepare_faces
from farm.jobs.spec import load_spec
from farm.jobs.submit import SubmitRequest
from farm.state.tokens import create_token
from tests import clips, media_checks
from tests.integration.test_face_stages import render


def test_the_model_options_are_flags_spec_keys_api_fields_and_in_the_schema(api_app, submit_with_faces, farm_home,
                                                                            tmp_path, monkeypatch):
    shown = CliRunner().invoke(cli.app, ["submit", "--help"], env={"COLUMNS": "200"})
    for flag in ("--swapper", "--enhancer", "--enhancer-fidelity"):
        assert flag in shown.output, shown.output
    given: dict = {}
    monkeypatch.setattr(cli, "run_submit", lambda video, options, **kw: given.update(options))
    args = ["submit", "v.mp4", "--swapper", "hyperswap_1b_256", "--enhancer", "codeformer", "--enhancer-fidelity", "0.3"]
    assert CliRunner().invoke(cli.app, args).exit_code == 0
    assert given == {"swapper": "hyperswap_1b_256", "enhancer": "codeformer", "enhancer_fidelity": 0.3}
    spec = tmp_path / "render.toml"
    spec.write_text('swapper = "simswap_256"\nenhancer = "none"\n')
    assert load_spec(spec) == {"swapper": "simswap_256", "enhancer": "none"}
    settings, db, app = api_app   # a migrated database and the app (conftest)
    body = app.openapi()["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"swapper", "enhancer", "enhancer_fidelity"} <= set(body["properties"])
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {create_token(db, 'ci')}"
    refused = client.post("/jobs", json={"path": "clip.mp4", "enhancer_fidelity": 2})
    assert refused.status_code == 422 and "enhancer_fidelity" in refused.json()["detail"], refused.text
    db.dispose()


def test_an_unknown_model_is_refused_at_submit_naming_the_choices(inproc, tmp_path):
    settings, _db, _ctx = inproc
    face = clips.make_face_image(tmp_path / "source.jpg")
    req = SubmitRequest(video=tmp_path / "v.mp4", sources=[face], models="demo",
                        face_options={"faces": "all", "swapper": "hyperswap_9z_256"})
    with pytest.raises(InputError, match="has no swapper 'hyperswap_9z_256'") as refused:
        prepare_faces(req, settings)
    assert "hyperswap_1a_256" in refused.value.hint and "farm models list" in refused.value.hint


def test_a_job_with_a_chosen_swapper_and_restorer_renders_with_them(inproc, tmp_path):
    settings, db, ctx = inproc
    video = clips.make_clip(tmp_path / "face.mp4", width=480, height=270, seconds=0.5, moving_face=True)
    job = render(settings, db, ctx, video, tmp_path / "out" / "face.farm.mp4", swapper="simswap_256",
                 enhancer="codeformer", enhancer_fidelity=0.7)
    assert sum(c.faces_changed for c in job.chunks) > 0
    models = job.models["models"]
    assert (models["swapper"]["name"], models["embedding_converter"]["name"], models["enhancer"]["name"]) == (
        "demo-simswap_256", "demo-crossface_simswap", "demo-codeformer")
    chain = ctx.chain_for(job).stages
    swap = next(stage for stage in chain if stage.name == "swap")
    enhance = next(stage for stage in chain if stage.name == "enhance")
    assert (swap.crop_size, swap.template, enhance.extra["weight"].tolist()) == (256, "arcface_112_v1", [0.7])
    tags = media_checks.container_tags(job.output_path)
    assert ("faces altered by swap (demo-simswap_256) + enhance (demo-codeformer, fidelity 0.7) in "
            in tags["comment"]), tags
    assert "demo-simswap_256" in json.dumps(job.models) and Path(job.output_path).is_file()
