"""One table of job options (issue 13.1): an option added to farm.options (here, by the
test) is at once a `farm submit` flag, a spec-file key, an API form field and JSON key,
and a property of the OpenAPI body, with the table's type and range everywhere; and a
true/false option is a real flag. Real Typer CLI, real FastAPI app over SQLite (TestClient),
real spec files; nothing is rendered (the submit itself is recorded, not run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import farm.cli.main as cli
from farm.errors import InputError
from farm.jobs.spec import CLI, check_options, load_spec
from farm.options import SUBMIT_OPTIONS, Option, job_options
from farm.state.tokens import create_token

GRAIN = Option("float", None, "film grain strength added after the swap", minimum=0.0, maximum=1.0,
               stage="encoder")


@pytest.fixture
def grain(monkeypatch: pytest.MonkeyPatch):
    """The table with one more option, `grain`, and `farm submit` declared again from it."""
    monkeypatch.setitem(SUBMIT_OPTIONS, "grain", GRAIN)
    cli.register_submit()
    yield
    del SUBMIT_OPTIONS["grain"]
    cli.register_submit()


def test_an_added_option_is_a_flag_a_spec_key_a_form_field_and_in_the_schema(grain, farm_home, tmp_path, monkeypatch,
                                                                             api_app):
    runner = CliRunner()
    # the CLI: a flag with the table's help and range, parsed and handed on
    shown = runner.invoke(cli.app, ["submit", "--help"], env={"COLUMNS": "160"})
    assert shown.exit_code == 0 and "--grain" in shown.output and "0..1" in shown.output, shown.output
    assert "Film grain strength added after the swap" in shown.output
    given: dict = {}
    monkeypatch.setattr(cli, "run_submit", lambda video, options, **kw: given.update(options))
    assert runner.invoke(cli.app, ["submit", "v.mp4", "--grain", "0.25"]).exit_code == 0
    assert given == {"grain": 0.25}
    assert runner.invoke(cli.app, ["submit", "v.mp4", "--grain", "lots"]).exit_code == 2   # a usage error
    with pytest.raises(InputError, match="--grain must be 0..1"):
        check_options({"grain": 1.5}, "the command line", names=CLI)
    # a spec file: the key, with the same range
    spec = tmp_path / "render.toml"
    spec.write_text("grain = 0.5\n")
    assert load_spec(spec) == {"grain": 0.5}
    spec.write_text("grain = 2.0\n")
    with pytest.raises(InputError, match=r"option grain = 2.0 in spec file .* grain must be 0..1"):
        load_spec(spec)
    # the API: the schema has it for both bodies, and a form field out of range is refused naming it
    settings, db, app = api_app   # a migrated database and the app (conftest)
    body = app.openapi()["paths"]["/jobs"]["post"]["requestBody"]["content"]
    for kind in ("multipart/form-data", "application/json"):
        prop = body[kind]["schema"]["properties"]["grain"]
        assert (prop["type"], prop["minimum"], prop["maximum"]) == ("number", 0.0, 1.0), prop
    batch = app.openapi()["paths"]["/batches"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    prop = batch["properties"]["grain"]   # POST /batches takes the same options
    assert (prop["type"], prop["minimum"], prop["maximum"]) == ("number", 0.0, 1.0), prop
    assert batch["required"] == ["path"] and batch["properties"]["force"]["type"] == "boolean"
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {create_token(db, 'ci')}"
    (storage := settings.storage_dir).mkdir(parents=True, exist_ok=True)
    refused = client.post("/jobs", files={"video": ("clip.mp4", b"not a video", "video/mp4")},
                          data={"grain": "3", "passthrough": "true"})
    assert refused.status_code == 422 and "grain must be 0..1" in refused.json()["detail"], refused.text
    refused = client.post("/jobs", json={"path": "clip.mp4", "grain": "0.5"})   # JSON keeps its types
    assert refused.status_code == 422 and "grain" in refused.json()["detail"], refused.text
    assert check_options({"grain": "0.75"}, "the form", text=True) == {"grain": 0.75}
    assert not list((storage / "jobs").glob("*")) if (storage / "jobs").exists() else True
    db.dispose()


def test_true_false_options_are_real_flags_and_every_option_has_one(farm_home):
    import os
    import subprocess
    import sys

    env = dict(os.environ, FARM_HOME=str(farm_home), COLUMNS="200")
    shown = subprocess.run([sys.executable, "-m", "farm", "submit", "--help"], env=env, capture_output=True,
                           text=True, timeout=60, check=True).stdout
    for name, option in job_options().items():
        assert option.flag(name) in shown, name
    assert "--overwrite" in shown and "--no-enhance" in shown and "<bool>" not in shown and "BOOL" not in shown
    import farm.cli.flags as flags

    values = {"overwrite": True, "enhance": True, "keep_chunks": False}   # --overwrite --no-enhance given
    given = flags.given_options(values, job_options())
    assert given == {"overwrite": True, "enhance": False}


def test_face_options_are_validated_once_into_the_request(tmp_path):
    from farm.faces.options import validate_options
    from farm.jobs.spec import submit_request

    face = tmp_path / "face.jpg"
    req = submit_request(Path("v.mp4"), {"source": [str(face)], "similarity": 0.5, "faces": "largest"})
    assert req.face_options == {**validate_options({}), "similarity": 0.5, "faces": "largest"}
    with pytest.raises(InputError, match="similarity"):
        submit_request(Path("v.mp4"), {"source": [str(face)], "similarity": 1.5})


LOOKS = Option("list", ("grain",), "film looks added after the swap", choices=("grain", "vignette", "bloom"),
               stage="encoder")
MARGINS = Option("numbers", (0.0, 0.0), "letterbox margins", minimum=0.0, maximum=50.0, unit="%", count=2,
                 stage="encoder", metavar="TOP,BOTTOM")


@pytest.fixture
def looks(monkeypatch: pytest.MonkeyPatch):
    """The table with a list option (`looks`) and a numbers option (`margins`), `farm submit` declared again."""
    monkeypatch.setitem(SUBMIT_OPTIONS, "looks", LOOKS)
    monkeypatch.setitem(SUBMIT_OPTIONS, "margins", MARGINS)
    cli.register_submit()
    yield
    del SUBMIT_OPTIONS["looks"], SUBMIT_OPTIONS["margins"]
    cli.register_submit()


def test_list_and_numbers_options_are_flags_spec_keys_form_fields_json_keys_and_in_the_schema(
        looks, farm_home, tmp_path, monkeypatch, api_app):
    runner = CliRunner()
    # the CLI: one comma-separated value each, checked where every origin's values are
    shown = runner.invoke(cli.app, ["submit", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "--looks" in shown.output and "grain[,...]" in shown.output, shown.output
    assert "--margins" in shown.output and "TOP,BOTTOM" in shown.output and "Default 0,0." in shown.output
    given: dict = {}
    monkeypatch.setattr(cli, "run_submit", lambda video, options, **kw: given.update(options))
    assert runner.invoke(cli.app, ["submit", "v.mp4", "--looks", "bloom,grain", "--margins", "10,5"]).exit_code == 0
    assert given == {"looks": "bloom,grain", "margins": "10,5"}
    assert check_options(given, "the command line", names=CLI) == {"looks": ["bloom", "grain"], "margins": [10.0, 5.0]}
    for bad, rule in (({"looks": "grain,sepia"}, "--looks must be one or more of grain, vignette, bloom"),
                      ({"looks": "grain,grain"}, "--looks must be one or more of"),
                      ({"looks": ""}, "--looks must be"),
                      ({"margins": "10"}, r"--margins must be 2 numbers in 0..50 % \(comma-separated\)"),
                      ({"margins": "10,60"}, "--margins must be 2 numbers"),
                      ({"margins": "10,nan"}, "--margins must be 2 numbers")):
        with pytest.raises(InputError, match=rule):
            check_options(bad, "the command line", names=CLI)
    # a spec file: a TOML array, or the same comma-separated string
    spec = tmp_path / "render.toml"
    spec.write_text('looks = ["vignette", "grain"]\nmargins = [10, 2.5]\n')
    assert load_spec(spec) == {"looks": ["vignette", "grain"], "margins": [10.0, 2.5]}
    spec.write_text('looks = "bloom"\nmargins = "1,2"\n')
    assert load_spec(spec) == {"looks": ["bloom"], "margins": [1.0, 2.0]}
    spec.write_text("margins = [1, 2, 3]\n")
    with pytest.raises(InputError, match=r"option margins = \[1, 2, 3\] in spec file .* margins must be 2 numbers"):
        load_spec(spec)
    # the API: the schema takes an array or a comma-separated string; a form field is text, JSON keeps lists
    settings, db, app = api_app   # a migrated database and the app (conftest)
    body = app.openapi()["paths"]["/jobs"]["post"]["requestBody"]["content"]
    for kind in ("multipart/form-data", "application/json"):
        props = body[kind]["schema"]["properties"]
        listed, text = props["looks"]["anyOf"]
        assert listed["items"]["enum"] == ["grain", "vignette", "bloom"] and text["type"] == "string", props["looks"]
        assert props["looks"]["default"] == ["grain"]
        numbers = props["margins"]["anyOf"][0]
        assert (numbers["minItems"], numbers["maxItems"], numbers["items"]["maximum"]) == (2, 2, 50.0), numbers
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {create_token(db, 'ci')}"
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    refused = client.post("/jobs", files={"video": ("clip.mp4", b"not a video", "video/mp4")},
                          data={"looks": "grain,sepia", "passthrough": "true"})
    assert refused.status_code == 422 and "looks must be one or more of" in refused.json()["detail"], refused.text
    refused = client.post("/jobs", json={"path": "clip.mp4", "margins": [1, 2, 3]})
    assert refused.status_code == 422 and "margins must be 2 numbers" in refused.json()["detail"], refused.text
    assert check_options({"looks": "vignette, bloom", "margins": "0,50"}, "the form", text=True) == {
        "looks": ["vignette", "bloom"], "margins": [0.0, 50.0]}
    assert check_options({"looks": ["bloom"], "margins": [3, 4]}, "the JSON body") == {
        "looks": ["bloom"], "margins": [3.0, 4.0]}
    db.dispose()
