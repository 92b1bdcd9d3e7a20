"""POST /batches and GET /batches/{id} (issue 16.1) on a real `farm api` server over a real
local farm: a folder on storage, the Idempotency-Key rules of POST /jobs, refusals."""

from __future__ import annotations

import sqlite3
import time
import uuid

import httpx
import pytest

from tests import clips, media_checks
from tests.api_server import farm_api


@pytest.fixture(scope="module")
def api():
    with farm_api("batch-api") as server:
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=120)
        client.home = server.home
        yield client


def job_count(home) -> int:
    with sqlite3.connect(home / "farm.db") as conn:
        return conn.execute("SELECT count(*) FROM jobs").fetchone()[0]


def test_a_folder_on_storage_is_one_batch_and_a_retried_request_does_not_render_it_twice(api):
    name = uuid.uuid4().hex[:8]
    folder = api.home / "storage" / "incoming" / name
    clips.make_clip(folder / "a.mp4", seconds=0.5)
    clips.make_clip(folder / "deep" / "b.mp4", seconds=0.5)
    (folder / "readme.txt").write_text("x")
    body = {"path": f"incoming/{name}", "output": f"outputs/{name}", "passthrough": True, "chunk_seconds": 0.5}
    key = {"Idempotency-Key": f"ci-{name}"}
    before = job_count(api.home)
    first = api.post("/batches", json=body, headers=key)
    assert first.status_code == 201, first.text
    batch = first.json()
    assert first.headers["location"] == f"/batches/{batch['batch']}"
    assert batch["total"] == 2 and [s["reason"] for s in batch["skipped"]] == ["unknown extension '.txt': neither a video nor an image"]
    again = api.post("/batches", json=body, headers=key)
    assert again.status_code == 200 and again.json()["batch"] == batch["batch"]
    assert again.headers["idempotent-replayed"] == "true"
    other = api.post("/batches", json={**body, "priority": 9}, headers=key)
    assert other.status_code == 409
    assert job_count(api.home) == before + 2
    deadline = time.monotonic() + 120
    while (shown := api.get(f"/batches/{batch['batch']}").json())["state"] == "running":
        assert time.monotonic() < deadline, shown
        time.sleep(0.3)
    assert (shown["state"], shown["done"], shown["exit_code"]) == ("done", 2, 0), shown
    outputs = api.home / "storage" / "outputs" / name
    assert {i["output"] for i in shown["items"]} == {str(outputs / "a.mp4"), str(outputs / "deep" / "b.mp4")}
    assert media_checks.frame_count(outputs / "deep" / "b.mp4") == 15


@pytest.mark.parametrize("body, says", [
    ({"path": "/etc", "passthrough": True}, "storage"),
    ({"path": "incoming/*.nothing-matches", "output": "outputs/never", "passthrough": True}, "matches no file"),
    ({"path": "incoming", "output": "elsewhere/x", "passthrough": True}, "outputs/"),
    ({"path": "incoming"}, "source"),
])
def test_bad_batch_requests_are_refused_and_nothing_is_stored(api, body, says):
    (api.home / "storage" / "incoming").mkdir(parents=True, exist_ok=True)
    before = job_count(api.home)
    answer = api.post("/batches", json=body)
    assert answer.status_code == 422 and says in answer.json()["detail"], answer.text
    assert job_count(api.home) == before and not (api.home / "storage" / "outputs" / "never").exists()
    assert api.get("/batches/b-0000000000").status_code == 404


def test_a_folder_of_images_on_storage_renders_as_one_images_job(api):
    from PIL import Image

    from farm.media.stills import read_label

    name = uuid.uuid4().hex[:8]
    folder = api.home / "storage" / "incoming" / name
    clips.make_face_image(folder / "a.jpg", size=96)
    (folder / "deep").mkdir()
    Image.open(folder / "a.jpg").save(folder / "deep" / "b.png")
    before = job_count(api.home)
    answer = api.post("/batches", json={"path": f"incoming/{name}", "output": f"outputs/{name}", "passthrough": True})
    assert answer.status_code == 201, answer.text
    assert answer.json()["total"] == 2 and job_count(api.home) == before + 1
    deadline = time.monotonic() + 120
    while (shown := api.get(f"/batches/{answer.json()['batch']}").json())["state"] == "running":
        assert time.monotonic() < deadline, shown
        time.sleep(0.3)
    assert (shown["state"], shown["done"], shown["exit_code"]) == ("done", 2, 0), shown
    out = api.home / "storage" / "outputs" / name / "deep" / "b.png"
    assert Image.open(out).size == (96, 96) and "pass-through" in read_label(out)
