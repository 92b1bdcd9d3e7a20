"""The job store on real SQLite and real PostgreSQL: life cycle, attempts, exactly-once finalize."""

from __future__ import annotations

import threading
import time

import pytest

from farm.errors import JobNotFound, StateError
from farm.state import chunks, finalizing, store
from farm.state.db import Database, current_revision, upgrade_schema


def make_job(db: Database, job_id: str = "job1", chunks: int = 3) -> None:
    specs = [store.ChunkSpec(index=i, first_frame=i * 10, frames_planned=10, plan={"index": i},
                             input_path=f"/s/in/{i}", output_path=f"/s/out/{i}") for i in range(chunks)]
    store.create_job(db, job_id=job_id, chunks=specs, input_path="/in.mp4", source_path="/s/source.mp4",
                     output_path="/out.mp4", frames_total=10 * chunks, fps=30.0)


def test_migrations_are_at_head_and_idempotent(db):
    assert current_revision(db) == "0010"
    assert upgrade_schema(db) == "0010"


def test_a_job_runs_to_done(db):
    make_job(db)
    job = store.get_job(db, "job1")
    assert (job.state, job.chunk_count, job.frames_done) == ("queued", 3, 0)
    finals = []
    for i in range(3):
        claim = chunks.claim_chunk(db, "job1", i, "w1", max_attempts=3, stale_after_s=120)
        assert claim.outcome == "run" and claim.chunk.attempts == 1
        assert chunks.heartbeat(db, "job1", i, 5) is False
        finals.append(chunks.finish_chunk(db, "job1", i, "w1").finalize)
    assert finals == [False, False, True]
    job = store.get_job(db, "job1")
    assert job.state == "finalizing" and job.frames_done == 30 and job.chunks_done == 3
    assert finalizing.claim_finalize(db, "job1", "fin-a", stale_after_s=60) is not None
    assert finalizing.claim_finalize(db, "job1", "fin-b", stale_after_s=60) is None  # owned by fin-a
    assert finalizing.publish_and_finish(db, "job1", "fin-a", lambda: None) == "done"
    assert store.get_job(db, "job1").state == "done"
    kinds = [e[2] for e in store.events(db, "job1")]
    assert kinds[0] == "submitted" and kinds[-1] == "done"


def test_done_chunk_is_skipped_and_duplicate_completion_is_ignored(db):
    make_job(db, chunks=1)
    chunks.claim_chunk(db, "job1", 0, "w1", 3, stale_after_s=120)
    assert chunks.finish_chunk(db, "job1", 0, "w1").finalize is True
    assert chunks.claim_chunk(db, "job1", 0, "w2", 3, stale_after_s=120).outcome == "skip"
    assert chunks.finish_chunk(db, "job1", 0, "w2").finalize is False


def test_live_duplicate_is_busy_but_a_stale_one_is_taken_over(db):
    make_job(db, chunks=1)
    assert chunks.claim_chunk(db, "job1", 0, "w1", 3, stale_after_s=120).outcome == "run"
    assert chunks.claim_chunk(db, "job1", 0, "w2", 3, stale_after_s=60).outcome == "busy"
    claim = chunks.claim_chunk(db, "job1", 0, "w2", 3, stale_after_s=0)
    assert claim.outcome == "run" and claim.chunk.attempts == 2 and claim.chunk.worker == "w2"


def test_attempts_are_bounded_and_the_job_fails_naming_the_chunk(db):
    make_job(db, chunks=2)
    for attempt in range(2):
        assert chunks.claim_chunk(db, "job1", 1, "w1", 2, stale_after_s=0).outcome == "run"
    claim = chunks.claim_chunk(db, "job1", 1, "w1", 2, stale_after_s=0)
    assert claim.outcome == "exhausted" and "chunk 1" in claim.reason
    job = store.get_job(db, "job1")
    assert job.state == "failed" and "chunk 1" in job.error and "2 attempts" in job.error


def test_retryable_failure_goes_back_to_pending_then_fails(db):
    make_job(db, chunks=1)
    chunks.claim_chunk(db, "job1", 0, "w1", 2, stale_after_s=120)
    assert chunks.fail_chunk(db, "job1", 0, "boom", retryable=True, max_attempts=2) == "pending"
    chunks.claim_chunk(db, "job1", 0, "w1", 2, stale_after_s=120)
    assert chunks.fail_chunk(db, "job1", 0, "boom again", retryable=True, max_attempts=2) == "failed"
    job = store.get_job(db, "job1")
    assert job.state == "failed" and "boom again" in job.error


def test_cancel_then_retry_reruns_only_unfinished_chunks(db):
    make_job(db, chunks=3)
    chunks.claim_chunk(db, "job1", 0, "w1", 3, stale_after_s=120)
    chunks.finish_chunk(db, "job1", 0, "w1")
    chunks.claim_chunk(db, "job1", 1, "w1", 3, stale_after_s=120)
    job = store.request_cancel(db, "job1")
    assert job.state == "cancelled" and job.cancel_requested
    assert chunks.heartbeat(db, "job1", 1, 3) is True          # the running worker learns of it
    assert chunks.claim_chunk(db, "job1", 2, "w1", 3, stale_after_s=120).outcome == "skip"
    assert store.retry_job(db, "job1") == [1, 2]
    job = store.get_job(db, "job1")
    assert job.state == "queued" and not job.cancel_requested
    assert [c.state for c in job.chunks] == ["done", "pending", "pending"]
    with pytest.raises(StateError):
        store.retry_job(db, "job1")


def test_unknown_job_is_a_clear_error(db):
    with pytest.raises(JobNotFound, match="no job 'nope'"):
        store.get_job(db, "nope")


def test_unfinished_work_lists_pending_and_stale_chunks(db):
    make_job(db, chunks=2)
    assert store.unfinished_work(db, stale_after_s=0)[:2] == ([], [])   # nothing handed to the broker yet
    assert chunks.take_chunks_to_enqueue(db, "job1", window=8) == [(0, 5), (1, 5)]
    chunks.claim_chunk(db, "job1", 0, "w1", 3, stale_after_s=120)
    pending, finals, *_ = store.unfinished_work(db, stale_after_s=3600)
    assert pending == [("job1", 1, 5)] and finals == []
    pending, *_ = store.unfinished_work(db, stale_after_s=0)
    assert sorted(pending) == [("job1", 0, 5), ("job1", 1, 5)]


def test_concurrent_completions_pick_exactly_one_finalizer(db):
    """Given many threads finishing the last chunks at once, exactly one must enqueue finalize."""
    count = 8
    make_job(db, chunks=count)
    for i in range(count):
        chunks.claim_chunk(db, "job1", i, f"w{i}", 3, stale_after_s=120)
    results: list[bool] = []
    barrier = threading.Barrier(count)

    def finish(i: int) -> None:
        other = Database(db.url)
        barrier.wait()
        results.append(chunks.finish_chunk(other, "job1", i, f"w{i}").finalize)
        other.dispose()

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * (count - 1) + [True]
    assert store.get_job(db, "job1").state == "finalizing"


def test_a_job_window_keeps_a_long_job_from_filling_the_queue(db):
    """Given a window of 2, only 2 chunks are handed out; each finished chunk frees one slot."""
    make_job(db, chunks=5)
    first = chunks.take_chunks_to_enqueue(db, "job1", window=2)
    assert [i for i, _ in first] == [0, 1]
    assert chunks.take_chunks_to_enqueue(db, "job1", window=2) == []
    chunks.claim_chunk(db, "job1", 0, "w", 3, stale_after_s=120)
    chunks.finish_chunk(db, "job1", 0, "w")
    assert [i for i, _ in chunks.take_chunks_to_enqueue(db, "job1", window=2)] == [2]
    store.request_cancel(db, "job1")
    assert chunks.take_chunks_to_enqueue(db, "job1", window=2) == []


def test_running_chunks_do_not_count_against_the_window(db):
    """Given a window of 2 whose chunks were both claimed, the next top-up hands out 2 more:
    the window bounds what waits in the broker, so a job alone on a farm of N workers keeps
    them all busy, not 2 of them (issue 17.5, bench/bench_control_plane.py)."""
    make_job(db, chunks=6)
    assert [i for i, _ in chunks.take_chunks_to_enqueue(db, "job1", window=2)] == [0, 1]
    for i in (0, 1):
        chunks.claim_chunk(db, "job1", i, f"w{i}", 3, stale_after_s=120)
    assert [i for i, _ in chunks.take_chunks_to_enqueue(db, "job1", window=2)] == [2, 3]
    assert chunks.take_chunks_to_enqueue(db, "job1", window=2) == []


def test_longest_chunks_are_handed_out_first(db):
    specs = [store.ChunkSpec(index=i, first_frame=0, frames_planned=n, plan={}, input_path="i", output_path="o")
             for i, n in enumerate([5, 30, 10])]
    store.create_job(db, job_id="j", chunks=specs, input_path="/in", source_path="/s", output_path="/o",
                     frames_total=45, fps=30.0)
    assert [i for i, _ in chunks.take_chunks_to_enqueue(db, "j", window=3)] == [1, 2, 0]


def test_a_top_up_reads_the_window_not_the_whole_job(db):
    """Given a long job (500 chunks), a finish that tops the window up loads only the
    chunks it hands out, not every chunk of the job: that cost ~50 ms of CPU per finished
    chunk at 200 workers (issue 17.5, bench/bench_control_plane.py)."""
    from sqlalchemy import event

    from farm.state.db import Chunk

    make_job(db, chunks=500)
    assert len(chunks.take_chunks_to_enqueue(db, "job1", window=4)) == 4
    chunks.claim_chunk(db, "job1", 0, "w", 3, stale_after_s=120)
    loaded: list[int] = []
    listener = lambda target, _context: loaded.append(target.index)  # noqa: E731
    event.listen(Chunk, "load", listener)
    try:
        finish = chunks.finish_chunk(db, "job1", 0, "w", window=4)
    finally:
        event.remove(Chunk, "load", listener)
    assert finish.enqueue == [(4, 5)]
    assert len(loaded) <= 2, f"the top-up loaded {len(loaded)} chunk rows"   # the finished one, the one handed out


def finalizing_job(db: Database, owner: str = "fin-a") -> None:
    """job1 with its one chunk done, its finalize step owned by `owner`."""
    make_job(db, chunks=1)
    chunks.claim_chunk(db, "job1", 0, "w1", 3, stale_after_s=120)
    assert chunks.finish_chunk(db, "job1", 0, "w1").finalize is True
    assert finalizing.claim_finalize(db, "job1", owner, stale_after_s=60) is not None


def test_publish_and_finish_publishes_once_and_marks_done(db):
    finalizing_job(db)
    published = []
    assert finalizing.publish_and_finish(db, "job1", "fin-a", lambda: published.append(1),
                                         "published /out.mp4") == "done"
    assert published == [1] and store.get_job(db, "job1").state == "done"
    assert finalizing.publish_and_finish(db, "job1", "fin-a", lambda: published.append(2)) == "lost"
    assert published == [1]
    with pytest.raises(StateError, match="already done") as info:
        store.request_cancel(db, "job1")
    assert "/out.mp4" in info.value.message and "nothing to cancel" in info.value.message


def test_a_cancel_before_publishing_means_nothing_is_published(db):
    finalizing_job(db)
    assert store.request_cancel(db, "job1").state == "cancelled"
    published = []
    assert finalizing.publish_and_finish(db, "job1", "fin-a", lambda: published.append(1)) == "cancelled"
    job = store.get_job(db, "job1")
    assert published == [] and job.state == "cancelled" and job.error is None


def test_another_finalizer_cannot_publish(db):
    finalizing_job(db, owner="fin-a")
    assert finalizing.publish_and_finish(db, "job1", "fin-b", lambda: pytest.fail("published")) == "lost"
    assert store.get_job(db, "job1").state == "finalizing"


def test_a_failed_publish_changes_nothing(db):
    finalizing_job(db)

    def broken() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        finalizing.publish_and_finish(db, "job1", "fin-a", broken)
    job = store.get_job(db, "job1")
    assert job.state == "finalizing" and not job.cancel_requested


def test_a_cancel_while_publishing_waits_and_is_refused(db):
    """Given a cancel that arrives while the output is being published, the job ends done
    (published) and the cancel is refused: never a published output on a cancelled job."""
    finalizing_job(db)
    inside, results = threading.Event(), {}

    def slow_publish() -> None:
        inside.set()
        time.sleep(1.0)          # the cancel below is waiting for the job's lock meanwhile
        results["published_at"] = time.monotonic()

    def cancel() -> None:
        other = Database(db.url)
        try:
            store.request_cancel(other, "job1")
            results["cancel"] = "accepted"
        except StateError as exc:
            results["cancel"] = exc.message
        results["cancel_at"] = time.monotonic()
        other.dispose()

    publisher = threading.Thread(target=lambda: results.update(
        outcome=finalizing.publish_and_finish(db, "job1", "fin-a", slow_publish)))
    publisher.start()
    assert inside.wait(10)
    canceller = threading.Thread(target=cancel)
    canceller.start()
    publisher.join(30)
    canceller.join(30)
    assert results["outcome"] == "done"
    assert "already done" in results["cancel"], results
    assert results["cancel_at"] >= results["published_at"]
    job = store.get_job(db, "job1")
    assert job.state == "done" and not job.cancel_requested


def test_finish_chunk_records_the_result_and_tops_up_in_one_transaction(db):
    """One write per finished chunk: done + the worker's result + the job's next chunks."""
    from farm.state import registry
    make_job(db, chunks=4)
    registry.report_start(db, "w", 1, None, "")
    assert [i for i, _ in chunks.take_chunks_to_enqueue(db, "job1", window=2)] == [0, 1]
    # Given a chunk claimed with the worker's busy mark in the same transaction
    claim = chunks.claim_chunk(db, "job1", 0, "w", 3, stale_after_s=120,
                               also=lambda s: registry.mark_busy(s, "w", "job1", 0))
    assert claim.outcome == "run"
    row = next(r for r in registry.list_workers(db) if r.hostname == "w")
    assert (row.state, row.job_id, row.chunk_index) == ("busy", "job1", 0)
    # When it finishes with a window of 2
    finish = chunks.finish_chunk(db, "job1", 0, "w", window=2,
                                 also=lambda s: registry.mark_result(s, "w", ok=True, frames=10, fps=5.0))
    # Then the chunk is done, the worker idle with its frames counted, and chunk 2 is handed out
    assert finish.finalize is False and [i for i, _ in finish.enqueue] == [2]
    assert store.get_job(db, "job1").chunks[0].state == "done"
    row = next(r for r in registry.list_workers(db) if r.hostname == "w")
    assert (row.state, row.frames_total, row.fps) == ("idle", 10, 5.0)
    assert chunks.take_chunks_to_enqueue(db, "job1", window=2) == []


def test_finish_chunk_of_the_last_chunk_asks_for_finalize_and_nothing_else(db):
    make_job(db, chunks=2)
    for i in range(2):
        chunks.claim_chunk(db, "job1", i, "w", 3, stale_after_s=120)
    assert chunks.finish_chunk(db, "job1", 0, "w", window=4).finalize is False
    last = chunks.finish_chunk(db, "job1", 1, "w", window=4)
    assert last.finalize is True and last.enqueue == []
    # and a duplicate delivery of a done chunk changes nothing
    assert chunks.finish_chunk(db, "job1", 1, "w", window=4) == chunks.Finish(False)


def test_a_hook_that_fails_rolls_the_whole_claim_back(db):
    make_job(db, chunks=1)

    def broken(_session):
        raise RuntimeError("registry write failed")

    with pytest.raises(RuntimeError):
        chunks.claim_chunk(db, "job1", 0, "w", 3, stale_after_s=120, also=broken)
    chunk = store.get_job(db, "job1").chunks[0]
    assert (chunk.state, chunk.attempts) == ("pending", 0)


def test_schema_head_constant_is_alembics_head(db):
    """upgrade_schema's fast path compares with SCHEMA_HEAD: it must be the newest migration."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from farm.state.db import SCHEMA_HEAD, migrations_dir

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_HEAD == current_revision(db)
