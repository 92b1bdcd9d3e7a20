"""farm.cli.follow: one snapshot of the live view, rendered to a recording Console."""

from __future__ import annotations

import datetime as dt

from rich.console import Console

from farm.cli.follow import RateMeter, follow, format_eta
from farm.state import chunks, registry, store
from farm.state.db import Chunk, utcnow
from tests.e2e.farmcli import sigint_as_from_a_terminal
from tests.job_rows import make_job


def test_one_snapshot_shows_jobs_with_frames_fps_eta_and_workers_with_their_chunk(db, settings):
    # Given job j1 (2 chunks of 100 frames: chunk 0 done, chunk 1 at 50) started 10 s ago,
    # a finished job, and two workers: gpu0 busy on j1/1 with CUDA, gpu1 idle
    make_job(db, "j1", [100, 100])
    make_job(db, "old", [10])
    chunks.claim_chunk(db, "j1", 0, "gpu1@n", 3, stale_after_s=120)
    chunks.finish_chunk(db, "j1", 0, "gpu1@n")
    chunks.claim_chunk(db, "j1", 1, "gpu0@n", 3, stale_after_s=120)
    chunks.heartbeat(db, "j1", 1, 50)
    with db.transaction() as s:
        for c in s.query(Chunk).filter_by(job_id="j1"):
            c.started_at = utcnow() - dt.timedelta(seconds=10)
    store.request_cancel(db, "old")
    registry.report_start(db, "gpu0@n", 1, "0", "CUDAExecutionProvider,CPUExecutionProvider")
    registry.report_busy(db, "gpu0@n", "j1", 1)
    registry.report_start(db, "gpu1@n", 2, "1", "TensorrtExecutionProvider")
    registry.report_result(db, "gpu1@n", ok=True, frames=100, fps=33.3)

    # When one snapshot is rendered
    console = Console(record=True, width=220, color_system=None)
    assert follow(settings, db, console, once=True) == 0
    text = console.export_text()

    # Then the running job shows frames, fps (150 frames in ~10 s) and ETA (50 frames left)
    job_line = next(line for line in text.splitlines() if "j1 " in line and "running" in line)
    assert "150/200" in job_line and "1/2 (1 running)" in job_line and "/videos/j1.mp4" in job_line
    cells = [c.strip() for c in job_line.split("│")[1:-1]]
    assert cells[:2] == ["j1", "running"]
    assert 13.0 < float(cells[5]) <= 15.5
    assert cells[6] in ("0:03", "0:04")
    assert "old" not in text                       # finished jobs are not shown
    # and each worker its GPU, state, current chunk with its frames, providers, fps
    w0 = next(line for line in text.splitlines() if "gpu0@n" in line)
    assert " 0 " in w0 and "busy" in w0 and "j1/1" in w0 and "50/100" in w0 and "CUDA, CPU" in w0
    w1 = next(line for line in text.splitlines() if "gpu1@n" in line)
    assert "idle" in w1 and "Tensorrt" in w1 and "33.3" in w1


def test_empty_farm_says_so(db, settings):
    console = Console(record=True, width=160, color_system=None)
    follow(settings, db, console, once=True)
    text = console.export_text()
    assert "no unfinished jobs" in text and "no worker has reported yet" in text


def test_rate_meter_uses_the_window():
    now = [0.0]
    meter = RateMeter(window_s=10, clock=lambda: now[0])
    meter.add("j", 0)
    assert meter.rate("j") is None
    for t, frames in ((5, 50), (10, 100), (20, 400)):
        now[0] = t
        meter.add("j", frames)
    assert meter.rate("j") == 30.0                 # (400-100)/(20-10): older samples dropped
    meter.forget_except(set())
    assert meter.rate("j") is None


def test_format_eta():
    assert format_eta(None) == "-" and format_eta(65) == "1:05" and format_eta(3725) == "1:02:05"


def test_the_follow_command_redraws_as_chunks_progress_and_stops_on_ctrl_c(settings):
    """`farm status --follow` as a real process on a terminal-like stream: it shows progress
    made while it runs, and Ctrl-C (SIGINT) ends it with exit code 0."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from farm.state.db import Database, upgrade_schema

    db = Database(settings.database)
    upgrade_schema(db)
    make_job(db, "live1", [100, 100])
    chunks.claim_chunk(db, "live1", 0, "gpu0@n", 3, stale_after_s=120)
    chunks.heartbeat(db, "live1", 0, 10)
    env = dict(os.environ, FARM_HOME=str(settings.home), FORCE_COLOR="1", COLUMNS="200", LINES="40")
    proc = subprocess.Popen([sys.executable, "-m", "farm", "status", "--follow", "--interval", "0.2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_from_a_terminal)
    try:
        time.sleep(3.0)
        chunks.heartbeat(db, "live1", 0, 77)       # progress while it is watching
        time.sleep(2.0)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "10/200" in out and "77/200" in out, out[-2000:]
    assert "\x1b[" in out                          # redrawn in place (cursor control), not a log
