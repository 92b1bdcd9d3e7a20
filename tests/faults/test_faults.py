"""Fault injection on the real farm: a private Redis, real Celery worker processes, SQLite,
real video. Each test checks that the job still ends with the exact frames and timestamps
of the source, or fails with a clear error, and never publishes a partial file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from farm.broker.celery_app import create_app, enqueue_chunk
from farm.config import load_settings
from tests import clips, media_checks
from tests.e2e.farmcli import FARM, FarmCLI, hold_workers, wait_signal_pending, write_locked
from tests.faults.farmfaults import busy_worker, chunks, events, query

FAST_FAULTS = {"FARM_STALE_HEARTBEAT_S": "4", "FARM_REAP_INTERVAL_S": "1", "FARM_LOCAL_WORKERS": "2"}


@pytest.fixture
def cli(farm_home: Path):
    farm = FarmCLI(farm_home, dict(FAST_FAULTS))
    yield farm
    farm.down()


def long_clip(tmp_path: Path, seconds: float = 6.0) -> Path:
    return clips.make_clip(tmp_path / "long.mp4", width=960, height=540, seconds=seconds, audio_tracks=1, gop=15)


def submit(cli: FarmCLI, src: Path, *extra: str, catch_running: bool = False) -> str:
    """A pass-through job of 1 s chunks. With catch_running, the slow preset makes each chunk
    last a few seconds, so that a test can catch a chunk while it runs (progress is stored
    once a second)."""
    slow = ["--preset", "slower"] if catch_running else []
    return cli.run("submit", str(src), "--passthrough", "--chunk-seconds", "1", *slow, *extra,
                   check=True).stdout.strip()


def assert_exact(src: Path, out: Path) -> None:
    assert media_checks.frame_count(out) == media_checks.frame_count(src)
    media_checks.assert_same_frame_times(media_checks.video_frame_times(src), media_checks.video_frame_times(out))
    assert not list(out.parent.glob(f".{out.name}.*")), "a temporary file was left beside the output"


def test_a_worker_killed_mid_chunk_has_its_chunk_run_again(cli, tmp_path):
    src = long_clip(tmp_path)
    job_id = submit(cli, src, catch_running=True)
    index, pid, host = busy_worker(cli.home, job_id, min_frames=3)
    os.kill(pid, signal.SIGKILL)
    job = cli.wait_state(job_id, {"done", "failed"})
    assert job["state"] == "done", job
    assert dict((i, a) for i, _, a, _, _ in chunks(cli.home, job_id))[index] >= 2
    assert_exact(src, tmp_path / "long.farm.mp4")


@pytest.mark.parametrize("keep_data", [True, False], ids=["with-data", "without-data"])
def test_redis_restarted_mid_job_loses_nothing(cli, tmp_path, keep_data):
    src = long_clip(tmp_path)
    job_id = submit(cli, src, catch_running=True)
    busy_worker(cli.home, job_id, min_frames=0)   # mid-job: a chunk claimed (a fast machine ends one before its first progress report)
    run = cli.home / "run"
    redis_pid = int((run / "redis.pid").read_text())
    os.kill(redis_pid, signal.SIGTERM if keep_data else signal.SIGKILL)
    time.sleep(0.5)
    if not keep_data:
        for path in run.glob("appendonly*"):
            subprocess.run(["rm", "-rf", str(path)], check=True)
    assert cli.run("up").returncode == 0       # restarts Redis; the reaper re-queues what it lost
    job = cli.wait_state(job_id, {"done", "failed"})
    assert job["state"] == "done", job
    assert_exact(src, tmp_path / "long.farm.mp4")


def test_duplicate_deliveries_still_finalize_once(cli, tmp_path):
    src = long_clip(tmp_path, seconds=4.0)
    job_id = submit(cli, src)
    settings = load_settings(cli.env)
    app = create_app(settings)
    for index, *_ in chunks(cli.home, job_id):
        enqueue_chunk(app, job_id, index, 5)
        enqueue_chunk(app, job_id, index, 5)
    app.close()
    job = cli.wait_state(job_id, {"done", "failed"})
    assert job["state"] == "done", job
    time.sleep(3)   # let every duplicate run out
    assert events(cli.home, job_id, "finalize_claimed") == 1
    assert events(cli.home, job_id, "done") == 1
    assert_exact(src, tmp_path / "long.farm.mp4")


def test_a_poison_chunk_that_kills_its_worker_fails_the_job_after_bounded_attempts(cli, tmp_path):
    src = long_clip(tmp_path, seconds=8.0)
    # long chunks: each run of the victim lasts seconds, so it is caught again after every redelivery
    job_id = submit(cli, src, "--chunk-seconds", "4", catch_running=True)
    victim, pid, _ = busy_worker(cli.home, job_id)
    killed = 0
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if query(cli.home, "SELECT state FROM jobs WHERE id=?", job_id)[0][0] in ("failed", "done"):
            break
        try:
            _, pid, _ = busy_worker(cli.home, job_id, index=victim, min_frames=0, timeout_s=0.5)
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except (AssertionError, ProcessLookupError):
            pass
    job = cli.job(job_id)
    assert job["state"] == "failed", job
    assert f"chunk {victim}" in job["error"] and "3 attempts" in job["error"]
    assert killed >= 2
    assert not (tmp_path / "long.farm.mp4").exists()


def freeze_a_busy_worker(home: Path, job_id: str, timeout_s: float = 120) -> tuple[int, int, str]:
    """SIGSTOP a worker in the middle of a chunk: a hang in the middle of the work, not inside
    a database transaction (a process frozen while holding SQLite's write lock would stop
    every other process too, which is not the case under test: after freezing, the lock is
    checked, and a worker caught holding it is let go and caught again later). Returns
    (chunk index, pid, hostname)."""
    tried = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = {i: w for i, s, _, _, w in chunks(home, job_id) if s == "running" and w}
        for index, host in running.items():
            pids = query(home, "SELECT pid FROM workers WHERE hostname=? AND state='busy'", host)
            if not pids or not pids[0][0]:
                continue
            pid = pids[0][0]
            os.kill(pid, signal.SIGSTOP)
            state, now = next((s, f) for i, s, _, f, _ in chunks(home, job_id) if i == index)
            planned = query(home, 'SELECT frames_planned FROM chunks WHERE job_id=? AND "index"=?', job_id, index)[0][0]
            if state == "running" and 0 < now < planned and not write_locked(home / "farm.db"):
                return index, pid, host
            os.kill(pid, signal.SIGCONT)
            tried.append((index, host, state, now))
        time.sleep(0.05)
    raise AssertionError(f"could not freeze a worker mid-chunk: tried {tried}; chunks {chunks(home, job_id)}")


def test_a_hung_worker_is_reaped_and_its_chunk_runs_elsewhere(cli, tmp_path):
    src = long_clip(tmp_path)
    job_id = submit(cli, src, "--chunk-seconds", "3", catch_running=True)   # several heartbeats a chunk
    index, pid, host = freeze_a_busy_worker(cli.home, job_id)    # its heartbeats stop
    try:
        job = cli.wait_state(job_id, {"done", "failed"})
        assert job["state"] == "done", job
        rows = {i: (a, w) for i, _, a, _, w in chunks(cli.home, job_id)}
        assert rows[index][0] >= 2 and rows[index][1] != host, (index, rows)
        assert events(cli.home, job_id, "requeued") >= 1
        assert_exact(src, tmp_path / "long.farm.mp4")
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_worker_that_keeps_failing_stops_taking_work_and_others_finish(cli, tmp_path):
    """A node with a broken model mount (like a broken GPU): it fails chunks in a row, quarantines
    itself, and its chunks go to the healthy worker."""
    broken_env = dict(cli.env, FARM_MODELS_DIR="/dev/null/models", FARM_MAX_WORKER_FAILURES="2")
    cli.env.update(FARM_MAX_ATTEMPTS="6", FARM_LOCAL_WORKERS="1")
    cli.run("up", check=True)
    broken = subprocess.Popen([sys.executable, "-m", "farm", "worker", "--cpu", "1", "--node", "broken"],
                              env=broken_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(4)
        src = clips.make_clip(tmp_path / "face.mp4", width=320, height=180, seconds=3.0, moving_face=True, gop=10)
        face = clips.make_face_image(tmp_path / "face.jpg")
        proc = cli.run("submit", str(src), "--source", str(face), "--models", "demo", "--chunk-seconds", "0.34",
                       "--wait", "--json", timeout_s=400)
        assert proc.returncode == 0, proc.stderr + cli.logs()
        assert json.loads(proc.stdout)["state"] == "done"
        status = cli.run("status", check=True).stdout
        assert "quarantined" in status and "cpu0@broken" in status, status
        assert "stopped taking chunks after 2 failures in a row" in " ".join(status.split()), status
    finally:
        broken.send_signal(signal.SIGTERM)
        broken.wait(60)


def test_stop_the_whole_farm_mid_job_then_up_and_retry_finishes_without_redoing(cli, tmp_path):
    src = long_clip(tmp_path)
    job_id = submit(cli, src, catch_running=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and sum(s == "done" for _, s, *_ in chunks(cli.home, job_id)) < 2:
        time.sleep(0.1)
    # `farm down` while the workers are held, resumed once its SIGTERM is on them: on a loaded
    # machine its start could otherwise take as long as the chunks left
    held = hold_workers(cli)
    down = subprocess.Popen([*FARM, "down"], env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_signal_pending(held, signal.SIGTERM)
    for proc in held:
        proc.resume()
    assert down.wait(timeout=120) == 0, down.communicate()
    done_before = {i for i, s, *_ in chunks(cli.home, job_id) if s == "done"}
    assert done_before and len(done_before) < len(chunks(cli.home, job_id))
    assert "running" not in {s for _, s, *_ in chunks(cli.home, job_id)}, "farm down left chunks running"
    assert cli.run("up").returncode == 0
    assert cli.run("retry", job_id).returncode == 0
    job = cli.wait_state(job_id, {"done", "failed"})
    assert job["state"] == "done", job
    assert all(a == 1 for i, _, a, *_ in chunks(cli.home, job_id) if i in done_before)
    assert_exact(src, tmp_path / "long.farm.mp4")


def test_a_full_output_folder_fails_the_job_saying_where_and_what_to_do(farm_home, tmp_path):
    """The output's folder (where finalize writes its temporary, beside the output) fills up:
    the job fails naming the folder and `farm retry`, leaves nothing there, and a retry once
    there is room publishes it (before: a bare "[Errno 28] No space left on device")."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(out_dir)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    cli = FarmCLI(farm_home, dict(FAST_FAULTS, FARM_MAX_ATTEMPTS="1"))
    try:
        src = clips.make_clip(tmp_path / "big.mp4", width=640, height=360, seconds=2.0, gop=30)
        out = out_dir / "big.mp4"
        proc = cli.run("submit", str(src), "--passthrough", "--crf", "0", "--output", str(out), "--wait", "--json")
        assert proc.returncode == 1, proc.stderr
        job = json.loads(proc.stdout)
        assert job["state"] == "failed", job
        assert f"no space left on {out_dir}" in job["error"] and f"farm retry {job['id']}" in job["error"], job
        assert list(out_dir.iterdir()) == []
        subprocess.run(["mount", "-o", "remount,size=64m", str(out_dir)], check=True)
        assert cli.run("retry", job["id"]).returncode == 0
        assert cli.wait_state(job["id"], {"done", "failed"})["state"] == "done"
        assert media_checks.frame_count(out) == 60
    finally:
        cli.down()
        subprocess.run(["umount", "-l", str(out_dir)])


def test_storage_full_fails_cleanly_and_publishes_nothing(farm_home, tmp_path):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    # 2 MB: the source (and nothing else: its chunks read it by range) fits, the crf 0 output (~2.4 MB) does not
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(mount_point)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    cli = FarmCLI(farm_home, dict(FAST_FAULTS, FARM_STORAGE=str(mount_point), FARM_MAX_ATTEMPTS="1"))
    try:
        src = clips.make_clip(tmp_path / "big.mp4", width=640, height=360, seconds=4.0, gop=30)
        assert 0.2e6 < src.stat().st_size < 1.4e6, src.stat().st_size   # the source fits, the outputs do not
        proc = cli.run("submit", str(src), "--passthrough", "--crf", "0", "--wait", "--json")
        assert proc.returncode == 1, proc.stderr
        job = json.loads(proc.stdout)
        assert job["state"] == "failed" and "No space left" in job["error"]
        assert not (tmp_path / "big.farm.mp4").exists()
        leftovers = [p for p in mount_point.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]
        assert leftovers == [], leftovers
    finally:
        cli.down()
        subprocess.run(["umount", "-l", str(mount_point)])
