"""Jobs sharing the farm, on real Celery worker processes and a private Redis: a job
submitted with a higher --priority runs first, and a short job submitted after a long one
finishes long before it (each job has at most FARM_JOB_WINDOW chunks in the broker, so
the long job cannot fill the queue ahead of it).

The three jobs are submitted while no worker runs (the worst case: a backlog), then one
chunk worker starts, so the order in which chunks run is the broker's order."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from farm.broker.embedded import start_redis
from farm.config import load_settings
from farm.jobs.submit import SubmitRequest, submit
from farm.state import store
from farm.state.db import Database, upgrade_schema
from tests import clips
from tests.e2e.farmcli import FarmCLI

WINDOW = 2


@pytest.fixture
def cli(farm_home: Path):
    farm = FarmCLI(farm_home, {"FARM_JOB_WINDOW": str(WINDOW), "FARM_LOCAL_WORKERS": "1",
                               "FARM_REAP_INTERVAL_S": "600"})
    yield farm
    farm.down()


def wait_done(db: Database, ids: list[str], cli: FarmCLI, timeout_s: float = 120) -> dict[str, store.JobView]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        jobs = {j: store.get_job(db, j) for j in ids}
        if all(v.state in ("done", "failed", "cancelled") for v in jobs.values()):
            return jobs
        time.sleep(0.3)
    raise AssertionError(f"jobs did not finish: {[(j, v.state) for j, v in jobs.items()]}\n{cli.logs()}")


def test_priority_runs_first_and_a_long_job_does_not_starve_a_short_one(cli, tmp_path):
    settings = load_settings(cli.env)
    assert settings.job_window == WINDOW
    start_redis(settings)
    db = Database(settings.database)
    upgrade_schema(db)

    def job(name: str, seconds: float, priority: int) -> str:
        src = clips.make_clip(tmp_path / f"{name}.mp4", width=160, height=90, seconds=seconds, gop=15)
        return submit(SubmitRequest(video=src, chunk_seconds=0.5, priority=priority), settings, db)

    long_id = job("long", 4.0, 5)      # 8 chunks, submitted first
    short_id = job("short", 1.0, 5)    # 2 chunks, same priority, submitted after it
    urgent_id = job("urgent", 1.0, 9)  # 2 chunks, --priority 9, submitted last
    assert [store.get_job(db, j).chunk_count for j in (long_id, short_id, urgent_id)] == [8, 2, 2]

    assert cli.run("up").returncode == 0   # one chunk worker (and the finalize worker)
    jobs = wait_done(db, [long_id, short_id, urgent_id], cli)
    assert {j.state for j in jobs.values()} == {"done"}, {j: v.error for j, v in jobs.items()}

    runs = sorted((c.started_at, job_id, c.index) for job_id, v in jobs.items() for c in v.chunks)
    order = [job_id for _, job_id, _ in runs]
    # the priority-9 job ran first, though it was submitted last
    assert order[:2] == [urgent_id, urgent_id], order
    # the short job ran after at most WINDOW chunks of the long one
    first_short = order.index(short_id)
    assert order[2:first_short] == [long_id] * (first_short - 2) and first_short - 2 <= WINDOW, order
    # and it finished while most of the long job was still to run
    short_end = max(c.finished_at for c in jobs[short_id].chunks)
    assert sum(c.started_at > short_end for c in jobs[long_id].chunks) >= 8 - 2 * WINDOW
    assert jobs[urgent_id].finished_at < jobs[short_id].finished_at < jobs[long_id].finished_at
    db.dispose()
