"""The broker goes away mid-job. The local farm's own Redis, SIGKILLed, is started again by
the farm's supervisor and the job finishes frame-exact (the database re-enqueues what the
broker lost); a broker that stays down (the whole local farm killed, or a cluster's Redis)
makes `farm submit --wait` exit 4 within FARM_BROKER_DOWN_S (plus the time to notice),
naming the broker, with the job kept. Real Redis, real Celery workers, SQLite, real video."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from farm.errors import EXIT_UNAVAILABLE
from tests import clips
from tests.e2e.farmcli import FARM, FarmCLI
from tests.faults.farmfaults import busy_worker, first_job, query
from tests.faults.test_faults import FAST_FAULTS, assert_exact, long_clip

DOWN_S = 3
NOTICE_MARGIN_S = 20.0   # process start, one ping period, a slow shared machine


@pytest.fixture
def cli(farm_home: Path):
    farm = FarmCLI(farm_home, dict(FAST_FAULTS, FARM_BROKER_DOWN_S=str(DOWN_S)))
    yield farm
    farm.down()


def wait_submit(cli: FarmCLI, src: Path, *extra: str) -> subprocess.Popen:
    """`farm submit --wait --json` of a pass-through job with slow 1 s chunks, in the background."""
    return subprocess.Popen([*FARM, "submit", str(src), "--passthrough", "--chunk-seconds", "1", "--preset",
                             "slower", "--wait", "--json", *extra], env=cli.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture
def waits():
    """The background `--wait` processes of a test, killed at its end if still waiting."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def redis_pid(home: Path) -> int:
    return int((home / "run" / "redis.pid").read_text())


def test_the_embedded_redis_killed_mid_job_is_restarted_and_the_job_finishes(cli, tmp_path, waits):
    src = long_clip(tmp_path)
    waiting = wait_submit(cli, src)
    waits.append(waiting)
    job_id = first_job(cli)
    busy_worker(cli.home, job_id, min_frames=1)
    killed = redis_pid(cli.home)
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:   # no `farm up`: the farm itself brings it back
        try:
            if redis_pid(cli.home) != killed and (cli.home / "run" / "redis.sock").exists():
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    else:
        raise AssertionError(f"the embedded Redis was not started again\n{cli.logs()}")
    out, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err + cli.logs()
    assert json.loads(out)["state"] == "done"
    assert_exact(src, tmp_path / "long.farm.mp4")
    assert "started it again" in cli.logs()


def test_wait_exits_4_when_the_whole_local_farm_is_killed(cli, tmp_path, waits):
    src = long_clip(tmp_path)
    waiting = wait_submit(cli, src)
    waits.append(waiting)
    job_id = first_job(cli)
    busy_worker(cli.home, job_id, min_frames=1)
    supervisor = int((cli.home / "run" / "workers.pid").read_text())
    os.killpg(supervisor, signal.SIGKILL)          # the supervisor and its workers: nobody restarts Redis
    os.kill(redis_pid(cli.home), signal.SIGKILL)
    killed_at = time.monotonic()
    out, err = waiting.communicate(timeout=120)
    took = time.monotonic() - killed_at
    assert waiting.returncode == EXIT_UNAVAILABLE, out + err
    assert took < DOWN_S + NOTICE_MARGIN_S, took
    assert f"has not answered for {DOWN_S} s" in err and "farm up" in err, err
    assert "Traceback" not in err, err
    assert query(cli.home, "SELECT state FROM jobs WHERE id=?", job_id)[0][0] in ("queued", "running")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster_redis(tmp_path: Path):
    """A Redis of 'the cluster' on a loopback port, that the test can kill."""
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield proc, f"redis://127.0.0.1:{port}/0"
    proc.kill()
    proc.wait(10)


def test_wait_exits_4_when_a_cluster_broker_dies(farm_home, tmp_path, cluster_redis, waits):
    proc, url = cluster_redis
    cli = FarmCLI(farm_home, {"FARM_BROKER_URL": url, "FARM_BROKER_DOWN_S": str(DOWN_S)})
    src = clips.make_clip(tmp_path / "c.mp4", width=160, height=90, seconds=1.0)
    waiting = wait_submit(cli, src)   # no workers on this "cluster": the job stays queued
    waits.append(waiting)
    first_job(cli)
    proc.kill()
    proc.wait(10)
    killed_at = time.monotonic()
    out, err = waiting.communicate(timeout=120)
    took = time.monotonic() - killed_at
    assert waiting.returncode == EXIT_UNAVAILABLE, out + err
    assert took < DOWN_S + NOTICE_MARGIN_S, took
    assert url.split("//")[1].split("/")[0] in err and "FARM_BROKER_URL" in err, err


def test_submit_to_a_dead_cluster_port_is_refused_with_exit_4(farm_home, tmp_path):
    cli = FarmCLI(farm_home, {"FARM_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"})
    src = clips.make_clip(tmp_path / "c.mp4", width=160, height=90, seconds=0.5)
    proc = cli.run("submit", str(src), "--passthrough", "--wait", timeout_s=60)
    assert proc.returncode == EXIT_UNAVAILABLE, proc.stderr
    assert "does not answer" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
