"""--map and --map-others on every front end (issue 15.2): a repeatable `farm submit` flag, a
spec-file key whose paths are taken from the spec file's folder (`keep` stays a word), an
API form field that repeats and a JSON key whose paths must lie on the farm's storage, and
in the OpenAPI body. Real Typer CLI, real FastAPI app over SQLite (TestClient), real spec
files; nothing is rendered."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import farm.cli.main as cli
from farm.api.reading import Reader
from farm.api.submission import from_json
from farm.errors import InputError
from farm.jobs.spec import CLI, check_options, load_spec, submit_request
from farm.state.tokens import create_token
from farm.storage import Storage


def test_map_is_a_repeatable_flag_and_a_spec_key(submit_with_faces, tmp_path, monkeypatch):
    runner = CliRunner()
    shown = runner.invoke(cli.app, ["submit", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "--map" in shown.output and "REFERENCE=SOURCE" in shown.output, shown.output
    assert "--map-others" in shown.output and "SOURCE|keep" in shown.output
    given: dict = {}
    monkeypatch.setattr(cli, "run_submit", lambda video, options, **kw: given.update(options))
    argv = ["submit", "v.mp4", "--map", "p1.png=a.jpg", "--map", "faces/person-2=b.jpg", "--map-others", "c.jpg"]
    assert runner.invoke(cli.app, argv).exit_code == 0
    assert given == {"map": ["p1.png=a.jpg", "faces/person-2=b.jpg"], "map_others": "c.jpg"}
    assert check_options(given, "the command line", names=CLI)["map"] == ["p1.png=a.jpg", "faces/person-2=b.jpg"]
    with pytest.raises(InputError, match="--map must be one or more PATH=PATH items"):
        check_options({"map": ["p1.png"]}, "the command line", names=CLI)
    # a spec file: both sides of each pair from the spec file's folder, `keep` left as it is
    spec = tmp_path / "render.toml"
    spec.write_text('map = ["p1.png=src/a.jpg", "/abs/faces/person-2=b.jpg"]\nmap_others = "keep"\n')
    assert load_spec(spec) == {"map": [f"{tmp_path}/p1.png={tmp_path}/src/a.jpg", f"/abs/faces/person-2={tmp_path}/b.jpg"],
                               "map_others": "keep"}
    spec.write_text('map = "p1.png=a.jpg"\nmap_others = "c.jpg"\n')
    assert load_spec(spec) == {"map": [f"{tmp_path}/p1.png={tmp_path}/a.jpg"], "map_others": tmp_path / "c.jpg"}


def test_the_map_images_stand_for_the_source(tmp_path):
    for name in ("p1.png", "a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(b"x")
    options = check_options({"map": [f"{tmp_path}/p1.png={tmp_path}/a.jpg", f"{tmp_path}/p1.png={tmp_path}/b.jpg"],
                             "map_others": str(tmp_path / "c.jpg")}, "t")
    req = submit_request(tmp_path / "v.mp4", options)
    assert [p.name for p in req.sources] == ["a.jpg", "b.jpg", "c.jpg"]
    assert req.face_options["map"] == options["map"] and req.face_options["map_others"] == str(tmp_path / "c.jpg")
    with pytest.raises(InputError, match="which does not exist"):
        submit_request(tmp_path / "v.mp4", check_options({"map": f"{tmp_path}/nobody.png={tmp_path}/a.jpg"}, "t"))


def test_map_over_the_api_is_in_the_schema_and_confined_to_storage(api_app, farm_home, tmp_path):
    settings, db, app = api_app   # a migrated database and the app (conftest)
    body = app.openapi()["paths"]["/jobs"]["post"]["requestBody"]["content"]
    for kind in ("multipart/form-data", "application/json"):
        props = body[kind]["schema"]["properties"]
        listed, one = props["map"]["anyOf"]
        assert listed["type"] == "array" and one["pattern"] == "^[^=]+=.+$", props["map"]
        assert props["map_others"]["default"] == "keep"
    storage = Storage(settings.storage_dir)
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    for name in ("v.mp4", "p1.png", "a.jpg", "b.jpg"):
        (settings.storage_dir / name).write_bytes(b"x")
    (faces := settings.storage_dir / "v.faces").mkdir()
    (faces / "faces.json").write_text("{}")
    root = storage.root.resolve()
    reader = Reader(storage, settings, db, token_id=1)   # shared files on storage: any API client reads them
    # JSON: paths relative to the storage root, a person of a faces folder, everything confined
    sub = from_json(json.dumps({"path": "v.mp4", "map": ["p1.png=a.jpg", "v.faces/person-2=b.jpg"]}).encode(), reader)
    assert sub.request.face_options["map"] == [f"{root}/p1.png={root}/a.jpg", f"{root}/v.faces/person-2={root}/b.jpg"]
    assert sub.request.sources == [root / "a.jpg", root / "b.jpg"]
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"x")
    for bad in ({"map": f"{outside}=a.jpg"}, {"map": f"p1.png={outside}"}, {"map": "p1.png=a.jpg", "map_others": str(outside)}):
        with pytest.raises(InputError, match="outside the farm's storage"):
            from_json(json.dumps({"path": "v.mp4", **bad}).encode(), reader)
    # a form: the field repeats, and its paths are confined too
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {create_token(db, 'ci')}"
    refused = client.post("/jobs", files={"video": ("clip.mp4", b"not a video", "video/mp4")},
                          data={"map": ["p1.png=a.jpg", f"p1.png={outside}"]})
    assert refused.status_code == 422 and "outside the farm's storage" in refused.json()["detail"], refused.text
    # GET /preview takes the same option, confined alike
    refused = client.get("/preview", params={"path": "v.mp4", "map": ["p1.png=a.jpg", f"p1.png={outside}"]})
    assert refused.status_code == 422 and "outside the farm's storage" in refused.json()["detail"], refused.text
    db.dispose()
