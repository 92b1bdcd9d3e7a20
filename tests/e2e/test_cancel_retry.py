"""Cancel mid-job (nothing published), then retry: only unfinished chunks run again."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path


from tests import clips, media_checks
from tests.e2e.farmcli import hold_workers


def chunk_rows(home: Path, job_id: str) -> list[tuple[int, str, int]]:
    with sqlite3.connect(home / "farm.db") as conn:
        return conn.execute("SELECT \"index\", state, attempts FROM chunks WHERE job_id=? ORDER BY \"index\"",
                            (job_id,)).fetchall()


def test_cancel_mid_job_publishes_nothing_and_retry_finishes_only_what_is_left(cli, tmp_path):
    src = clips.make_clip(tmp_path / "long.mp4", width=960, height=540, seconds=6.0, audio_tracks=1, gop=15)
    out = tmp_path / "long.farm.mp4"
    job_id = cli.run("submit", str(src), "--passthrough", "--chunk-seconds", "0.5", check=True).stdout.strip()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = [s for _, s, _ in chunk_rows(cli.home, job_id)]
        if states.count("done") >= 2:
            break
        time.sleep(0.1)
    # Hold the workers while `farm cancel` starts (a second or more on a loaded machine), or
    # they finish every 0.5 s chunk first and nothing is left to cancel; they go on after it.
    held = hold_workers(cli)
    try:
        assert cli.run("cancel", job_id).returncode == 0
    finally:
        for proc in held:
            proc.resume()
    job = cli.wait_state(job_id, {"cancelled"})
    assert job["error"] is None
    time.sleep(3)  # a running chunk notices within about a second and stops between frames
    rows = chunk_rows(cli.home, job_id)
    assert "running" not in {s for _, s, _ in rows}
    done_before = {i for i, s, _ in rows if s == "done"}
    assert 2 <= len(done_before) < len(rows)
    assert not out.exists()
    assert cli.run("status", job_id, check=True).returncode == 0

    assert cli.run("retry", job_id).returncode == 0
    job = cli.wait_state(job_id, {"done", "failed"})
    assert job["state"] == "done", job
    rows = chunk_rows(cli.home, job_id)
    assert all(s == "done" for _, s, _ in rows)
    assert all(a == 1 for i, _, a in rows if i in done_before), "finished chunks were run again"
    assert media_checks.frame_count(out) == media_checks.frame_count(src)
    media_checks.assert_same_frame_times(media_checks.video_frame_times(src), media_checks.video_frame_times(out))


def test_submit_wait_exits_3_when_the_job_is_cancelled(cli, tmp_path):
    import subprocess
    import sys

    src = clips.make_clip(tmp_path / "long.mp4", width=960, height=540, seconds=6.0, gop=15)
    proc = subprocess.Popen([sys.executable, "-m", "farm", "submit", str(src), "--passthrough", "--wait", "--json",
                             "--chunk-seconds", "0.5"], env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    job_id = None
    while time.monotonic() < deadline and job_id is None:
        newest = cli.newest_job()
        job_id = newest["id"] if newest else None
        time.sleep(0.2)
    assert cli.run("cancel", job_id).returncode == 0
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 3, stderr
    assert json.loads(stdout)["state"] == "cancelled"


def test_submit_wait_exits_1_when_the_job_fails_and_never_clobbers(cli, tmp_path):
    """An output file that appears while the job runs is not overwritten: the job fails (exit 1)."""
    import subprocess
    import sys

    src = clips.make_clip(tmp_path / "long.mp4", width=960, height=540, seconds=6.0, gop=15)
    out = tmp_path / "long.farm.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "farm", "submit", str(src), "--passthrough", "--wait", "--json",
                             "--chunk-seconds", "0.5"], env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not cli.newest_job():
        time.sleep(0.2)
    out.write_bytes(b"someone else's file")
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 1, stderr
    result = json.loads(stdout)
    assert result["state"] == "failed" and "appeared while the job ran" in result["error"]
    assert out.read_bytes() == b"someone else's file"
    assert not list(tmp_path.glob(".long.farm.mp4.*"))
