"""Recovery rules on real SQLite and PostgreSQL: a finalize owner must beat to keep its claim,
lost chunk outputs go back to pending (bounded by attempts), storage errors do not count
towards quarantine, a job whose every worker is quarantined says so, orphan folders are swept."""

from __future__ import annotations

import datetime as dt
import io
import os
import threading
import time
from pathlib import Path

from rich.console import Console

from farm.cli.watch import wait_for_job, workers_table
from farm.errors import MediaError
from farm.jobs.sweep import sweep_orphans
from farm.state import chunks, finalizing, registry, store
from farm.state.db import WorkerRow
from farm.workers.chunk_outputs import lost_chunk_outputs, output_problem
from farm.workers.chunk_runner import storage_problem
from tests import clips
from tests.integration.test_store import finalizing_job, make_job


def test_a_finalize_owner_keeps_its_claim_while_it_beats_and_loses_it_when_silent(db):
    finalizing_job(db, owner="fin-a")
    assert finalizing.claim_finalize(db, "job1", "fin-b", stale_after_s=60) is None
    assert finalizing.touch_finalize(db, "job1", "fin-a") is True
    assert store.unfinished_work(db, stale_after_s=60).stale_finals == set()
    time.sleep(0.05)
    assert store.unfinished_work(db, stale_after_s=0.01).stale_finals == {"job1"}
    assert store.unfinished_work(db, stale_after_s=0.01)[1] == ["job1"]
    assert finalizing.claim_finalize(db, "job1", "fin-b", stale_after_s=0.01) is not None
    assert finalizing.touch_finalize(db, "job1", "fin-a") is False   # fin-b owns it now
    assert finalizing.publish_and_finish(db, "job1", "fin-a", lambda: None) == "lost"


def test_lost_chunk_outputs_go_back_to_pending_and_count_their_attempts(db):
    make_job(db, chunks=2)
    for i in range(2):
        chunks.claim_chunk(db, "job1", i, "w1", 3, stale_after_s=120)
        chunks.finish_chunk(db, "job1", i, "w1")
    assert finalizing.claim_finalize(db, "job1", "fin-a", stale_after_s=60) is not None
    lost = {1: "chunk 1's output /s/out/1 is missing"}
    assert finalizing.requeue_lost_chunks(db, "job1", "fin-b", lost, window=4) is None   # not the owner
    assert finalizing.requeue_lost_chunks(db, "job1", "fin-a", lost, window=4) == [(1, 5)]
    job = store.get_job(db, "job1")
    assert job.state == "running" and [c.state for c in job.chunks] == ["done", "pending"]
    assert job.chunks[1].error == lost[1]
    assert finalizing.claim_finalize(db, "job1", "fin-a", stale_after_s=60) is None   # not finalizing now
    claim = chunks.claim_chunk(db, "job1", 1, "w2", 3, stale_after_s=120)
    assert claim.outcome == "run" and claim.chunk.attempts == 2
    assert chunks.finish_chunk(db, "job1", 1, "w2").finalize is True
    assert store.get_job(db, "job1").state == "finalizing"


def test_a_chunk_whose_output_keeps_getting_lost_fails_the_job_after_its_attempts(db):
    make_job(db, chunks=1)
    chunks.claim_chunk(db, "job1", 0, "w1", 1, stale_after_s=120)
    chunks.finish_chunk(db, "job1", 0, "w1")
    finalizing.claim_finalize(db, "job1", "fin-a", stale_after_s=60)
    finalizing.requeue_lost_chunks(db, "job1", "fin-a", {0: "chunk 0's output /s/out/0 is missing"}, window=4)
    assert chunks.claim_chunk(db, "job1", 0, "w1", max_attempts=1, stale_after_s=120).outcome == "exhausted"
    job = store.get_job(db, "job1")
    assert job.state == "failed" and "is missing" in job.error and "chunk 0" in job.error
    assert store.retry_job(db, "job1") == [0]   # retry renders it again, attempts from 0


def test_chunk_outputs_are_checked_for_presence_size_and_frames(tmp_path):
    clip = clips.make_clip(tmp_path / "00000.mp4", width=64, height=48, fps=25, seconds=1.0)
    empty, garbage = tmp_path / "00001.mp4", tmp_path / "00002.mp4"
    empty.touch()
    garbage.write_bytes(b"\0" * 4096)
    assert output_problem(clip, 25) is None
    assert output_problem(clip, 24) == "holds 25 frames, 24 planned"
    assert output_problem(tmp_path / "gone.mp4", 25) == "is missing"
    assert output_problem(empty, 25) == "is empty"
    assert output_problem(garbage, 25).startswith("cannot be opened as video")
    assert output_problem(tmp_path, 25) == "is not a regular file"

    class View:   # the two fields of store.ChunkView that the check reads
        def __init__(self, index: int, path: Path) -> None:
            self.index, self.output_path, self.frames_planned = index, str(path), 25

    assert lost_chunk_outputs([View(0, clip), View(1, empty)]) == {1: f"chunk 1's output {empty} is empty"}


def test_storage_errors_are_named_with_their_folder_even_when_wrapped(tmp_path):
    def wrapped(errno_: int) -> Exception:
        try:
            try:
                raise OSError(errno_, os.strerror(errno_), str(tmp_path / "out" / ".00003.mp4.tmp"))
            except OSError as exc:
                raise MediaError(f"chunk 3: encoding failed: {exc}") from None
        except MediaError as exc:
            return exc

    message = storage_problem(wrapped(28), tmp_path, "job1")
    assert message.startswith(f"no space left on {tmp_path / 'out'} (No space left on device)")
    assert "`farm retry job1`" in message
    assert storage_problem(wrapped(122), tmp_path, "job1").startswith("disk quota exceeded on")
    read_only = storage_problem(wrapped(30), tmp_path, "job1")
    assert read_only.startswith("read-only file system at")
    assert "make it writable" in read_only and "free space" not in read_only   # the advice fits the error
    assert "free space" in message
    assert storage_problem(wrapped(5), tmp_path, "job1") is None          # EIO: the worker's own problem
    url = OSError(28, "No space left on device", f"file:{tmp_path / 'out' / 'x.mp4'}")   # as PyAV names files
    assert storage_problem(url, tmp_path, "job1").startswith(f"no space left on {tmp_path / 'out'} (")
    assert storage_problem(ValueError("x"), tmp_path, "job1") is None


def test_a_storage_failure_does_not_count_towards_quarantine(db):
    registry.report_start(db, "cpu0@n", 1, None, "")
    assert registry.report_result(db, "cpu0@n", ok=False) == 1
    assert registry.report_result(db, "cpu0@n", ok=False, blame_worker=False) == 1
    assert registry.report_result(db, "cpu0@n", ok=False) == 2


def test_a_job_whose_every_chunk_worker_is_quarantined_says_so_while_waiting(db):
    make_job(db, chunks=1)
    registry.report_start(db, "fin@n", 2, None, "")
    registry.report_start(db, "cpu0@n", 1, None, "")
    assert registry.all_quarantined(registry.list_workers(db)) is None
    registry.report_state(db, "cpu0@n", "quarantined", "stopped taking chunks after 5 failures in a row; last: x")
    stuck = registry.all_quarantined(registry.list_workers(db))
    assert stuck.startswith("every chunk worker is quarantined") and "cpu0@n: stopped taking chunks" in stuck
    with db.transaction() as s:   # an hour of silence: a dead idle row no longer counts; quarantine still does
        for row in s.query(WorkerRow):
            row.last_seen = row.last_seen - dt.timedelta(hours=1)
    registry.report_start(db, "cpu1@gone", 3, None, "")
    with db.transaction() as s:
        s.get(WorkerRow, "cpu1@gone").last_seen -= dt.timedelta(hours=1)
    assert registry.all_quarantined(registry.list_workers(db)) == stuck
    registry.report_start(db, "cpu2@n", 4, None, "")   # a live healthy worker: nothing to say
    assert registry.all_quarantined(registry.list_workers(db)) is None
    with db.transaction() as s:
        s.delete(s.get(WorkerRow, "cpu2@n"))
    shown = io.StringIO()
    Console(file=shown, width=200).print(workers_table(registry.list_workers(db)))
    assert "every chunk worker is quarantined" in shown.getvalue()

    out = io.StringIO()
    waiter = threading.Thread(target=wait_for_job, args=(db, "job1", Console(file=out, width=300)), daemon=True)
    waiter.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "every chunk worker is quarantined" not in out.getvalue():
        time.sleep(0.05)
    store.fail_job(db, "job1", "given up by the test")
    waiter.join(10)
    assert "job job1 is waiting: every chunk worker is quarantined" in " ".join(out.getvalue().split())


def age(path: Path, seconds: float) -> None:
    """Set the mtime of `path` and everything under it `seconds` into the past."""
    then = time.time() - seconds
    for p in [*path.rglob("*"), path]:
        os.utime(p, (then, then))


def job_folder(jobs: Path, name: str) -> Path:
    folder = jobs / name
    (folder / "chunks" / "in").mkdir(parents=True)
    (folder / "chunks" / "in" / "00000.mp4").write_bytes(b"x" * 2000)
    (folder / "source.mp4").write_bytes(b"y" * 3000)
    return folder


def test_the_sweep_removes_only_old_folders_that_no_job_owns(db, tmp_path):
    jobs = tmp_path / "jobs"
    make_job(db, job_id="job1")
    live, orphan, young = job_folder(jobs, "job1"), job_folder(jobs, "0rphan"), job_folder(jobs, "submitting")
    age(live, 7200)
    age(orphan, 7200)
    age(young, 7200)
    os.utime(young / "chunks" / "in" / "00000.mp4")   # a submit still splitting writes its chunk inputs now
    swept = sweep_orphans(jobs, db, grace_s=3600)
    assert [s.path for s in swept] == [orphan] and swept[0].size_bytes == 5000
    assert f"removed {orphan} (0.0 MB)" in swept[0].describe()
    assert not orphan.exists() and live.exists() and young.exists()
    assert sweep_orphans(tmp_path / "nothing-here", db, grace_s=0) == []


def test_the_finalize_heartbeat_keeps_the_claim_fresh_and_stops_when_it_is_lost(db):
    from farm.workers.beats import Heartbeat

    finalizing_job(db, owner="fin-a")
    beats: list[bool] = []

    def beat() -> bool:
        beats.append(finalizing.touch_finalize(db, "job1", "fin-a"))
        return beats[-1]

    heartbeat = Heartbeat(beat, interval_s=0.05).start()
    try:
        time.sleep(0.6)
        assert store.unfinished_work(db, stale_after_s=0.3).stale_finals == set()   # silent 0.6 s without beats
        assert finalizing.claim_finalize(db, "job1", "fin-b", stale_after_s=0.3) is None
        store.request_cancel(db, "job1")   # no longer finalizing: the next beat says so and the beating ends
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (not beats or beats[-1]):
            time.sleep(0.02)
        count = len(beats)
        time.sleep(0.2)
        assert beats[-1] is False and len(beats) == count
    finally:
        heartbeat.stop()
