"""One API client never sees or touches another's work (farm.api.ownership), nor reads its
files on storage (farm.api.reading).

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
from farm.state.db import Job
from farm.state.tokens import create_token
from farm.storage import temp_name
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


# ---- paths on storage: a client reads the shared inputs and its own work only (farm.api.reading)

def _done(client, ctx, db, body=None, **upload) -> dict:
    """A job of `client` (JSON `body`, or an upload), rendered; its JSON."""
    made = client.post("/jobs", json=body) if body is not None else client.post("/jobs", **upload)
    assert made.status_code == 201, made.text
    rendered(ctx, db, made.json()["id"])
    return client.get(f"/jobs/{made.json()['id']}").json()


def _as_missing(answer, what: str, path: Path) -> None:
    """Refused exactly as a file that does not exist: 422, 'no such file', nothing more."""
    assert answer.status_code == 422, answer.text
    assert answer.json() == {"detail": f"cannot read {what} {path}: no such file", "hint": "check the path"}


@pytest.fixture
def alices_work(clients):
    """Client a's work on storage: an upload rendered into its request folder, a job from a shared
    input (its ingested copy under jobs/), an output it named under outputs/ and one beside the input."""
    settings, db, ctx, a, _b = clients
    storage = Path(settings.storage_dir).resolve()
    shared = clips.make_clip(storage / "incoming" / "a.mov", width=160, height=90, seconds=1.0)
    clips.make_face_image(storage / "incoming" / "f.jpg")
    for folder in ("alice", "b"):
        (storage / "outputs" / folder).mkdir(parents=True)
    clip = clips.make_clip(storage.parent / "up.mp4", width=160, height=90, seconds=1.0)
    upload = _done(a, ctx, db, files={"video": ("up.mp4", clip.read_bytes(), "video/mp4")}, data={"passthrough": "true"})
    named = _done(a, ctx, db, {"path": "incoming/a.mov", "passthrough": True, "output": "outputs/alice/x.mov"})
    beside = _done(a, ctx, db, {"path": "incoming/a.mov", "passthrough": True})
    with db.transaction() as s:
        source = Path(s.get(Job, named["id"]).source_path)
    assert source.parent == storage / "jobs" / named["id"] and source.is_file()
    return {"storage": storage, "shared": shared, "upload": Path(upload["output"]), "source": source,
            "named": Path(named["output"]), "beside": Path(beside["output"]), "job": named["id"],
            "beside_job": beside["id"]}


def test_a_batch_never_walks_into_another_clients_job_folders_or_uploads(clients, alices_work):
    settings, db, _ctx, a, b = clients
    storage = alices_work["storage"]
    request_folder = alices_work["upload"].parent.relative_to(storage)
    missing = b.post("/batches", json={"path": "no-such-folder", "passthrough": True, "output": "outputs/b2"})
    assert missing.status_code == 422 and "no such file, folder or glob match" in missing.json()["detail"]
    # Given a's work, b's batch over the farm's folders (or a's own folder under api/) finds nothing there:
    # answered as a path that does not exist, and nothing is queued or made
    for path in ("jobs", "api", f"jobs/{alices_work['job']}", str(request_folder), "outputs/alice"):
        refused = b.post("/batches", json={"path": path, "passthrough": True, "output": "outputs/b2"})
        assert refused.status_code == 422, (path, refused.text)
        assert refused.json() == {"detail": f"{storage / path}: no such file, folder or glob match",
                                  "hint": "check the path"}, path
    for pattern in ("jobs/*/source.*", "api/*/*.mp4", "outputs/*/*.mov"):
        refused = b.post("/batches", json={"path": pattern, "passthrough": True})
        assert refused.status_code == 422 and "matches no file" in refused.json()["detail"], (pattern, refused.text)
    assert b.get("/jobs").json() == [] and not (storage / "outputs" / "b2").exists()
    # and a walk over the whole storage lists the shared inputs alone: not a's output beside one, nor
    # the temporary its finalize writes there; an operator's hidden file is listed as skipped, as ever
    temp_name(alices_work["beside"], alices_work["beside_job"]).write_bytes(b"being published")
    (storage / "incoming" / ".notes").write_text("the operator's")
    whole = b.post("/batches", json={"path": ".", "passthrough": True})
    assert whole.status_code == 201, whole.text
    listed = [i["input"] for i in whole.json()["items"]] + [s["input"] for s in whole.json()["skipped"]]
    assert sorted(listed) == [str(storage / "incoming" / n) for n in (".notes", "a.mov", "f.jpg")], listed
    # while a walks its own folders
    mine = a.post("/batches", json={"path": str(request_folder), "passthrough": True, "output": "outputs/again"})
    assert mine.status_code == 201, mine.text
    assert [i["input"] for i in mine.json()["items"]] == [str(alices_work["upload"])]


def test_a_job_never_reads_another_clients_files(clients, alices_work):
    settings, db, ctx, a, b = clients
    storage = alices_work["storage"]
    foreign = [alices_work[k] for k in ("source", "upload", "named", "beside")]
    # an existing file of a's and one that does not exist get the same answer
    for path in [*foreign, storage / "jobs" / "0123456789ab" / "source.mov"]:
        for raw in (str(path.relative_to(storage)), str(path)):
            _as_missing(b.post("/jobs", json={"path": raw, "passthrough": True, "output": "outputs/b/x.mov"}),
                        "video", path)
        _as_missing(b.post("/jobs", json={"path": "incoming/a.mov", "source": [str(path)], "output": "outputs/b/y.mov"}),
                    "source image", path)
        _as_missing(b.post("/jobs", json={"path": "incoming/a.mov", "faces": "reference", "source": ["incoming/f.jpg"],
                                          "reference": str(path), "output": "outputs/b/y.mov"}), "reference image", path)
        _as_missing(b.post("/jobs", json={"path": "incoming/a.mov", "map": [f"incoming/f.jpg={path}"],
                                          "output": "outputs/b/y.mov"}), "map source", path)
        _as_missing(b.post("/batches", json={"path": "incoming", "map": [f"{path}=incoming/f.jpg"],
                                             "output": "outputs/b3"}), "map reference", path)
    assert b.get("/jobs").json() == []
    # the shared input is b's to read as well, and a reads its own work again
    assert b.post("/jobs", json={"path": "incoming/a.mov", "passthrough": True, "output": "outputs/b/a.mov"}
                  ).status_code == 201
    for n, path in enumerate(foreign):
        again = a.post("/jobs", json={"path": str(path), "passthrough": True,
                                     "output": f"outputs/alice/again-{n}{path.suffix}"})
        assert again.status_code == 201, (path, again.text)


def test_faces_preview_and_verify_never_read_another_clients_files(clients, alices_work):
    settings, db, ctx, a, b = clients
    storage = alices_work["storage"]
    for path in (alices_work["upload"], alices_work["named"], alices_work["source"]):
        raw = str(path.relative_to(storage))
        _as_missing(b.get("/faces", params={"path": raw, "models": "demo"}), "video", path)
        _as_missing(b.get("/preview", params={"path": raw, "source": "incoming/f.jpg", "models": "demo"}),
                    "video", path)
        _as_missing(b.get("/preview", params={"path": "incoming/a.mov", "source": raw, "models": "demo"}),
                    "source image", path)
        _as_missing(b.post("/verify", json={"path": raw}), "file", path)
    raw = str(alices_work["upload"].relative_to(storage))
    assert a.get("/faces", params={"path": raw, "models": "demo"}).status_code == 200
    assert a.get("/preview", params={"path": raw, "source": "incoming/f.jpg", "models": "demo"}).status_code == 200
    assert a.post("/verify", json={"path": raw}).status_code == 200
    assert b.get("/faces", params={"path": "incoming/a.mov", "models": "demo"}).status_code == 200   # shared


def test_a_batch_default_output_never_lands_in_another_clients_folder(clients, alices_work):
    settings, db, ctx, a, b = clients
    storage = alices_work["storage"]
    folder = storage / "outputs" / "alice"
    # Given b's own output in the folder that holds a's (b named it there)
    _done(b, ctx, db, {"path": "incoming/a.mov", "passthrough": True, "output": "outputs/alice/b.mov"})
    before = sorted(p.name for p in folder.iterdir())
    # When b walks that folder with the outputs beside their inputs
    made = b.post("/batches", json={"path": "outputs/alice", "passthrough": True})
    # Then only b's file is an item, and it is refused: its output would go into a's folder
    assert made.status_code == 201, made.text
    assert made.json()["skipped"] == [] and [i["input"] for i in made.json()["items"]] == [str(folder / "b.mov")]
    item = made.json()["items"][0]
    assert item["state"] == "failed" and str(folder) in item["error"] and "another API client" in item["error"]
    assert '"output"' in item["error"], item["error"]   # what to do: name an output folder
    assert sorted(p.name for p in folder.iterdir()) == before   # nothing written beside a's outputs
    # a single job alike, while an output folder of b's own is fine
    refused = b.post("/jobs", json={"path": "outputs/alice/b.mov", "passthrough": True})
    assert refused.status_code == 422 and str(folder) in refused.json()["detail"], refused.text
    elsewhere = b.post("/batches", json={"path": "outputs/alice", "passthrough": True, "output": "outputs/b-again"})
    assert elsewhere.status_code == 201 and [i["state"] for i in elsewhere.json()["items"]] == ["queued"]
    assert a.post("/batches", json={"path": "outputs/alice", "passthrough": True, "output": "outputs/a-again"}
                  ).json()["items"][0]["input"] == str(alices_work["named"])


def test_a_batch_never_takes_over_another_clients_live_job(clients):
    """Two clients batch the same shared folder with the same options: each gets its own job,
    so b cancelling its batch leaves a's job running."""
    settings, db, _ctx, a, b = clients
    clips.make_clip(Path(settings.storage_dir) / "incoming" / "shoot" / "one.mp4", width=160, height=90, seconds=1.0)
    body = {"path": "incoming/shoot", "passthrough": True}
    first = a.post("/batches", json=body)
    assert first.status_code == 201, first.text
    alices = first.json()["items"][0]["id"]
    second = b.post("/batches", json=body)
    assert second.status_code == 201, second.text
    item = second.json()["items"][0]
    assert item["id"] != alices and item["state"] == "failed" and "another API client" in item["error"], item
    b.post(f"/batches/{second.json()['batch']}/cancel")
    assert store.get_job(db, alices).state == "queued"
