"""`farm status` as a person reads it, through the real CLI (a subprocess whose stdout is a
pipe, not a terminal) on a real SQLite job database: why a job failed, which workers are
offline, a local farm that is not running, tables that fit 80 columns, and
`--follow` printing plain lines when its output is not a terminal.

No farm runs here: jobs, chunks and workers are written with the store's own functions,
as workers would write them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from farm.state import chunks, registry, store
from farm.state.db import Database, WorkerRow, upgrade_schema, utcnow
from tests import job_rows
from tests.e2e.farmcli import sigint_as_from_a_terminal

LONG_DIR = "/srv/render/projects/2026/a-long-client-name/episode-042/plates"


@pytest.fixture
def db(settings):
    database = Database(settings.database)
    upgrade_schema(database)
    yield database
    database.dispose()


def farm(settings, *args: str, columns: int = 80, timeout_s: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, FARM_HOME=str(settings.home), COLUMNS=str(columns))
    env.pop("FARM_BROKER_URL", None)
    return subprocess.run([sys.executable, "-m", "farm", *args], env=env, capture_output=True, text=True,
                          timeout=timeout_s)


def make_job(db, job_id: str, frames: list[int], name: str = "clip") -> None:
    job_rows.make_job(db, job_id, frames, input_path=f"{LONG_DIR}/{name}.mp4", output_path=f"{LONG_DIR}/{name}.farm.mp4")


def run_chunk(db, job_id: str, index: int, worker: str) -> None:
    chunks.claim_chunk(db, job_id, index, worker, 3, stale_after_s=120)
    chunks.finish_chunk(db, job_id, index, worker)


def test_status_of_a_job_whose_finalize_failed_says_why(db, settings):
    # Given a job whose chunks are all done and whose finalize failed
    make_job(db, "fin0failed01", [30, 30])
    run_chunk(db, "fin0failed01", 0, "cpu0@n")
    run_chunk(db, "fin0failed01", 1, "cpu0@n")
    store.fail_job(db, "fin0failed01", "finalize failed: output .x.tmp differs from source.mp4: color_range tv")
    # When a person asks for its status
    proc = farm(settings, "status", "fin0failed01")
    # Then the view says the job failed, why, and what to do
    text = " ".join(proc.stdout.split())
    assert "failed" in text and "error: finalize failed: output .x.tmp differs from source.mp4: color_range tv" in text
    assert "farm retry fin0failed01" in text


def test_status_of_a_job_whose_chunk_failed_names_the_chunk_and_its_error(db, settings):
    make_job(db, "chunkfailed1", [30, 30])
    run_chunk(db, "chunkfailed1", 0, "cpu0@n")
    for _ in range(3):
        chunks.claim_chunk(db, "chunkfailed1", 1, "gpu1@n", 3, stale_after_s=120)
        chunks.fail_chunk(db, "chunkfailed1", 1, "RuntimeError: CUDA error: an illegal memory access", retryable=True,
                          max_attempts=3)
    text = " ".join(farm(settings, "status", "chunkfailed1").stdout.split())
    assert "chunk 1 failed after 3 attempt(s): RuntimeError: CUDA error: an illegal memory access" in text
    assert "farm retry chunkfailed1" in text


def test_workers_whose_heartbeat_stopped_are_offline_and_a_stopped_local_farm_says_so(db, settings):
    # Given three workers: one heard from now, one silent for 10 minutes, one stopped cleanly
    registry.touch_workers(db, ["cpu0@fresh"])
    registry.touch_workers(db, ["cpu0@gone", "cpu0@stopped"])
    with db.transaction() as s:
        s.get(WorkerRow, "cpu0@gone").last_seen = utcnow() - dt.timedelta(minutes=10)
    registry.report_stopped(db, ["cpu0@stopped"])
    # When `farm status` runs while the local farm is not running
    proc = farm(settings, "status")
    lines = proc.stdout.splitlines()
    # Then the silent and stopped workers are offline (with how long ago), the live one idle,
    fresh = next(line for line in lines if "cpu0@fresh" in line)
    gone = next(line for line in lines if "cpu0@gone" in line)
    stopped = next(line for line in lines if "cpu0@stopped" in line)
    assert "idle" in fresh and "offline" not in fresh
    assert "offline" in gone and "10 min ago" in gone
    assert "offline" in stopped and "s ago" in stopped
    # and it says that the local farm is not running, exiting 4 (the farm is unavailable)
    assert "the local farm is not running" in proc.stdout and "farm up" in proc.stdout
    assert proc.returncode == 4, proc.stderr


def test_status_json_without_an_id_is_one_object_of_the_recent_jobs_and_the_workers(db, settings):
    # Given a job with a chunk done and two workers, one of them offline
    make_job(db, "jsonstatus01", [30, 30])
    run_chunk(db, "jsonstatus01", 0, "cpu0@fresh")
    registry.touch_workers(db, ["cpu0@fresh", "cpu0@gone"])
    with db.transaction() as s:
        s.get(WorkerRow, "cpu0@gone").last_seen = utcnow() - dt.timedelta(minutes=10)
    # When `farm status --json` runs with no job id (the local farm is not running)
    proc = farm(settings, "status", "--json")
    # Then stdout is one JSON object, the same jobs as `farm jobs --json`, and the workers
    shown = json.loads(proc.stdout)
    listed = json.loads(farm(settings, "jobs", "--json").stdout)
    assert [j["id"] for j in shown["jobs"]] == [j["id"] for j in listed] == ["jsonstatus01"]
    assert shown["jobs"][0]["frames_done"] == listed[0]["frames_done"] == 30
    by_name = {w["worker"]: w for w in shown["workers"]}
    assert by_name["cpu0@fresh"]["state"] == "idle" and by_name["cpu0@gone"]["state"] == "offline"
    assert by_name["cpu0@gone"]["last_seen"].endswith("Z")
    # and the notice that the farm is not running goes to stderr, exiting 4
    assert "the local farm is not running" in proc.stderr and proc.returncode == 4


def test_status_tables_fit_80_columns_without_cutting_anything(db, settings):
    # Given jobs with long paths and a long error, and workers with long provider lists
    make_job(db, "aaaaaaaaaaa1", [300, 300, 300], name="a-rather-long-shot-name_v003")
    run_chunk(db, "aaaaaaaaaaa1", 0, "gpu0@render-node-17")
    make_job(db, "bbbbbbbbbbb2", [30], name="short")
    chunks.claim_chunk(db, "bbbbbbbbbbb2", 0, "gpu1@render-node-17", 3, stale_after_s=120)
    chunks.fail_chunk(db, "bbbbbbbbbbb2", 0, "chunk input /srv/render/jobs/bbbbbbbbbbb2/chunks/in/00000.mp4 is missing "
                      "on this node's storage", retryable=False, max_attempts=3)
    registry.report_start(db, "gpu0@render-node-17", 1, "0", "TensorrtExecutionProvider,CUDAExecutionProvider,"
                          "CPUExecutionProvider")
    registry.report_busy(db, "gpu0@render-node-17", "aaaaaaaaaaa1", 1)
    registry.report_start(db, "gpu1@render-node-17", 2, "1", "CUDAExecutionProvider,CPUExecutionProvider")
    created = f"{store.get_job(db, 'aaaaaaaaaaa1').created_at:%m-%d %H:%M}"
    # When each status view is printed to an 80-column pipe
    overview = farm(settings, "status").stdout
    one_job = farm(settings, "status", "bbbbbbbbbbb2").stdout
    jobs = farm(settings, "jobs").stdout
    for text in (overview, one_job, jobs):
        # Then no line is wider than 80 and nothing is cut short with an ellipsis
        assert max(len(line) for line in text.splitlines()) <= 80, text
        assert "…" not in text and "..." not in text, text
    # and what matters is whole: job ids, created times, worker names, headers, states
    assert "aaaaaaaaaaa1" in overview and "bbbbbbbbbbb2" in overview and created in overview
    assert "gpu0@render-node-17" in overview and "last seen" in overview and "busy" in overview
    assert "failed" in one_job and "missing on this node's storage" in " ".join(one_job.split())
    # and folded text is all there: the error, read across its lines
    assert "chunks/in/00000.mp4" in re.sub(r"[\s│┃]+", "", one_job)


def test_follow_prints_plain_progress_lines_when_stdout_is_not_a_terminal(db, settings):
    """`farm status --follow` into a pipe (a log, CI): a line per change, no redraw codes,
    and Ctrl-C still ends it with 0."""
    make_job(db, "followplain1", [100, 100])
    chunks.claim_chunk(db, "followplain1", 0, "gpu0@n", 3, stale_after_s=120)
    chunks.heartbeat(db, "followplain1", 0, 10)
    env = dict(os.environ, FARM_HOME=str(settings.home), COLUMNS="80")
    env.pop("FORCE_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "farm", "status", "--follow", "--interval", "0.2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_from_a_terminal)
    try:
        deadline = time.monotonic() + 60
        first = ""                           # lines arrive while it runs, not at exit
        while "followplain1" not in first:   # the job's 10/200 line, after any notice line
            line = proc.stdout.readline()
            assert time.monotonic() < deadline and line, (first, proc.stderr)
            first += line
        chunks.heartbeat(db, "followplain1", 0, 77)
        time.sleep(2.0)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    out = first + out
    assert proc.returncode == 0, err
    assert "\x1b[" not in out
    assert re.search(r"job followplain1: running, 10/200 frames", out), out
    assert re.search(r"job followplain1: running, 77/200 frames", out), out
    assert "the local farm is not running" in out
    # one line per change: the 10/200 line is not repeated at every refresh
    assert len(re.findall(r"10/200 frames", out)) == 1, out
