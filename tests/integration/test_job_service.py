"""The job service (farm.jobs.service) and its two front ends: `farm submit/cancel/retry` (the real
CLI as a subprocess) and the HTTP API (FastAPI's TestClient over the same app `farm api` serves)
give the same outcome and the same errors, and a submit answers with the job it recorded.

Real parts: a Redis server of "the cluster" on a loopback port (FARM_BROKER_URL, so that
the CLI starts no local workers that would run the jobs under the test), SQLite (and
PostgreSQL where marked), real ffmpeg clips, real chunk and finalize work in this process.
A broker that refuses work is that Redis out of memory (`maxmemory 1`): it answers PING,
so the submit passes its broker check, and then refuses every write.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
import redis
from farm.workers.chunk_runner import run_chunk
from farm.workers.context import WorkerContext
from farm.workers.finalize import run_finalize
from fastapi.testclient import TestClient
from sqlalchemy import update

from farm.api.app import create_app as create_api
from farm.broker import transport as broker
from farm.broker.celery_app import TASK_PROCESS_CHUNK, create_app
from farm.broker.embedded import redis_server_exe
from farm.config import Settings, load_settings
from farm.jobs.service import cancel_job, retry_job, submit_job
from farm.jobs.submit import SubmitRequest
from farm.state import chunks, store
from farm.state.db import Database, Job, upgrade_schema
from farm.state.tokens import create_token
from tests import clips
from tests.e2e.farmcli import FarmCLI
from tests.job_rows import hand_to_client

STALE_S = 1.0   # FARM_STALE_HEARTBEAT_S: a stopped farm's chunk is silent after this


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([redis_server_exe(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--maxmemory-policy", "noeviction", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 15
    while True:
        try:
            if redis.Redis.from_url(url).ping():
                break
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield url
    proc.kill()
    proc.wait(10)


def env_for(home: Path, url: str, database: str) -> dict[str, str]:
    return {"FARM_HOME": str(home), "FARM_BROKER_URL": url, "FARM_DATABASE_URL": database,
            "FARM_STALE_HEARTBEAT_S": str(STALE_S)}


class Farm:
    """One farm home seen three ways: the service (settings, db), the CLI and the API."""

    def __init__(self, home: Path, url: str, db: Database) -> None:
        self.env = env_for(home, url, db.engine.url.render_as_string(hide_password=False))
        self.settings: Settings = load_settings(self.env)
        self.db = db
        self.cli = FarmCLI(home, {k: v for k, v in self.env.items() if k != "FARM_HOME"})
        self.api = TestClient(create_api(self.settings, db))
        self.token = create_token(db, "ci")
        self.api.headers["Authorization"] = f"Bearer {self.token}"
        self.redis = redis.Redis.from_url(url)
        self.storage = self.settings.storage_dir
        self.out = home / "out"   # where a local user (the service, the CLI) writes outputs
        self.out.mkdir(exist_ok=True)

    def refuse_work(self, refuse: bool = True) -> None:
        """The broker answers, but takes nothing (out of memory) / takes work again."""
        self.redis.config_set("maxmemory", 1 if refuse else 0)

    def held(self) -> set:
        return broker.holdings(self.redis, self.settings)

    def clip(self, name: str, seconds: float = 1.0) -> Path:
        (self.storage / "incoming").mkdir(parents=True, exist_ok=True)
        return clips.make_clip(self.storage / "incoming" / name, width=160, height=90, seconds=seconds, gop=15)


@pytest.fixture
def farm(farm_home: Path, redis_url: str) -> Iterator[Farm]:
    db = Database(load_settings({"FARM_HOME": str(farm_home)}).database)
    upgrade_schema(db)
    yield Farm(farm_home, redis_url, db)
    db.dispose()


@pytest.fixture
def any_db_farm(farm_home: Path, redis_url: str, db: Database) -> Farm:
    """A farm on SQLite or PostgreSQL (the `db` fixture)."""
    return Farm(farm_home, redis_url, db)


def request(video: Path, output: Path, **extra) -> SubmitRequest:
    return SubmitRequest(video=video, output=output, chunk_seconds=0.5, face_options={"passthrough": True},
                         **extra)


def without_id(text: str, job_id: str) -> str:
    return text.replace(job_id, "<id>")


# ---- submit: the job it created, also when the broker refuses it ----------------------------

def test_submit_returns_each_job_it_records_when_the_broker_refuses_them(any_db_farm):
    farm = any_db_farm
    src = farm.clip("same.mp4")
    first = submit_job(request(src, farm.out / "a.mp4"), farm.settings, farm.db)
    assert first.enqueued and first.warning is None
    farm.refuse_work()
    second = submit_job(request(src, farm.out / "b.mp4"), farm.settings, farm.db)
    third = submit_job(request(src, farm.out / "c.mp4"), farm.settings, farm.db)
    assert len({first.job.id, second.job.id, third.job.id}) == 3
    for sub, name in ((second, "b.mp4"), (third, "c.mp4")):
        assert not sub.enqueued and sub.job.state == "queued"
        assert sub.job.output_path == str(farm.out / name)
        assert f"job {sub.job.id} is recorded" in sub.warning and "refused" in sub.warning, sub.warning
        assert store.get_job(farm.db, sub.job.id).chunk_count == sub.job.chunk_count == 2
    farm.refuse_work(False)
    from farm.broker.reaper import reap

    reap(farm.settings, farm.db)   # the farm, back
    held = {args for task, args in farm.held() if task == TASK_PROCESS_CHUNK}
    assert {(j.id, 0) for j in (first.job, second.job, third.job)} <= held


def test_the_api_answers_with_the_job_it_created_not_a_newer_looking_one_of_the_same_video(farm):
    """The API used to scan recent queued jobs of the same input for the id: it answered with
    another client's job when that one looked newer (another node's clock a minute ahead)."""
    farm.clip("same.mp4")
    other = farm.api.post("/jobs", json={"path": "incoming/same.mp4", "passthrough": True,
                                         "output": "outputs/other.mp4"})
    assert other.status_code == 201, other.text
    with farm.db.transaction() as s:   # submitted by a node whose clock runs a minute ahead
        s.execute(update(Job).where(Job.id == other.json()["id"])
                  .values(created_at=dt.datetime.utcnow() + dt.timedelta(minutes=1)))
    farm.refuse_work()
    mine = farm.api.post("/jobs", json={"path": "incoming/same.mp4", "passthrough": True,
                                        "output": "outputs/mine.mp4"})
    assert mine.status_code == 201, mine.text
    body = mine.json()
    assert body["id"] != other.json()["id"]
    assert body["output"] == str(farm.storage / "outputs" / "mine.mp4") and body["state"] == "queued"
    assert f"job {body['id']} is recorded" in body["warning"] and "refused" in body["warning"]
    assert other.json()["warning"] is None


def test_a_job_recorded_while_the_broker_refuses_it_is_submitted_by_the_cli_and_the_api(farm):
    src = farm.clip("late.mp4")
    farm.refuse_work()
    proc = farm.cli.run("submit", str(src), "--passthrough", "--chunk-seconds", "0.5", "--json",
                        "--output", str(farm.out / "cli.mp4"), timeout_s=120)
    assert proc.returncode == 0, proc.stderr
    by_cli = json.loads(proc.stdout)
    resp = farm.api.post("/jobs", json={"path": "incoming/late.mp4", "passthrough": True, "chunk_seconds": 0.5,
                                        "output": "outputs/api.mp4"})
    assert resp.status_code == 201, resp.text
    by_api = resp.json()
    assert by_cli["id"] != by_api["id"]
    for job in (by_cli, by_api):
        assert job["state"] == "queued" and store.get_job(farm.db, job["id"]).state == "queued"
        assert f"job {job['id']} is recorded" in job["warning"] and farm.settings.broker_shown in job["warning"]
    assert without_id(by_cli["warning"], by_cli["id"]) == without_id(by_api["warning"], by_api["id"])
    assert "warning:" in proc.stderr and by_cli["id"] in proc.stderr
    farm.refuse_work(False)
    from farm.broker.reaper import reap

    reap(farm.settings, farm.db)   # `farm up`/`farm worker`
    held = {args for task, args in farm.held() if task == TASK_PROCESS_CHUNK}
    assert {(by_cli["id"], 0), (by_api["id"], 0)} <= held


def test_the_cli_and_the_api_refuse_a_second_job_for_the_output_of_a_live_job(farm):
    """Two jobs for one output used to be accepted: the second failed after rendering everything
    (no overwrite) or replaced the first's output (overwrite). Now it is refused at submit, nothing
    stored, naming the live job (farm.jobs.reservation; races: tests/integration/test_output_reserved.py)."""
    src = farm.clip("race.mp4")
    out = farm.out / "race.mp4"
    submit = ("submit", str(src), "--passthrough", "--chunk-seconds", "0.5", "--json", "--output", str(out))
    first = json.loads(farm.cli.run(*submit, check=True, timeout_s=120).stdout)["id"]   # no worker: stays queued
    for extra in ((), ("--overwrite",)):
        proc = farm.cli.run(*submit, *extra, timeout_s=120)
        assert proc.returncode == 2, proc.stderr
        refused = json.loads(proc.stdout)
        assert (refused["state"], refused["id"]) == ("refused", None), refused
        assert f"output {out} is the output of job {first}, which is queued" in refused["error"], refused
        assert f"wait for job {first} to end, cancel it, or choose another --output" == refused["hint"], refused
    body = {"path": "incoming/race.mp4", "passthrough": True, "output": "outputs/race.mp4"}
    by_api = farm.api.post("/jobs", json=body)
    assert by_api.status_code == 201, by_api.text
    again = farm.api.post("/jobs", json={**body, "overwrite": True})   # the same client's own output
    assert again.status_code == 422, again.text
    assert f"is the output of job {by_api.json()['id']}, which is queued" in again.json()["detail"], again.text
    with farm.db.transaction() as s:
        assert sorted(s.execute(Job.__table__.select().with_only_columns(Job.id)).scalars()) == \
            sorted([first, by_api.json()["id"]])


# ---- retry and cancel: one semantics, one error ------------------------------------------------

def left_running(farm: Farm, name: str) -> str:
    """A job whose chunk 0 a worker took before the farm stopped, and whose messages the broker lost."""
    sub = submit_job(request(farm.clip(f"{name}.mp4"), farm.out / f"{name}.mp4"),
                     farm.settings, farm.db)
    claim = chunks.claim_chunk(farm.db, sub.job.id, 0, "gpu0@stopped", 3, stale_after_s=farm.settings.stale_heartbeat_s)
    assert claim.outcome == "run", claim
    assert store.get_job(farm.db, sub.job.id).state == "running"
    return sub.job.id


def test_retry_of_a_job_a_stopped_farm_left_running_is_the_same_in_the_cli_and_the_api(farm):
    by_cli, by_api = left_running(farm, "one"), left_running(farm, "two")
    hand_to_client(farm.db, by_api, farm.token)   # the API serves a client its own jobs
    farm.redis.flushall()       # the broker lost its messages
    time.sleep(STALE_S + 0.5)   # and the worker of chunk 0 is gone
    proc = farm.cli.run("retry", by_cli, timeout_s=120)
    assert proc.returncode == 0, proc.stderr
    resp = farm.api.post(f"/jobs/{by_api}/retry")
    assert resp.status_code == 200, resp.text
    message = resp.json()["message"]
    assert message == f"job {by_api} is running; queued again what the broker did not hold: 1 stale, 1 lost"
    assert without_id(message, by_api) in without_id(proc.stderr, by_cli)
    assert resp.json()["warning"] is None and "warning" not in proc.stderr
    held = {args for task, args in farm.held() if task == TASK_PROCESS_CHUNK}
    assert held == {(j, i) for j in (by_cli, by_api) for i in (0, 1)}


def done_job(farm: Farm, name: str) -> str:
    """A job run to the end by real chunk and finalize work in this process."""
    sub = submit_job(request(farm.clip(f"{name}.mp4", seconds=0.5), farm.out / f"{name}.mp4"),
                     farm.settings, farm.db)
    app = create_app(farm.settings)
    try:
        ctx = WorkerContext(farm.settings, app)
        for chunk in sub.job.chunks:
            assert run_chunk(ctx, sub.job.id, chunk.index, "gpu0@test").startswith("done")
        assert run_finalize(ctx, sub.job.id, "cpu0@test") == "done"
    finally:
        app.close()
    assert store.get_job(farm.db, sub.job.id).state == "done"
    return sub.job.id


@pytest.mark.parametrize("action", ["retry", "cancel"])
def test_retry_and_cancel_of_a_done_job_are_refused_alike(farm, action):
    by_cli, by_api = done_job(farm, "cli"), done_job(farm, "api")
    hand_to_client(farm.db, by_api, farm.token)   # the API serves a client its own jobs
    proc = farm.cli.run(action, by_cli, timeout_s=120)
    resp = farm.api.post(f"/jobs/{by_api}/{action}")
    assert proc.returncode == 2, proc.stderr
    assert resp.status_code == 409, resp.text
    detail = resp.json()["detail"]
    assert f"job {by_api} is" in detail and "done" in detail
    shown = " ".join(proc.stderr.split())
    outputs = {j: store.get_job(farm.db, j).output_path for j in (by_cli, by_api)}
    assert without_id(detail, by_api).replace(outputs[by_api], "<output>") in \
        without_id(shown, by_cli).replace(outputs[by_cli], "<output>")
    service = retry_job if action == "retry" else cancel_job
    from farm.errors import StateError

    with pytest.raises(StateError) as refused:
        service(farm.settings, farm.db, by_api)
    assert refused.value.message == detail
    assert {store.get_job(farm.db, j).state for j in (by_cli, by_api)} == {"done"}


def test_retry_of_a_failed_or_cancelled_job_runs_only_what_is_left(any_db_farm):
    farm = any_db_farm
    sub = submit_job(request(farm.clip("half.mp4"), farm.out / "half.mp4"), farm.settings, farm.db)
    app = create_app(farm.settings)
    try:
        assert run_chunk(WorkerContext(farm.settings, app), sub.job.id, 0, "gpu0@test").startswith("done")
    finally:
        app.close()
    cancelled = cancel_job(farm.settings, farm.db, sub.job.id)
    assert cancelled.state == "cancelled" and cancelled.cancel_requested
    farm.redis.flushall()
    retried = retry_job(farm.settings, farm.db, sub.job.id)
    assert retried.chunks == 1 and not retried.finalizing and retried.warning is None
    assert retried.message == f"job {sub.job.id}: 1 chunk(s) queued again"
    assert [c.state for c in retried.job.chunks] == ["done", "pending"]
    held = {args for task, args in farm.held() if task == TASK_PROCESS_CHUNK}
    assert held == {(sub.job.id, 1)}
