"""Faults that used to leave a job hanging or unrecoverable, on the real local farm (private
Redis, real Celery worker processes, SQLite, real video): a finalizer killed mid-join, storage
that runs full, a chunk output lost after it was done, and a submit killed mid-split."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from farm.media.ffmpeg import ffmpeg_exe
from tests import clips
from tests.e2e.farmcli import FarmCLI
from tests.faults.farmfaults import chunks, events, query
from tests.faults.test_faults import FAST_FAULTS, assert_exact, long_clip, submit

STALE_S = float(FAST_FAULTS["FARM_STALE_HEARTBEAT_S"])


@pytest.fixture
def cli(farm_home: Path):
    farm = FarmCLI(farm_home, dict(FAST_FAULTS))
    yield farm
    farm.down()


def slow_ffmpeg(tmp_path: Path) -> tuple[Path, Path]:
    """A real ffmpeg behind a wrapper that logs '<parent pid> <own pid>' and waits 1 s first,
    so that a test can catch the finalizer inside its join (the remux step runs ffmpeg). An
    output named *.tmp (the finalizer's) is begun first, as ffmpeg would have begun it."""
    calls = tmp_path / "ffmpeg-calls"
    wrapper = tmp_path / "ffmpeg"
    wrapper.write_text(f'#!/bin/sh\necho "$PPID $$" >> "{calls}"\nfor last; do :; done\n'
                       'case "$last" in *.tmp) printf half-written > "${last#file:}";; esac\n'
                       f'sleep 1\nexec "{ffmpeg_exe()}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper, calls


def finalizer_in_ffmpeg(home: Path, calls: Path, timeout_s: float = 120) -> tuple[int, int]:
    """Wait until the finalize worker's pool process runs ffmpeg; return (pool pid, ffmpeg pid)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pids = {row[0] for row in query(home, "SELECT pid FROM workers WHERE hostname LIKE 'fin@%'")}
        lines = calls.read_text().split() if calls.exists() else []
        for parent, child in zip(lines[::2], lines[1::2]):
            if int(parent) in pids:
                return int(parent), int(child)
        time.sleep(0.05)
    raise AssertionError(f"the finalizer never ran ffmpeg: {calls.read_text() if calls.exists() else ''}")


def test_a_finalizer_killed_mid_join_loses_its_claim_and_the_job_finishes(farm_home, tmp_path):
    wrapper, calls = slow_ffmpeg(tmp_path)
    cli = FarmCLI(farm_home, dict(FAST_FAULTS, FARM_FFMPEG=str(wrapper)))
    try:
        src = long_clip(tmp_path, seconds=3.0)
        job_id = submit(cli, src)
        pool_pid, ffmpeg_pid = finalizer_in_ffmpeg(cli.home, calls)
        os.kill(pool_pid, signal.SIGKILL)
        killed_at = time.monotonic()
        try:
            os.kill(ffmpeg_pid, signal.SIGKILL)   # its orphaned ffmpeg would only write a stray temp file
        except ProcessLookupError:
            pass
        job = cli.wait_state(job_id, {"done", "failed"}, timeout_s=120)
        took_s = time.monotonic() - killed_at
        assert job["state"] == "done", job
        # the dead owner's claim lapses after the stale time; the reaper re-enqueues, the
        # finalize runs again (1 s in the wrapper, the join, polling): about twice the stale time
        assert took_s < 2 * STALE_S + 8, f"took {took_s:.1f} s after the kill"
        assert events(cli.home, job_id, "finalize_claimed") >= 2
        assert_exact(src, tmp_path / "long.farm.mp4")
        # and the dead finalizer's half-written output (a hidden temporary beside the output) is gone
        assert not list(tmp_path.glob(".long.farm.mp4*")), list(tmp_path.iterdir())
    finally:
        cli.down()


def wait_chunk_done(home: Path, job_id: str, index: int, timeout_s: float = 120) -> str:
    """Wait until chunk `index` is done while the job still runs; return its output path."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = query(home, 'SELECT c.state, c.output_path, j.state FROM chunks c JOIN jobs j ON j.id = c.job_id '
                           'WHERE c.job_id=? AND c."index"=?', job_id, index)
        if rows and rows[0][0] == "done":
            assert rows[0][2] == "running", f"the job went on to {rows[0][2]} before the test could act"
            return rows[0][1]
        time.sleep(0.05)
    raise AssertionError(f"chunk {index} of {job_id} never finished: {chunks(home, job_id)}")


def test_a_chunk_output_lost_before_finalize_is_rendered_again(cli, tmp_path):
    src = long_clip(tmp_path)
    job_id = submit(cli, src, catch_running=True)
    first = min(i for i, *_ in chunks(cli.home, job_id))
    Path(wait_chunk_done(cli.home, job_id, first)).unlink()
    job = cli.wait_state(job_id, {"done", "failed"})
    assert job["state"] == "done", job
    attempts = {i: a for i, _, a, _, _ in chunks(cli.home, job_id)}
    assert attempts[first] == 2, attempts
    assert events(cli.home, job_id, "chunk_lost") == 1
    assert_exact(src, tmp_path / "long.farm.mp4")


def test_a_lost_chunk_output_past_its_attempts_fails_the_job_and_retry_renders_it(cli, tmp_path):
    cli.env["FARM_MAX_ATTEMPTS"] = "1"
    src = long_clip(tmp_path)
    job_id = submit(cli, src, catch_running=True)
    first = min(i for i, *_ in chunks(cli.home, job_id))
    Path(wait_chunk_done(cli.home, job_id, first)).unlink()
    job = cli.wait_state(job_id, {"done", "failed"})
    assert job["state"] == "failed", job
    assert f"chunk {first}" in job["error"] and "missing" in job["error"], job["error"]
    assert not (tmp_path / "long.farm.mp4").exists()
    proc = cli.run("retry", job_id)
    assert proc.returncode == 0, proc.stderr
    assert "1 chunk(s) queued again" in proc.stderr, proc.stderr
    job = cli.wait_state(job_id, {"done", "failed"})
    assert job["state"] == "done", job
    assert_exact(src, tmp_path / "long.farm.mp4")


def test_storage_full_fails_the_job_without_quarantine_and_retry_finishes_it(farm_home, tmp_path):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    # 2 MB: the source fits (its chunks read it by range), its crf 0 chunk outputs (~2.4 MB in all) do not
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(mount_point)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (mount refused: needs root)")
    env = dict(FAST_FAULTS, FARM_STORAGE=str(mount_point), FARM_LOCAL_WORKERS="1", FARM_MAX_ATTEMPTS="2",
               FARM_MAX_WORKER_FAILURES="2")
    cli = FarmCLI(farm_home, env)
    try:
        src = clips.make_clip(tmp_path / "big.mp4", width=640, height=360, seconds=4.0, gop=30)
        proc = cli.run("submit", str(src), "--passthrough", "--crf", "0", "--chunk-seconds", "1",
                       "--wait", "--json", timeout_s=180)
        assert proc.returncode == 1, proc.stderr
        job = json.loads(proc.stdout)
        status = cli.run("status", check=True).stdout
        assert "quarantined" not in status, status   # a full disk is not the worker's fault
        assert job["state"] == "failed" and f"no space left on {mount_point}" in job["error"], job
        assert not (tmp_path / "big.farm.mp4").exists()
        subprocess.run(["mount", "-o", "remount,size=64M", str(mount_point)], check=True)
        assert cli.run("retry", job["id"]).returncode == 0
        done = cli.wait_state(job["id"], {"done", "failed"}, timeout_s=180)
        assert done["state"] == "done", done
        assert_exact(src, tmp_path / "big.farm.mp4")
    finally:
        cli.down()
        subprocess.run(["umount", "-l", str(mount_point)])


def test_orphan_job_folders_are_swept_by_farm_up_and_by_the_running_farm(farm_home, tmp_path):
    cli = FarmCLI(farm_home, dict(FAST_FAULTS, FARM_ORPHAN_GRACE_S="60"))
    try:
        jobs = farm_home / "storage" / "jobs"
        old = time.time() - 3600

        def orphan(name: str, age_s: float = 3600) -> Path:
            folder = jobs / name
            (folder / "chunks" / "in").mkdir(parents=True)
            (folder / "chunks" / "in" / "00000.mp4").write_bytes(b"x" * 1000)
            for path in [*folder.rglob("*"), folder]:
                os.utime(path, (time.time() - age_s, time.time() - age_s))
            return folder

        first, young = orphan("0rphan000001"), orphan("0rphan000002", age_s=1)
        src = long_clip(tmp_path, seconds=2.0)
        job_id = submit(cli, src)   # starts the farm; this job's folder is live
        cli.wait_state(job_id, {"done", "failed"})
        for path in [*(jobs / job_id).rglob("*"), jobs / job_id]:
            os.utime(path, (old, old))
        second = orphan("0rphan000003")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (first.exists() or second.exists()):
            time.sleep(0.2)
        assert not first.exists() and not second.exists(), "the running farm did not sweep the orphans"
        assert young.exists() and (jobs / job_id).exists()
        assert "0rphan000003" in cli.logs()
        cli.down()
        third = orphan("0rphan000004")
        proc = cli.run("up")
        assert proc.returncode == 0, proc.stderr
        assert not third.exists() and "0rphan000004" in proc.stderr, proc.stderr
        assert young.exists() and (jobs / job_id).exists()
    finally:
        cli.down()
