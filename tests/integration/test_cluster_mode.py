"""The same commands pointed at a cluster: FARM_BROKER_URL (the machine's Redis on loopback),
FARM_DATABASE_URL (PostgreSQL), FARM_STORAGE (a shared folder); workers started by the test
with `farm worker --gpus 0,1 --providers cpu` (two pinned children; the GPU itself is the one
thing that cannot run here, so the children use the CPU provider)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import redis

from tests import clips, media_checks
from tests.redis_dbs import shared_redis_db
from tests.e2e.farmcli import FarmCLI

REDIS_URL = os.environ.get("FARM_TEST_REDIS", "redis://127.0.0.1:6379")


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, farm_home: Path):
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            pytest.fail(f"no Redis at {REDIS_URL} (CI must have it)")
        pytest.skip(f"no Redis at {REDIS_URL}")
    db_index = shared_redis_db(7)
    broker = f"{REDIS_URL}/{db_index}"
    redis.Redis.from_url(broker).flushdb()
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    env = {"FARM_BROKER_URL": broker, "FARM_DATABASE_URL": pg_url, "FARM_STORAGE": str(tmp_path / "nfs")}
    cli = FarmCLI(farm_home, env)
    cli.run("db", "upgrade", check=True)
    worker = subprocess.Popen([sys.executable, "-m", "farm", "worker", "--gpus", "0,1", "--providers", "cpu"],
                              env=cli.env, stdout=open(farm_home / "worker.log", "wb"), stderr=subprocess.STDOUT)
    yield cli, worker
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(60)
    except subprocess.TimeoutExpired:
        worker.kill()
    redis.Redis.from_url(broker).flushdb()


def children_env(pid: int) -> dict[str, dict[str, str]]:
    """hostname -> environment of each Celery worker child of the supervisor."""
    found = {}
    for child in psutil.Process(pid).children(recursive=False):
        cmd = child.cmdline()
        if "farm.workers.celery_worker" in cmd:
            env = child.environ()
            found[cmd[cmd.index("--hostname") + 1]] = env
    return found


def test_cluster_job_runs_on_pinned_workers_and_postgres(cluster, tmp_path):
    cli, worker = cluster
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(children_env(worker.pid)) < 3:
        time.sleep(0.2)
    envs = children_env(worker.pid)
    gpu_children = {h: e for h, e in envs.items() if h.startswith("gpu")}
    assert sorted(h.split("@")[0] for h in gpu_children) == ["gpu0", "gpu1"]
    for host, env in gpu_children.items():
        assert env["CUDA_VISIBLE_DEVICES"] == host[3] and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert any(h.startswith("fin@") for h in envs)

    src = clips.make_clip(tmp_path / "clip.mp4", seconds=2.0, audio_tracks=1, gop=10)
    proc = cli.run("submit", str(src), "--passthrough", "--wait", "--json", "--chunk-seconds", "0.34")
    assert proc.returncode == 0, proc.stderr + (cli.home / "worker.log").read_text()[-4000:]
    result = json.loads(proc.stdout)
    assert result["state"] == "done"
    assert media_checks.frame_count(Path(result["output"])) == 60
    assert (tmp_path / "nfs" / "jobs" / result["id"]).is_dir()   # the shared storage was used
    status = cli.run("status", result["id"], check=True).stdout
    workers_used = {w for w in ("gpu0@", "gpu1@") if w in status}
    assert workers_used == {"gpu0@", "gpu1@"}, f"chunks were not spread over both workers:\n{status}"
