"""Who owns a job's finalize step, each step in one transaction: the claim (a redelivered
finalize task finds it owned and does nothing), the owner's beat, sending chunks whose
output was lost back to render, and publishing the output together with marking the
job done, so that a cancel is either before publishing or refused after it.
"""

from __future__ import annotations

from typing import Callable

from sqlalchemy import select

from farm.state.chunks import take_chunks_locked
from farm.state.db import Chunk, Database, utcnow
from farm.state.states import ChunkState, JobState
from farm.state.store import (
    JobView,
    add_event,
    is_silent,
    job_snapshot,
    lock_chunk,
    lock_job,
    set_chunk_state,
    set_job_state,
)


def claim_finalize(db: Database, job_id: str, owner: str, stale_after_s: float) -> JobView | None:
    """Own the finalize step of a job, unless another live owner has it or it is over.

    An owner is live while it beats (touch_finalize) within `stale_after_s` seconds
    (is_silent, the same rule as for running chunks).
    """
    with db.transaction() as s:
        job = lock_job(s, job_id)
        if job.state != JobState.FINALIZING or job.cancel_requested:
            return None
        if job.finalize_owner and job.finalize_owner != owner and \
                not is_silent(job.finalize_claimed_at, stale_after_s):
            return None
        job.finalize_owner, job.finalize_claimed_at = owner, utcnow()
        add_event(s, job_id, "finalize_claimed", owner)
        chunks = s.execute(select(Chunk).where(Chunk.job_id == job_id)).scalars().all()
        return job_snapshot(job, chunks)


def touch_finalize(db: Database, job_id: str, owner: str) -> bool:
    """The finalize owner's heartbeat; False once `owner` no longer owns a finalizing job."""
    with db.transaction() as s:
        job = lock_job(s, job_id)
        if job.state != JobState.FINALIZING or job.finalize_owner != owner:
            return False
        job.finalize_claimed_at = utcnow()
        return True


def requeue_lost_chunks(db: Database, job_id: str, owner: str, lost: dict[int, str],
                        window: int) -> list[tuple[int, int]] | None:
    """Done chunks whose output is gone or wrong (`lost`: index -> reason) go back to pending.

    Only the finalize owner of a finalizing job may do this (None otherwise: nothing
    changed). The job goes back to running and gives up its finalize claim; the attempts
    already made count, so a chunk whose output keeps getting lost fails the job after
    max_attempts (chunks.claim_chunk). Returns the chunks to enqueue [(index, priority)].
    """
    with db.transaction() as s:
        job = lock_job(s, job_id)
        if job.state != JobState.FINALIZING or job.finalize_owner != owner or job.cancel_requested:
            return None
        for index, reason in sorted(lost.items()):
            chunk = lock_chunk(s, job_id, index)
            if chunk.state != ChunkState.DONE:
                continue
            set_chunk_state(chunk, ChunkState.PENDING)
            chunk.error = reason[:4000]
            chunk.queued_at = chunk.finished_at = None
            chunk.frames_done = 0
            add_event(s, job_id, "chunk_lost", f"{reason}; rendering it again", index)
        set_job_state(job, JobState.RUNNING)
        job.finalize_owner = job.finalize_claimed_at = None
        s.flush()
        return take_chunks_locked(s, job, window)


def publish_and_finish(db: Database, job_id: str, owner: str, publish: Callable[[], None],
                       message: str = "") -> str:
    """Publish a job's output and mark the job done in one transaction, under its row lock.

    `publish` (a quick atomic rename or link, no copying) runs only while the job is
    finalizing, owned by `owner` and not cancelled. A cancel that arrives meanwhile waits
    for the lock (SELECT ... FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite) and then
    finds the job done, which store.request_cancel refuses. Returns "done"; "cancelled" or
    "lost" (another finalizer owns the job now) when nothing was published. If `publish`
    raises, the job is left as it was and the error propagates.
    """
    with db.transaction() as s:
        job = lock_job(s, job_id)
        if job.cancel_requested or job.state == JobState.CANCELLED:
            add_event(s, job_id, "publish_skipped", "cancelled before publishing; nothing published")
            return "cancelled"
        if job.state != JobState.FINALIZING or job.finalize_owner != owner:
            return "lost"
        publish()
        set_job_state(job, JobState.DONE)
        job.finished_at, job.error = utcnow(), None
        add_event(s, job_id, "done", message)
        return "done"
