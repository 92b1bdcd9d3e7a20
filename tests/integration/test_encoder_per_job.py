"""The encoder is decided once per job, at submit, and every chunk is written with it.

Two real Celery worker processes (`python -m farm.workers.celery_worker`) on the machine's
Redis, PostgreSQL and a shared folder, as on a cluster. There is no NVENC here, so
"this node lacks encoder X" is simulated with FARM_DISABLED_ENCODERS=X, which the
encoder-availability probe of that worker reads (farm.media.hwaccel.encoder_problem);
everything else is real.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from farm.broker.celery_app import create_app
from farm.config import load_settings
from farm.media import hwaccel
from farm.media.chunk_codec import choose_encoder, transcode_chunk
from farm.media.plan import plan_chunks
from farm.media.probe import probe
from farm.media.split import split_chunks
from tests import clips, media_checks
from tests.redis_dbs import shared_redis_db
from tests.e2e.farmcli import FarmCLI

REDIS_URL = os.environ.get("FARM_TEST_REDIS", "redis://127.0.0.1:6379")


@pytest.fixture
def shared(tmp_path: Path, pg_url: str, farm_home: Path):
    """Cluster settings (Redis database, PostgreSQL, shared storage) and a worker starter."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            pytest.fail(f"no Redis at {REDIS_URL} (CI must have it)")
        pytest.skip(f"no Redis at {REDIS_URL}")
    broker = f"{REDIS_URL}/{shared_redis_db(9)}"
    redis.Redis.from_url(broker).flushdb()
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    env = {"FARM_BROKER_URL": broker, "FARM_DATABASE_URL": pg_url, "FARM_STORAGE": str(tmp_path / "nfs"),
           "FARM_PROVIDERS": "cpu"}
    cli = FarmCLI(farm_home, env)
    cli.run("db", "upgrade", check=True)
    procs: list[subprocess.Popen] = []
    node = uuid.uuid4().hex[:6]

    def start(name: str, queues: str, disabled: str = "") -> str:
        host = f"{name}@enc-{node}"
        worker_env = dict(cli.env, FARM_DISABLED_ENCODERS=disabled)
        log = open(farm_home / f"{name}.log", "wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "farm.workers.celery_worker", "--hostname", host,
                                       "--queues", queues], env=worker_env, stdout=log, stderr=subprocess.STDOUT))
        return host

    def wait_ready(*hosts: str) -> None:
        app = create_app(load_settings(cli.env))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answered = app.control.inspect(timeout=1.0).active_queues() or {}
            if set(hosts) <= set(answered):
                return
        raise AssertionError(f"workers {hosts} did not start:\n{logs()}")

    def logs() -> str:
        return "\n".join(p.name + ":\n" + p.read_text()[-3000:] for p in farm_home.glob("*.log"))

    def rows(sql: str, *args: object) -> list[tuple]:
        with psycopg.connect(pg_url) as conn:
            return conn.execute(sql, args).fetchall()

    yield cli, start, wait_ready, logs, rows
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
    redis.Redis.from_url(broker).flushdb()


def test_a_worker_without_the_jobs_encoder_leaves_its_chunks_to_one_that_has_it(shared, tmp_path):
    cli, start, wait_ready, logs, rows = shared
    # Given two workers: A cannot produce libx265 (simulated), B can (and also finalizes)
    lacking = start("gpuA", "gpu", disabled="libx265")
    having = start("gpuB", "gpu,cpu")
    wait_ready(lacking, having)
    src = clips.make_clip(tmp_path / "clip.mp4", seconds=2.0, gop=10)
    # When a job asks for HEVC
    proc = cli.run("submit", str(src), "--passthrough", "--codec", "hevc", "--wait", "--json",
                   "--chunk-seconds", "0.34", timeout_s=240)
    # Then it finishes: every chunk was written by B, at its first attempt, and A took none
    assert proc.returncode == 0, proc.stdout + proc.stderr + logs()
    result = json.loads(proc.stdout)
    chunks = rows('SELECT "index", state, attempts, worker FROM chunks WHERE job_id = %s ORDER BY "index"',
                  result["id"])
    assert len(chunks) >= 4 and all(c[1:] == ("done", 1, having) for c in chunks), chunks
    # ... A was offered chunks and said why it left them (once), counting no attempt
    refused = rows("SELECT message FROM events WHERE job_id = %s AND kind = 'encoder_refused'", result["id"])
    assert [m for (m,) in refused] == [f"{lacking}: libx265 is disabled on this worker (FARM_DISABLED_ENCODERS)"]
    # ... and the output joins: one HEVC stream, frame-exact
    out = Path(result["output"])
    assert media_checks.video_stream(out)["codec_name"] == "hevc"
    media_checks.assert_same_frame_times(media_checks.video_frame_times(src), media_checks.video_frame_times(out))


def test_a_job_no_worker_can_encode_fails_clearly_instead_of_looping(shared, tmp_path):
    cli, start, wait_ready, logs, rows = shared
    # Given two workers, neither of which can produce libx265
    hosts = [start("gpuA", "gpu", disabled="libx265"), start("gpuB", "gpu,cpu", disabled="libx265,h264_nvenc")]
    wait_ready(*hosts)
    src = clips.make_clip(tmp_path / "clip.mp4", seconds=1.0, gop=10)
    # When a job asks for HEVC
    proc = cli.run("submit", str(src), "--passthrough", "--codec", "libx265", "--wait", "--json",
                   "--chunk-seconds", "0.34", timeout_s=120)
    # Then it fails (exit 1), saying that no worker can encode it and why, with no attempt spent
    assert proc.returncode == 1, proc.stdout + proc.stderr + logs()
    result = json.loads(proc.stdout)
    assert result["state"] == "failed"
    assert "no worker can encode" in result["error"] and all(h in result["error"] for h in hosts), result
    assert "libx265 is disabled on this worker" in result["error"] and "--codec" in result["error"]
    attempts = rows("SELECT attempts FROM chunks WHERE job_id = %s", result["id"])
    assert attempts and all(a == 0 for (a,) in attempts), attempts
    assert not (tmp_path / "clip.farm.mp4").exists()
    # ... and `farm retry` with the same workers fails the same way again (the same
    # worker processes: refusals count again after a retry)
    cli.run("retry", result["id"], check=True)
    again = cli.wait_state(result["id"], {"failed", "done"}, timeout_s=60)
    assert again["state"] == "failed" and "no worker can encode" in again["error"], again


def test_a_worker_where_nvenc_opens_still_writes_the_jobs_software_encoder(tmp_path, monkeypatch):
    # Given a worker process whose probe says NVENC opens (the one thing mocked: no GPU here)
    hwaccel.forget_probes()
    monkeypatch.setattr(hwaccel, "open_probe", lambda name, pix_fmt: None)
    src = clips.make_clip(tmp_path / "clip.mp4", seconds=1.0, gop=10)
    info = probe(src)
    plan = plan_chunks(info, info.video.frame_count)[0]
    seg = split_chunks(src, info, [plan], tmp_path / "in")[0]
    # When it encodes a chunk of a job whose encoder was decided at submit (libx264)
    settings = choose_encoder(info.video)
    out = tmp_path / f"out{seg.suffix}"
    transcode_chunk(seg, out, plan, settings, lambda frame: frame)
    hwaccel.forget_probes()
    # Then the chunk is x264's, exactly as the job's record says, not the worker's own choice
    assert settings.codec == "libx264"
    assert media_checks.video_stream(out)["codec_name"] == "h264"
    assert b"x264 - core" in out.read_bytes()


def test_a_worker_that_cannot_read_a_newer_jobs_encoder_record_leaves_the_chunk_saying_so(inproc, tmp_path,
                                                                                          monkeypatch):
    """A job submitted by a newer farm (its encoder record has a field this worker does not
    know) is refused before the claim, like an encoder the worker lacks: no attempt spent,
    the chunk left to workers that can read it, and the reason names the upgrade; before,
    the error escaped the task and the reaper queued the chunk again for ever."""
    import farm.workers.encoder_check as encoder_check
    from farm.jobs.submit import SubmitRequest, submit
    from farm.state import store
    from farm.state.db import Job
    from farm.workers.chunk_runner import run_chunk

    settings, db, ctx = inproc
    requeued: list[int] = []
    monkeypatch.setattr(encoder_check, "enqueue_chunk", lambda app, job_id, index, *a, **k: requeued.append(index))
    src = clips.make_clip(tmp_path / "clip.mp4", seconds=0.5)
    job_id = submit(SubmitRequest(video=src), settings, db)   # no source: a pass-through job
    with db.transaction() as s:
        row = s.get(Job, job_id)
        row.encoder = {**row.encoder, "made_by_a_later_farm": 1}
    problem = ctx.encoder_problem(job_id)
    assert "cannot read the job's encoder record" in problem and "upgrade this worker" in problem
    assert run_chunk(ctx, job_id, 0, "cpu0@old").startswith("refused: ")
    job = store.get_job(db, job_id)
    assert job.chunks[0].attempts == 0 and job.chunks[0].state == "pending" and requeued == [0]
    assert any("upgrade this worker" in message for *_, message in store.events(db, job_id))
