"""`farm flower` for real: Flower on the embedded farm's private Redis, real Celery workers
started by `farm up`, one real passthrough job; Flower's pages and REST API refuse a
request without credentials and answer one with them, list the job's chunk tasks (job id
and chunk index in the task args), and still list them after a restart (persistent state)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests import clips
from tests.e2e.farmcli import FarmCLI

USER, PASSWORD = "ops", "flower-test-Secret-7"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FlowerProcess:
    """`farm flower --port N [extra ...]` as a subprocess, logging to a file."""

    def __init__(self, cli: FarmCLI, port: int, *extra: str) -> None:
        self.cli, self.port, self.log, self.extra = cli, port, cli.home / "flower.log", extra
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "farm", "flower", "--port", str(self.port), *self.extra],
                                         env=self.cli.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"flower exited {self.proc.returncode}:\n{self.log.read_text()}"
            try:
                if httpx.get(f"{self.url}/healthcheck", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"flower did not answer:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)   # clean shutdown: Flower saves its state
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def farm(farm_home: Path):
    cli = FarmCLI(farm_home, {"FARM_FLOWER_USER": USER, "FARM_FLOWER_PASSWORD": PASSWORD})
    flower = FlowerProcess(cli, free_port())
    yield cli, flower
    flower.stop()
    cli.down()


def chunk_tasks(flower: FlowerProcess, job_id: str) -> list[dict]:
    resp = httpx.get(f"{flower.url}/api/tasks", auth=(USER, PASSWORD), timeout=10)
    assert resp.status_code == 200, resp.text
    return [t for t in resp.json().values() if t["name"] == "farm.process_chunk" and job_id in (t["args"] or "")]


def wait_chunk_tasks(flower: FlowerProcess, job_id: str, count: int, timeout_s: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        tasks = [t for t in chunk_tasks(flower, job_id) if t["state"] == "SUCCESS"]
        if len(tasks) >= count or time.monotonic() > deadline:
            return tasks
        time.sleep(0.5)


def test_flower_needs_credentials_and_lists_the_chunk_tasks_of_a_job(farm, tmp_path):
    cli, flower = farm
    cli.run("up", check=True)
    flower.start()

    src = clips.make_clip(tmp_path / "clip.mp4", seconds=1.0, gop=15)
    proc = cli.run("submit", str(src), "--passthrough", "--wait", "--json", "--chunk-seconds", "0.5")
    assert proc.returncode == 0, proc.stderr + cli.logs()
    job = json.loads(proc.stdout)
    assert job["state"] == "done" and job["chunks"] == 2

    # Given Flower with basic auth: pages and API refuse anonymous and wrong credentials
    for path in ("/", "/workers", "/tasks", "/broker", "/api/tasks", "/api/workers", "/api/queues/length"):
        assert httpx.get(flower.url + path, timeout=10).status_code == 401, path
        assert httpx.get(flower.url + path, auth=(USER, "wrong"), timeout=10).status_code == 401, path
        assert httpx.get(flower.url + path, auth=(USER, PASSWORD), timeout=10).status_code == 200, path
    # ... and the Prometheus endpoint and health check answer without them (for scrapers)
    assert httpx.get(flower.url + "/healthcheck", timeout=10).status_code == 200
    metrics = httpx.get(flower.url + "/metrics", timeout=10)
    assert metrics.status_code == 200 and "flower_events_total" in metrics.text

    # Then both chunk tasks are listed, each with its job id and chunk index in the args
    tasks = wait_chunk_tasks(flower, job["id"], 2)
    assert sorted(t["args"] for t in tasks) == [f"['{job['id']}', 0]", f"['{job['id']}', 1]"], tasks
    page = httpx.get(f"{flower.url}/task/{tasks[0]['uuid']}", auth=(USER, PASSWORD), timeout=10)
    assert page.status_code == 200 and job["id"] in page.text

    # The password is in no process argument list and in no log
    for p in psutil.process_iter(["cmdline"]):
        assert PASSWORD not in " ".join(p.info["cmdline"] or []), p.info["cmdline"]
    flower_pid = flower.proc.pid
    assert "farm.monitor.flower" in " ".join(psutil.Process(flower_pid).cmdline())   # exec'd: the same pid

    # A worker health check (as the compose file runs it) sees this host's chunk worker
    health = cli.run("health", "--workers", "--timeout", "2")
    assert health.returncode == 0, health.stderr

    # When Flower restarts, the tasks it saw are still there (persistent state)
    flower.stop()
    assert list((cli.home / "flower").glob("flower-state*"))
    flower.start()
    again = chunk_tasks(flower, job["id"])
    assert sorted(t["args"] for t in again) == sorted(t["args"] for t in tasks)
    flower.stop()
    logs = flower.log.read_text() + cli.logs()
    assert PASSWORD not in logs


def test_flower_refuses_to_start_without_credentials(farm_home: Path):
    cli = FarmCLI(farm_home)
    for var in ("FARM_FLOWER_USER", "FARM_FLOWER_PASSWORD", "FLOWER_BASIC_AUTH"):
        cli.env.pop(var, None)
    proc = cli.run("flower", "--port", str(free_port()), timeout_s=60)
    assert proc.returncode == 2
    assert "FARM_FLOWER_USER" in proc.stderr and "--insecure" in proc.stderr
    assert not (farm_home / "run" / "redis.pid").exists(), "nothing is started when refusing"


def test_flower_insecure_starts_without_credentials(farm_home: Path):
    """`--insecure` is the way to run Flower with no credentials: it starts and answers anyone."""
    cli = FarmCLI(farm_home)
    for var in ("FARM_FLOWER_USER", "FARM_FLOWER_PASSWORD", "FLOWER_BASIC_AUTH"):
        cli.env.pop(var, None)
    flower = FlowerProcess(cli, free_port(), "--insecure")
    try:
        flower.start()
        for path in ("/", "/workers", "/tasks", "/api/workers", "/api/tasks"):
            assert httpx.get(flower.url + path, timeout=10).status_code == 200, path
    finally:
        flower.stop()
        cli.down()
    assert "no authentication" in flower.log.read_text()
