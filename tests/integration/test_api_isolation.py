"""One API client never sees or touches another's work (farm.api.ownership).

Real SQLite job store, the real app (FastAPI's in-process client), real submit, chunk and
finalize code on real ffmpeg; the broker calls are dropped (the `inproc` fixture), and the
test runs the job's chunk and its finalize itself, as a worker would.
"""

from __future__ import annotations

from pathlib import Path

import farm.workers.chunk_runner
import pytest
from farm.workers.finalize import run_finalize
from fastapi.testclient import TestClient

from farm.api.app import create_app
from farm.state import store
from farm.state.tokens import create_token
from tests import clips


@pytest.fixture
def clients(inproc):
    """(settings, db, worker context, client of token a, client of token b)."""
    settings, db, ctx = inproc
    app = create_app(settings, db)
    a, b = TestClient(app), TestClient(app)
    a.headers["Authorization"] = f"Bearer {create_token(db, 'team-a')}"
    b.headers["Authorization"] = f"Bearer {create_token(db, 'team-b')}"
    return settings, db, ctx, a, b


def rendered(ctx, db, job_id: str) -> None:
    job = store.get_job(db, job_id)
    for index in range(job.chunk_count):
        assert farm.workers.chunk_runner.run_chunk(ctx, job_id, index, "cpu0@test").startswith("done")
    assert run_finalize(ctx, job_id, "fin") == "done", store.get_job(db, job_id).error


def test_a_client_sees_cancels_retries_and_downloads_its_own_jobs_only(clients):
    settings, db, ctx, a, b = clients
    storage = Path(settings.storage_dir)
    clips.make_clip(storage / "incoming" / "a.mp4", width=160, height=90, seconds=1.0)
    # Given a job of client a, and one submitted on the farm itself
    made = a.post("/jobs", json={"path": "incoming/a.mp4", "passthrough": True, "output": "outputs/a.mp4"})
    assert made.status_code == 201, made.text
    job_id = made.json()["id"]
    rendered(ctx, db, job_id)
    from farm.jobs.spec import check_options, submit_request
    from farm.jobs.submit import submit

    local = submit(submit_request(storage / "incoming" / "a.mp4",
                                  check_options({"passthrough": True, "output": str(storage / "local.mp4")}, "t")),
                   settings, db)
    # Then a sees, reads and downloads its job
    assert [j["id"] for j in a.get("/jobs").json()] == [job_id]
    assert a.get(f"/jobs/{job_id}").json()["state"] == "done"
    assert a.get(f"/jobs/{job_id}/output").status_code == 200
    # and b, as for an id that does not exist, gets 404 for every route of it, and lists nothing
    assert b.get("/jobs").json() == []
    unknown = b.get("/jobs/000000000000")
    for answer in (b.get(f"/jobs/{job_id}"), b.get(f"/jobs/{job_id}/output"), b.post(f"/jobs/{job_id}/cancel"),
                   b.post(f"/jobs/{job_id}/retry"), b.get(f"/jobs/{local}"), a.post(f"/jobs/{local}/cancel")):
        assert answer.status_code == 404 == unknown.status_code, answer.text
        assert "no job" in answer.json()["detail"]
    # and nothing of theirs changed: the local job is still queued, a's job still done
    assert store.get_job(db, local).state == "queued" and store.get_job(db, job_id).state == "done"


def test_a_client_sees_and_acts_on_its_own_batches_only(clients):
    settings, db, _ctx, a, b = clients
    folder = Path(settings.storage_dir) / "incoming" / "shoot"
    clips.make_clip(folder / "one.mp4", width=160, height=90, seconds=1.0)
    made = a.post("/batches", json={"path": "incoming/shoot", "output": "outputs/shoot", "passthrough": True})
    assert made.status_code == 201, made.text
    batch = made.json()["batch"]
    assert a.get(f"/batches/{batch}").status_code == 200
    for answer in (b.get(f"/batches/{batch}"), b.post(f"/batches/{batch}/cancel"), b.post(f"/batches/{batch}/retry")):
        assert answer.status_code == 404, answer.text
    job_id = a.get(f"/batches/{batch}").json()["items"][0]["id"]
    assert store.get_job(db, job_id).state == "queued"   # b's cancel touched nothing
    assert b.get(f"/jobs/{job_id}").status_code == 404 and a.get(f"/jobs/{job_id}").status_code == 200


def test_an_image_output_claimed_for_a_refused_images_job_is_released(inproc):
    """Client a's images batch is refused as a job (this farm requires consent; a gave none):
    the outputs it had claimed are let go, so client b can write there. (Before, a's claims
    stayed, and b was told the paths belong to another client's job.) Once b's images job is
    recorded, its claims name that job."""
    import dataclasses

    from PIL import Image
    from sqlalchemy import select

    from farm.state.db import OutputClaim

    settings, db, _ctx = inproc
    settings = dataclasses.replace(settings, require_consent=True)
    app = create_app(settings, db)
    a, b = TestClient(app), TestClient(app)
    a.headers["Authorization"] = f"Bearer {create_token(db, 'team-a')}"
    b.headers["Authorization"] = f"Bearer {create_token(db, 'team-b')}"
    folder = Path(settings.storage_dir) / "incoming" / "stills"
    folder.mkdir(parents=True)
    Image.new("RGB", (64, 48), (200, 150, 120)).save(folder / "one.png")
    body = {"path": "incoming/stills", "output": "outputs/stills", "passthrough": True}
    refused = a.post("/batches", json=body)
    assert refused.status_code == 201, refused.text
    item = refused.json()["items"][0]
    assert item["state"] == "failed" and "consent" in item["error"], item
    with db.transaction() as s:
        assert s.execute(select(OutputClaim)).scalars().all() == []
    taken = b.post("/batches", json={**body, "consent": "ticket-42"})
    assert taken.status_code == 201, taken.text
    item = taken.json()["items"][0]
    assert item["state"] != "failed" and item["error"] is None, item
    with db.transaction() as s:
        claims = s.execute(select(OutputClaim)).scalars().all()
    assert [(Path(c.path).name, c.job_id) for c in claims] == [("one.png", item["id"])]
