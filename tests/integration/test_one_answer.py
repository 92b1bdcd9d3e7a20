"""One answer per question (issue 13.5): which jobs are live, who is stale and how many
frames are done are decided once (farm.state.states, farm.state.store) and every reader gives the
same answer: the store's views, `farm status`, `--follow`, the metrics, the reaper and a
redelivered chunk or finalize task. Real SQLite and PostgreSQL, real Redis, real ffmpeg."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from farm.broker import embedded as local
from farm.broker import transport as broker
from farm.broker.celery_app import TASK_FINALIZE_JOB, TASK_PROCESS_CHUNK
from farm.broker.reaper import reap
from farm.cli.follow import RateMeter, read_farm
from farm.cli.watch import job_table
from farm.config import load_settings
from farm.jobs.outcomes import job_json
from farm.monitor.metrics import render_metrics
from farm.state import chunks, finalizing, store
from farm.state.states import JOB_LIVE, JOB_RENDERING
from farm.storage import Storage
from farm.workers.finalize import run_finalize
from tests import clips
from tests.integration.test_finalize import finalizing_job
from tests.job_rows import make_job

STALE_S = 1.0
"""The farm's stale time in these tests (FARM_STALE_HEARTBEAT_S), in seconds."""


def run_to_done(db, job_id: str, index: int) -> bool:
    assert chunks.claim_chunk(db, job_id, index, "w", 3, stale_after_s=120).outcome == "run"
    return chunks.finish_chunk(db, job_id, index, "w").finalize


def metric(text: str, name: str) -> dict[str, float]:
    """{job: value} of one per-job family of an exposition."""
    return {s.labels["job"]: s.value for fam in text_string_to_metric_families(text)
            for s in fam.samples if s.name == name}


@pytest.fixture
def farm_jobs(db):
    """Given
    - mixed (4 x 10 frames): chunk 0 done; chunk 1 running at 4 frames; chunk 2 pending again
      after an attempt that failed at 7 frames; chunk 3 pending, never claimed;
    - over (2 x 10): chunk 0 done, chunk 1 running and reporting 15 frames (more than
      planned: a chunk that decodes too many frames, before its count check fails it);
    - fin: every chunk done, finalizing; queued: nothing claimed;
    - done (published), failed and cancelled jobs, which are not live."""
    make_job(db, "mixed", [10, 10, 10, 10])
    run_to_done(db, "mixed", 0)
    chunks.claim_chunk(db, "mixed", 1, "w", 3, stale_after_s=120)
    chunks.heartbeat(db, "mixed", 1, 4)
    chunks.claim_chunk(db, "mixed", 2, "w", 3, stale_after_s=120)
    chunks.heartbeat(db, "mixed", 2, 7)
    assert chunks.fail_chunk(db, "mixed", 2, "boom", retryable=True, max_attempts=3) == "pending"
    make_job(db, "over", [10, 10])
    run_to_done(db, "over", 0)
    chunks.claim_chunk(db, "over", 1, "w", 3, stale_after_s=120)
    chunks.heartbeat(db, "over", 1, 15)
    make_job(db, "fin", [5, 5])
    run_to_done(db, "fin", 0)
    assert run_to_done(db, "fin", 1) is True
    make_job(db, "queued", [8])
    make_job(db, "done", [6])
    assert run_to_done(db, "done", 0) is True
    assert finalizing.claim_finalize(db, "done", "f", stale_after_s=120) is not None
    assert finalizing.publish_and_finish(db, "done", "f", lambda: None) == "done"
    make_job(db, "failed", [6])
    chunks.claim_chunk(db, "failed", 0, "w", 3, stale_after_s=120)
    chunks.heartbeat(db, "failed", 0, 3)
    chunks.fail_chunk(db, "failed", 0, "bad input", retryable=False, max_attempts=3)
    make_job(db, "cancelled", [6])
    chunks.claim_chunk(db, "cancelled", 0, "w", 3, stale_after_s=120)
    chunks.heartbeat(db, "cancelled", 0, 2)
    store.request_cancel(db, "cancelled")
    return db


def test_frames_done_counts_done_chunks_and_running_progress_only(farm_jobs):
    # When the store reads the jobs
    jobs = {j.id: j for j in store.list_jobs(farm_jobs, limit=None)}
    # Then a done chunk counts whole, a running one its progress (at most its planned frames),
    # and a chunk that starts again from frame 0 (pending, failed, cancelled) counts nothing
    assert [c.frames_rendered for c in jobs["mixed"].chunks] == [10, 4, 0, 0]
    assert jobs["mixed"].frames_done == 14
    assert jobs["over"].frames_done == 20
    assert (jobs["fin"].frames_done, jobs["queued"].frames_done, jobs["done"].frames_done) == (10, 0, 6)
    assert (jobs["failed"].frames_done, jobs["cancelled"].frames_done) == (0, 0)
    # and what farm status prints and --json says are the same numbers
    assert job_json(jobs["mixed"])["frames_done"] == 14
    table = job_table(jobs["mixed"], width=200)
    assert list(table.columns[2].cells) == ["10/10", "4/10", "0/10", "0/10"]


def test_metrics_follow_and_store_agree_on_the_live_jobs_and_their_frames(farm_jobs, settings):
    # When the metrics are scraped and --follow reads the farm
    text = render_metrics(settings, farm_jobs)
    followed, _workers = read_farm(farm_jobs, RateMeter())
    live = {j.id: j for j in store.live_jobs(farm_jobs)}
    # Then all three see the same live jobs: queued, running and finalizing ones
    assert set(live) == {"mixed", "over", "fin", "queued"}
    assert all(j.live and j.state in JOB_LIVE for j in live.values())
    assert set(metric(text, "farm_job_frames")) == set(live) == {j.id for j in followed}
    # and the same frames done, job by job
    assert metric(text, "farm_job_frames_done") == {j.id: j.frames_done for j in live.values()}
    assert metric(text, "farm_job_frames_done") == {"mixed": 14, "over": 20, "fin": 10, "queued": 0}
    # and the reaper tops up the windows of exactly the live jobs whose chunks still render
    assert set(store.rendering_job_ids(farm_jobs)) == {j.id for j in live.values() if j.state in JOB_RENDERING}
    assert set(store.rendering_job_ids(farm_jobs)) == {"mixed", "over", "queued"}


@pytest.fixture
def stale_farm(farm_home: Path, tmp_path: Path, db):
    """A farm whose stale time is STALE_S and whose chunk time limit is an hour, with its
    own Redis running and `db` as its job database."""
    settings = load_settings({"FARM_HOME": str(farm_home), "FARM_STALE_HEARTBEAT_S": str(STALE_S),
                              "FARM_CHUNK_TIME_LIMIT_S": "3600"})
    local.start_redis(settings)
    try:
        yield SimpleNamespace(db=db, settings=settings, storage=Storage(tmp_path / "storage"))
    finally:
        local.down(settings)


def test_a_silent_finalize_owner_is_taken_over_by_the_reaper_and_a_redelivered_finalize_alike(stale_farm, tmp_path):
    ctx = stale_farm
    src = clips.make_clip(tmp_path / "clip.mp4", width=160, height=90, seconds=1.0)
    finalizing_job(ctx, src, tmp_path / "out.mp4", job_id="fin1")
    assert finalizing.claim_finalize(ctx.db, "fin1", "fin-a", stale_after_s=ctx.settings.stale_heartbeat_s)
    # Given an owner that has just beaten: the reaper leaves it, a redelivered finalize skips
    assert reap(ctx.settings, ctx.db)["finalize"] == 0
    assert run_finalize(ctx, "fin1", "fin-b") == "skip"
    # When the owner stays silent for longer than the stale time (far less than the chunk time limit)
    time.sleep(STALE_S * 2)
    # Then the reaper re-enqueues the finalize step as one whose owner stopped beating
    assert reap(ctx.settings, ctx.db)["finalize"] == 1
    assert (TASK_FINALIZE_JOB, ("fin1",)) in broker.holdings(broker.client(ctx.settings), ctx.settings)
    assert ("requeued", "finalize owner stopped beating") in [(k, m) for _at, _c, k, m in store.events(ctx.db, "fin1")]
    # and the finalize task it enqueued takes the job over and publishes it; the silent owner cannot
    assert run_finalize(ctx, "fin1", "fin-b") == "done", store.get_job(ctx.db, "fin1").error
    assert finalizing.publish_and_finish(ctx.db, "fin1", "fin-a", lambda: None) == "lost"
    assert (tmp_path / "out.mp4").is_file()


def test_a_silent_chunk_owner_is_taken_over_by_the_reaper_and_a_redelivered_chunk_alike(stale_farm):
    ctx, stale_s = stale_farm, stale_farm.settings.stale_heartbeat_s
    make_job(ctx.db, "ch1", [10])
    assert chunks.take_chunks_to_enqueue(ctx.db, "ch1", window=4) == [(0, 5)]
    assert chunks.claim_chunk(ctx.db, "ch1", 0, "w1", 3, stale_after_s=stale_s).outcome == "run"
    # Given an owner that has just beaten: a redelivery is busy, the reaper sees no stale chunk
    assert chunks.claim_chunk(ctx.db, "ch1", 0, "w2", 3, stale_after_s=stale_s).outcome == "busy"
    assert reap(ctx.settings, ctx.db)["stale"] == 0
    # When it stays silent for longer than the stale time
    time.sleep(STALE_S * 2)
    # Then the reaper re-enqueues it as stale, and the redelivered task takes it over
    assert reap(ctx.settings, ctx.db)["stale"] == 1
    assert (TASK_PROCESS_CHUNK, ("ch1", 0)) in broker.holdings(broker.client(ctx.settings), ctx.settings)
    claim = chunks.claim_chunk(ctx.db, "ch1", 0, "w2", 3, stale_after_s=stale_s)
    assert claim.outcome == "run" and claim.chunk.worker == "w2" and claim.chunk.attempts == 2


def test_the_reaper_refuses_a_stale_time_other_than_the_farms(settings, db):
    with pytest.raises(ValueError, match="stale_heartbeat_s"):
        reap(settings, db, stale_after_s=settings.stale_heartbeat_s + 1)
