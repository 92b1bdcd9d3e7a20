"""The HTTP API as CI uses it: `farm api` as a real server on loopback, over a real local farm
(`farm up`: private Redis + Celery workers), SQLite, real ffmpeg; tokens from `farm tokens`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests import clips, media_checks
from tests.api_server import farm_api
from tests.e2e.farmcli import FarmCLI

MAX_UPLOAD_BYTES = 2_000_000
TERMINAL = {"done", "failed", "cancelled"}


class Api:
    def __init__(self, home: Path, url: str, token: str, log: Path) -> None:
        self.home, self.url, self.token, self.log = home, url, token, log
        self.client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120)

    @property
    def storage(self) -> Path:
        return self.home / "storage"

    def wait(self, job_id: str, states: set[str] = TERMINAL, timeout_s: float = 180) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = self.client.get(f"/jobs/{job_id}").json()
            if job["state"] in states:
                return job
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} never reached {states}: {job}")

    def job_count(self) -> int:
        with sqlite3.connect(self.home / "farm.db") as conn:
            return conn.execute("SELECT count(*) FROM jobs").fetchone()[0]

    def leftovers(self) -> list[Path]:
        """Uploads not turned into a job (the api folder holds only job outputs)."""
        return [p for p in (self.storage / "api").glob("*/in")] if (self.storage / "api").exists() else []


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with farm_api("api", max_upload_bytes=MAX_UPLOAD_BYTES) as server:
        yield Api(server.home, server.url, server.token, server.log)


def upload(api: Api, video: Path, headers: dict | None = None, **fields: str) -> httpx.Response:
    with open(video, "rb") as fh:
        return api.client.post("/jobs", files={"video": (video.name, fh, "video/mp4")}, data=fields,
                               headers=headers or {})


def test_the_openapi_schema_is_served(api):
    schema = httpx.get(f"{api.url}/openapi.json").json()
    for path in ("/jobs", "/jobs/{job_id}", "/jobs/{job_id}/cancel", "/jobs/{job_id}/retry", "/jobs/{job_id}/output"):
        assert path in schema["paths"], path
    assert "multipart/form-data" in schema["paths"]["/jobs"]["post"]["requestBody"]["content"]
    assert any(s.get("scheme") == "bearer" for s in schema["components"]["securitySchemes"].values())


def test_requests_without_a_valid_token_are_refused(api):
    assert httpx.get(f"{api.url}/jobs").status_code == 401
    assert httpx.get(f"{api.url}/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{api.url}/jobs", headers={"Authorization": f"Basic {api.token}"}).status_code == 401
    farm = FarmCLI(api.home)
    old = farm.run("tokens", "create", "old", check=True).stdout.strip()
    assert httpx.get(f"{api.url}/jobs", headers={"Authorization": f"Bearer {old}"}).status_code == 200
    farm.run("tokens", "revoke", "old", check=True)
    resp = httpx.get(f"{api.url}/jobs", headers={"Authorization": f"Bearer {old}"})
    assert resp.status_code == 401 and resp.headers["www-authenticate"].startswith("Bearer")
    before = api.job_count()
    clip = clips.make_clip(api.home / "noauth.mp4", seconds=0.5)
    with open(clip, "rb") as fh:
        resp = httpx.post(f"{api.url}/jobs", files={"video": ("a.mp4", fh)}, data={"passthrough": "true"})
    assert resp.status_code == 401
    assert api.job_count() == before
    listed = farm.run("tokens", "list", "--json", check=True).stdout
    assert api.token not in listed and old not in listed


def test_an_uploaded_job_finishes_shows_chunk_progress_and_downloads(api, tmp_path):
    src = clips.make_clip(tmp_path / "talk.mp4", seconds=1.0, audio_tracks=1, gop=15)
    resp = upload(api, src, passthrough="true", chunk_seconds="0.5")
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert resp.headers["location"] == f"/jobs/{created['id']}"
    job = api.wait(created["id"])
    assert job["state"] == "done" and job["exit_code"] == 0 and job["error"] is None, (job["error"], job["chunk_progress"])
    assert job["frames"] == 30 and job["frames_done"] == 30 and job["progress"] == 1.0
    assert [c["state"] for c in job["chunk_progress"]] == ["done", "done"]
    assert all(c["frames_done"] == c["frames"] for c in job["chunk_progress"])
    out = Path(job["output"])
    assert api.storage in out.parents and out.name == "talk.farm.mp4"
    got = api.client.get(job["output_url"])
    assert got.status_code == 200 and got.content == out.read_bytes()
    dl = tmp_path / "downloaded.mp4"
    dl.write_bytes(got.content)
    assert media_checks.frame_count(dl) == 30
    assert api.leftovers() == []
    listed = api.client.get("/jobs").json()
    assert created["id"] in [j["id"] for j in listed]
    assert api.token not in api.log.read_text()


def test_the_same_idempotency_key_gives_the_same_job(api):
    incoming = api.storage / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    clip = clips.make_clip(incoming / "ci.mp4", seconds=0.5)
    body = {"path": "incoming/ci.mp4", "passthrough": True}
    key = {"Idempotency-Key": f"build-{uuid.uuid4().hex}"}
    before = api.job_count()
    first = api.client.post("/jobs", json=body, headers=key)
    assert first.status_code == 201, first.text
    again = api.client.post("/jobs", json=body, headers=key)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert api.job_count() == before + 1
    other = api.client.post("/jobs", json={**body, "priority": 9}, headers=key)
    assert other.status_code == 409 and "different request" in other.json()["detail"]
    assert api.job_count() == before + 1
    job = api.wait(first.json()["id"])
    assert job["state"] == "done" and job["output"] == str(clip.with_name("ci.farm.mp4"))


def test_cancel_then_retry(api, tmp_path):
    src = clips.make_clip(tmp_path / "long.mp4", seconds=4.0, gop=15)
    resp = upload(api, src, passthrough="true", chunk_seconds="0.25")
    assert resp.status_code == 201, resp.text
    job_id = resp.json()["id"]
    cancelled = api.client.post(f"/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["exit_code"] == 3 and cancelled.json()["output_url"] is None
    assert api.client.get(f"/jobs/{job_id}/output").status_code == 409
    retried = api.client.post(f"/jobs/{job_id}/retry")
    assert retried.status_code == 200 and retried.json()["state"] in ("queued", "running", "finalizing")
    job = api.wait(job_id)
    assert job["state"] == "done", job
    assert api.client.post(f"/jobs/{job_id}/cancel").status_code == 409   # done: nothing to cancel
    assert api.client.post(f"/jobs/{job_id}/retry").status_code == 409
    assert api.client.get("/jobs/0123456789ab").status_code == 404
    assert api.client.get("/jobs/..%2Fx").status_code == 404


def test_an_upload_over_the_limit_is_refused_and_nothing_is_stored(api):
    before = api.job_count()
    big = b"\0" * (MAX_UPLOAD_BYTES + 1)
    resp = api.client.post("/jobs", files={"video": ("big.mp4", big)}, data={"passthrough": "true"})
    assert resp.status_code == 413, resp.text

    def chunks():  # no Content-Length: counted as it arrives
        boundary = b"--xyz"
        yield boundary + b'\r\nContent-Disposition: form-data; name="video"; filename="big.mp4"\r\n\r\n'
        for _ in range(MAX_UPLOAD_BYTES // 65536 + 2):
            yield b"\0" * 65536
        yield b"\r\n" + boundary + b"--\r\n"

    resp = api.client.post("/jobs", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert resp.status_code == 413, resp.text
    assert api.job_count() == before
    assert api.leftovers() == []


def test_bad_input_is_refused_with_a_message_and_nothing_stored(api, tmp_path):
    before = api.job_count()
    bad = clips.make_not_video(tmp_path / "notes.mp4", kind="text")
    resp = upload(api, bad, passthrough="true")
    assert resp.status_code == 422 and "notes.mp4" in resp.json()["detail"], resp.text
    clip = clips.make_clip(tmp_path / "ok.mp4", seconds=0.5)
    resp = upload(api, clip)
    assert resp.status_code == 422 and "source" in resp.json()["detail"]
    resp = upload(api, clip, passthrough="true", crf="lots")
    assert resp.status_code == 422 and "crf" in resp.json()["detail"]
    resp = upload(api, clip, passthrough="true", colour="red")
    assert resp.status_code == 422 and "'colour'" in resp.json()["detail"]
    assert api.job_count() == before
    assert api.leftovers() == []


def test_paths_outside_storage_are_refused(api, tmp_path):
    before = api.job_count()
    outside = clips.make_clip(tmp_path / "outside.mp4", seconds=0.5)
    link = api.storage / "incoming" / "link.mp4"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(outside)
    inside = clips.make_clip(api.storage / "incoming" / "inside.mp4", seconds=0.5)
    for body in ({"path": str(outside)}, {"path": "../../etc/passwd"}, {"path": "incoming/link.mp4"},
                 {"path": "incoming/inside.mp4", "output": str(tmp_path / "out.mp4")},
                 {"path": "incoming/inside.mp4", "source": [str(outside)]}):
        resp = api.client.post("/jobs", json={"passthrough": True, **body})
        assert resp.status_code == 422 and "outside the farm's storage" in resp.json()["detail"], (body, resp.text)
    resp = upload(api, inside, passthrough="true", output="/tmp/x.mp4")
    assert resp.status_code == 422 and "outside" in resp.json()["detail"]
    assert api.job_count() == before
    assert not (tmp_path / "out.mp4").exists()


def test_the_ci_example_submits_waits_downloads_and_a_rerun_reuses_the_job(api, tmp_path):
    src = clips.make_clip(tmp_path / "teaser.mp4", seconds=1.0)
    spec = tmp_path / "render.toml"
    spec.write_text("[submit]\npassthrough = true\nchunk_seconds = 0.5\n")
    script = Path(__file__).resolve().parents[2] / "deploy" / "ci" / "farm_render.py"
    env = {"PATH": "/usr/bin:/bin", "FARM_API_URL": api.url, "FARM_API_TOKEN": api.token,
           "GITHUB_RUN_ID": uuid.uuid4().hex, "GITHUB_JOB": "render"}
    before = api.job_count()
    runs = []
    for _ in range(2):   # the second run is a CI re-run: same Idempotency-Key
        out = tmp_path / "out" / "teaser.farm.mp4"
        proc = subprocess.run([sys.executable, str(script), str(src), "--spec", str(spec), "--out", str(out),
                               "--poll-s", "0.5", "--set", "priority=7"], env=env, capture_output=True, text=True,
                              timeout=240)
        assert proc.returncode == 0, proc.stderr
        runs.append(json.loads(proc.stdout))
        assert out.read_bytes() == Path(runs[-1]["output"]).read_bytes()
        out.unlink()
    assert runs[0]["id"] == runs[1]["id"] and runs[0]["priority"] == 7
    assert api.job_count() == before + 1
    proc = subprocess.run([sys.executable, str(script), str(src), "--set", "colour=red"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "colour" in proc.stderr


# ---- idempotency keys on both databases (no server) -------------------------------------

def test_idempotency_keys_reserve_replay_conflict_and_release(db):
    from farm.api import idempotency

    first = idempotency.reserve(db, 1, "k", "sha-a")
    assert first.job_id is None
    with pytest.raises(idempotency.KeyConflict, match="still being submitted"):
        idempotency.reserve(db, 1, "k", "sha-a", wait_s=0.3, poll_s=0.1)   # the first has no job yet
    idempotency.complete(db, first, "job1")
    assert idempotency.reserve(db, 1, "k", "sha-a").job_id == "job1"
    with pytest.raises(idempotency.KeyConflict, match="different request"):
        idempotency.reserve(db, 1, "k", "sha-b")
    assert idempotency.reserve(db, 2, "k", "sha-b").job_id is None          # keys are per token
    failed = idempotency.reserve(db, 1, "other", "sha-c")
    idempotency.release(db, failed)                                          # a refused submit frees its key
    assert idempotency.reserve(db, 1, "other", "sha-d").job_id is None


def test_the_token_never_reaches_the_server_log(api):
    assert api.client.get("/jobs").status_code == 200
    httpx.get(f"{api.url}/jobs", headers={"Authorization": "Bearer not-a-real-token-xyz"}, timeout=10)
    log = api.log.read_text()
    assert "GET /jobs" in log                      # requests are logged...
    assert api.token not in log and "not-a-real-token-xyz" not in log   # ...their credentials are not
