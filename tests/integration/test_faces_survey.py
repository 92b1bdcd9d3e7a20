"""`farm faces` and GET /faces (issue 15.1): who is in a video, from sampled frames.

Real CLI (farm.cli.main.main, in this process), real FastAPI app (TestClient) over SQLite,
the demo pack on ONNX Runtime's CPU provider (its Haar cascade and its recogniser
stand-in, loaded as a worker loads them), and real clips (PyAV / ffmpeg): two different
people on screen for known times (tests.people_clips), and a clip without a face.
"""

from __future__ import annotations

import base64
import json
import shutil
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

import farm.cli.main as cli
from farm.api.app import create_app
from farm.cli import faces_command
from farm.config import load_settings
from farm.faces.detect import build_detector
from farm.faces.identity import compute_identity
from farm.faces.recognise import cosine_similarity
from farm.jobs import faces_sheet
from farm.models.packs import clear_pack_cache, load_pack
from farm.state.db import Database, upgrade_schema
from farm.state.tokens import create_token
from tests import clips
from tests.people_clips import make_two_people_clip

EVERY = "0.5"
STEP_S = 0.5   # a sample stands for this much time: durations are right to about a step or two


@pytest.fixture
def home(farm_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("FARM_HOME", str(farm_home))
    monkeypatch.setenv("FARM_PROVIDERS", "cpu")
    monkeypatch.chdir(tmp_path)
    clear_pack_cache()
    yield farm_home
    clear_pack_cache()
    faces_command.register(cli.app)   # as at import: without the detect options


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("faces-media")
    return {"two": make_two_people_clip(folder / "two.mp4"),
            "empty": clips.make_clip(folder / "empty.mp4", width=320, height=180, seconds=1.0)}


def run_farm(capsys: pytest.CaptureFixture, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


def png(path_or_bytes) -> np.ndarray:
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def test_two_people_are_two_identities_with_their_time_on_screen(home, media, capsys):
    clip = media["two"]
    code, out, err = run_farm(capsys, "faces", clip.path, "--models", "demo", "--every", EVERY, "--json")
    assert code == 0, err
    table = json.loads(out)
    folder = Path(table["out"])
    assert folder == Path.cwd() / "two.faces" and table["warning"] is None
    assert table["samples"] == 12 and table["every_s"] == 0.5 and table["models"]["pack"] == "demo"
    # two people: A (the astronaut, left, the whole clip) first, B (right, 2 s to 5 s) second
    assert [p["name"] for p in table["people"]] == ["person-1", "person-2"], table["people"]
    a, b = table["people"]
    assert a["seconds"] == pytest.approx(clip.seconds, abs=2 * STEP_S), a
    assert b["seconds"] == pytest.approx(clip.b_until_s - clip.b_from_s, abs=2 * STEP_S), b
    assert a["reference"]["box"][2] < clip.width / 2 < b["reference"]["box"][0]
    assert b["frames"][0][0] == pytest.approx(clip.b_from_s * clip.fps, abs=STEP_S * clip.fps), b
    assert b["frames"][-1][1] == pytest.approx(clip.b_until_s * clip.fps, abs=STEP_S * clip.fps), b
    # the folder: the sheet (one row per person), one reference crop each, faces.json
    assert sorted(p.name for p in folder.iterdir()) == ["faces.json", "person-1.png", "person-2.png", "sheet.png"]
    sheet = png(folder / "sheet.png")
    assert sheet.shape[1] == faces_sheet.SHEET_WIDTH == table["picture"]["width"]
    assert sheet.shape[0] == table["picture"]["header_height"] + 2 * faces_sheet.ROW_PX == table["picture"]["height"]
    # the crops and mean embeddings serve as references: each crop is its own person again
    data = json.loads((folder / "faces.json").read_text())
    means = [np.array(p["embedding"], np.float32) for p in data["people"]]
    assert [len(m) for m in means] == [512, 512] and data["recognizer"]["name"]
    assert cosine_similarity(*means) < table["threshold"]
    settings = load_settings({"FARM_HOME": str(home), "FARM_PROVIDERS": "cpu"})
    pack = load_pack("demo", models_dir=settings.models_path, providers="cpu")
    for n, mean in enumerate(means):
        again = compute_identity([folder / f"person-{n + 1}.png"], build_detector(pack), pack.session("recognizer"))
        alike = [cosine_similarity(again, m) for m in means]
        assert alike[n] >= table["threshold"] and alike[n] == max(alike), (n, alike)
    # the plain table names the same people
    code, out, err = run_farm(capsys, "faces", clip.path, "--models", "demo", "--every", EVERY, "--overwrite")
    assert code == 0, err
    assert "2 people in two.mp4" in out and "person-2: " in out and "person-2.png" in out, out


def test_the_threshold_changes_the_grouping(home, media, capsys):
    clip = media["two"]
    code, out, err = run_farm(capsys, "faces", clip.path, "--models", "demo", "--every", EVERY, "--json",
                              "--threshold", "0.999", "--out", "strict")
    assert code == 0, err
    strict = json.loads(out)
    assert len(strict["people"]) > 2 and strict["threshold"] == 0.999   # every sighting nearly its own person
    code, out, err = run_farm(capsys, "faces", clip.path, "--models", "demo", "--every", EVERY, "--json",
                              "--threshold", "0", "--out", "loose")
    assert code == 0, err
    loose = json.loads(out)
    # at 0 any two faces are alike enough, but two faces in one frame stay two people
    assert len(loose["people"]) == 2 and sum(p["sightings"] for p in loose["people"]) == loose["faces_seen"]


def test_a_clip_without_a_face_gives_an_empty_table_and_says_so(home, media, capsys):
    code, out, err = run_farm(capsys, "faces", media["empty"], "--models", "demo", "--json")
    assert code == 0, err
    table = json.loads(out)
    assert table["people"] == [] and table["faces_seen"] == 0 and table["samples"] == 1
    assert "no face found in the 1 sampled frames of empty.mp4" in table["warning"]
    assert "warning:" in err and "no face found" in " ".join(err.split())
    folder = Path(table["out"])
    assert sorted(p.name for p in folder.iterdir()) == ["faces.json", "sheet.png"]
    assert png(folder / "sheet.png").shape[0] == table["picture"]["header_height"]
    code, out, _ = run_farm(capsys, "faces", media["empty"], "--models", "demo", "--out", "again")
    assert code == 0 and out.startswith("0 people in empty.mp4"), out


def test_bad_input_is_refused_naming_it_and_writes_nothing(home, media, capsys, tmp_path):
    video = media["two"].path
    text = clips.make_not_video(tmp_path.parent / f"{tmp_path.name}-not-a-video.mp4")
    other = Path.cwd() / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    cases = [
        ([Path("missing.mp4")], "missing.mp4: no such file"),
        ([text], text.name),
        ([video, "--every", "0"], "--every must be"),
        ([video, "--threshold", "2"], "--threshold must be 0..1"),
        ([video, "--min-score", "-1"], "--min-score must be 0..1"),
        ([video, "--out", "mine"], "never replaced"),
        ([video, "--models", "nosuchpack"], "unknown model pack 'nosuchpack'"),
    ]
    for args, message in cases:
        code, _, err = run_farm(capsys, "faces", *args, "--models", "demo") if "--models" not in args else \
            run_farm(capsys, "faces", *args)
        assert code == 2 and message in " ".join(err.split()), (args, err)
        assert sorted(p.name for p in Path.cwd().iterdir()) == ["mine"], (args, list(Path.cwd().iterdir()))
    assert (other / "notes.txt").read_text() == "keep me"
    code, out, err = run_farm(capsys, "faces", media["empty"], "--models", "demo", "--json")
    assert code == 0, err
    code, _, err = run_farm(capsys, "faces", media["empty"], "--models", "demo")   # an earlier run's folder
    assert code == 2 and "already holds a `farm faces` run" in err and "--overwrite" in err, err
    code, _, err = run_farm(capsys, "faces", media["empty"], "--models", "demo", "--crf", "18")
    assert code == 2 and "No such option: --crf" in err, err


def test_get_faces_answers_the_table_with_the_sheet_and_crops(home, media, capsys):
    settings = load_settings({"FARM_HOME": str(home), "FARM_PROVIDERS": "cpu"})
    db = Database(settings.database)
    upgrade_schema(db)
    folder = settings.storage_dir / "in"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(media["two"].path, folder / "two.mp4")
    app = create_app(settings, db)
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {create_token(db, 'ci-' + uuid.uuid4().hex[:6])}"
    query = {"path": "in/two.mp4", "models": "demo", "every": EVERY}
    got = client.get("/faces", params=query)
    assert got.status_code == 200, got.text
    body = got.json()
    code, out, err = run_farm(capsys, "faces", folder / "two.mp4", "--models", "demo", "--every", EVERY, "--json")
    assert code == 0, err
    table = json.loads(out)
    # the same people as the CLI's, with the same sheet and crops, and each mean embedding
    assert [(p["name"], p["seconds"], p["frames"]) for p in body["people"]] == \
        [(p["name"], p["seconds"], p["frames"]) for p in table["people"]]
    assert base64.b64decode(body["sheet_png"]) == (Path(table["out"]) / "sheet.png").read_bytes()
    for entry in body["people"]:
        assert base64.b64decode(entry["crop_png"]) == (Path(table["out"]) / f"{entry['name']}.png").read_bytes()
        assert len(entry["embedding"]) == 512
    assert body["out"] is None and not (settings.storage_dir / "in" / "two.faces").exists()   # nothing written
    sheet = client.get("/faces", params={**query, "format": "png"})
    assert sheet.status_code == 200 and sheet.headers["content-type"] == "image/png"
    assert sheet.headers["x-farm-people"] == "2" and sheet.content == base64.b64decode(body["sheet_png"])
    for bad, message in [({**query, "crf": "18"}, "unknown query parameter 'crf'"),
                         ({**query, "threshold": "1.5"}, "threshold must be 0..1"),
                         ({**query, "path": "/etc/hostname"}, "outside the farm's storage"),
                         ({**query, "format": "gif"}, "format 'gif' is not one of json, png")]:
        refused = client.get("/faces", params=bad)
        assert refused.status_code == 422 and message in refused.json()["detail"], refused.text
    assert TestClient(app).get("/faces", params=query).status_code == 401   # a token is needed
    params = {p["name"]: p for p in app.openapi()["paths"]["/faces"]["get"]["parameters"]}
    assert params["path"]["required"] and params["threshold"]["schema"]["maximum"] == 1.0 and "min_score" in params
    db.dispose()
