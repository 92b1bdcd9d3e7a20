"""A chunk's life on the workers, each step in one transaction: handed to the broker
(the job's window), claimed (attempts counted here, since Celery does not count
redeliveries), beating, finished or failed, and released when its worker stops.

finish_chunk decides which worker finished the last chunk: exactly one caller gets
`Finish.finalize` True and enqueues the finalize step (farm.state.finalizing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy import func, select

from farm.state.db import Chunk, Database, Job, utcnow
from farm.state.states import JOB_TERMINAL, ChunkState, JobState
from farm.state.store import (
    ChunkView,
    JobView,
    add_event,
    chunk_snapshot,
    is_rendering,
    is_silent,
    job_snapshot,
    lock_chunk,
    lock_job,
    set_chunk_state,
    set_job_state,
)

SessionHook = Callable[[Any], None]
"""A write to run inside a chunk transaction (given the open session)."""


@dataclass
class Claim:
    """What `claim_chunk` decided: run it (`chunk` set), skip it, or give up on it."""

    outcome: str                    # "run" | "skip" | "busy" | "exhausted"
    job: JobView | None = None
    chunk: ChunkView | None = None
    reason: str = ""


def claim_chunk(db: Database, job_id: str, index: int, worker: str, max_attempts: int, *,
                stale_after_s: float, also: SessionHook | None = None) -> Claim:
    """Take a chunk for `worker`, counting the attempt; a done chunk or a job that is not
    rendering (JOB_RENDERING) is skipped.

    A chunk already running whose owner is not silent (is_silent with `stale_after_s`,
    settings.stale_heartbeat_s) is "busy" (a duplicate delivery): the caller checks again
    later instead of running it twice; a silent owner's chunk is taken over.
    `also(session)` runs in the same transaction when the chunk is taken (the worker's own
    row: one write transaction per claim instead of two).
    """
    with db.transaction() as s:
        job = lock_job(s, job_id)
        chunk = lock_chunk(s, job_id, index)
        if not is_rendering(job):
            return Claim("skip", reason=f"job is {job.state}")
        if chunk.state in (ChunkState.DONE, ChunkState.FAILED, ChunkState.CANCELLED):
            return Claim("skip", reason=f"chunk is {chunk.state}")
        if chunk.state == ChunkState.RUNNING and not is_silent(chunk.heartbeat_at, stale_after_s):
            return Claim("busy", reason=f"running on {chunk.worker}, heartbeat {chunk.heartbeat_at:%H:%M:%S}")
        if chunk.attempts >= max_attempts:
            msg = (f"chunk {index} of job {job_id} gave up after {chunk.attempts} attempts"
                   f" (last error: {chunk.error or 'worker lost'})")
            set_chunk_state(chunk, ChunkState.FAILED)
            chunk.error = chunk.error or "worker lost"
            set_job_state(job, JobState.FAILED)
            job.error, job.finished_at = msg, utcnow()
            add_event(s, job_id, "chunk_exhausted", msg, index)
            return Claim("exhausted", reason=msg)
        set_chunk_state(chunk, ChunkState.RUNNING)
        chunk.attempts += 1
        chunk.worker = worker
        chunk.frames_done = 0
        chunk.started_at = chunk.heartbeat_at = utcnow()
        chunk.finished_at = None
        if job.state == JobState.QUEUED:
            set_job_state(job, JobState.RUNNING)
        add_event(s, job_id, "chunk_claimed", f"attempt {chunk.attempts} on {worker}", index)
        if also is not None:
            also(s)
        s.flush()
        return Claim("run", job=job_snapshot(job, []), chunk=chunk_snapshot(chunk))


def heartbeat(db: Database, job_id: str, index: int, frames_done: int) -> bool:
    """Store progress (frames done in this chunk); return True if the job was cancelled."""
    with db.transaction() as s:
        chunk = lock_chunk(s, job_id, index)
        if chunk.state == ChunkState.RUNNING:
            chunk.frames_done = frames_done
            chunk.heartbeat_at = utcnow()
        job = s.get(Job, job_id)
        return bool(job.cancel_requested) or job.state == JobState.CANCELLED


@dataclass
class Finish:
    """What `finish_chunk` decided: enqueue finalize (exactly one caller), and/or the job's
    next chunks to hand to the broker [(index, priority)]."""

    finalize: bool
    enqueue: list[tuple[int, int]] = field(default_factory=list)


def finish_chunk(db: Database, job_id: str, index: int, worker: str, window: int = 0,
                 also: SessionHook | None = None, changed: tuple[int, int] | None = None,
                 people: dict[str, int] | None = None) -> Finish:
    """Mark a chunk done and, with `window` > 0, top the job's window up, in one transaction.

    `changed`: (frames, faces) the worker's chain replaced faces in (None: not counted);
    `people`: with --map, frames per mapping ({index of the mapping as text: frames}).
    `also(session)` runs in the same transaction (the worker's result on its own row). One
    write per finished chunk instead of three keeps SQLite's write lock free for the other
    workers (bench/bench_scaling.py).
    """
    with db.transaction() as s:
        job = lock_job(s, job_id)
        chunk = lock_chunk(s, job_id, index)
        if also is not None:
            also(s)   # after the job and chunk locks, in the same order as claim_chunk
        if chunk.state != ChunkState.RUNNING:
            return Finish(False)  # done by another delivery, or cancelled/failed meanwhile: not wanted
        set_chunk_state(chunk, ChunkState.DONE)
        chunk.frames_done, chunk.finished_at, chunk.error = chunk.frames_planned, utcnow(), None
        chunk.worker = worker
        chunk.frames_changed, chunk.faces_changed = changed if changed is not None else (None, None)
        chunk.people_changed = people
        add_event(s, job_id, "chunk_done", f"by {worker}", index)
        s.flush()
        left = s.execute(select(func.count()).select_from(Chunk).where(
            Chunk.job_id == job_id, Chunk.state != ChunkState.DONE.value)).scalar_one()
        if left == 0 and is_rendering(job):
            set_job_state(job, JobState.FINALIZING)
            add_event(s, job_id, "finalizing", "all chunks done")
            return Finish(True)
        return Finish(False, take_chunks_locked(s, job, window) if window > 0 else [])


def fail_chunk(db: Database, job_id: str, index: int, error: str, *, retryable: bool, max_attempts: int) -> str:
    """Record a chunk failure; back to pending while attempts remain, else fail the job."""
    with db.transaction() as s:
        job = lock_job(s, job_id)
        chunk = lock_chunk(s, job_id, index)
        if chunk.state != ChunkState.RUNNING:
            return chunk.state
        chunk.error = error[:4000]
        add_event(s, job_id, "chunk_error", f"attempt {chunk.attempts}: {error}", index)
        if job.cancel_requested:
            set_chunk_state(chunk, ChunkState.CANCELLED)
            return chunk.state
        if retryable and chunk.attempts < max_attempts:
            set_chunk_state(chunk, ChunkState.PENDING)
            return chunk.state
        set_chunk_state(chunk, ChunkState.FAILED)
        chunk.finished_at = utcnow()
        if JobState(job.state) not in JOB_TERMINAL:
            set_job_state(job, JobState.FAILED)
            job.error = f"chunk {index} failed after {chunk.attempts} attempt(s): {error}"
            job.finished_at = utcnow()
        return chunk.state


def take_chunks_to_enqueue(db: Database, job_id: str, window: int) -> list[tuple[int, int]]:
    """Mark up to `window` chunks of a live job as handed to the broker; returns [(index, priority)].

    Each job has at most `window` chunks waiting in the broker at once, longest first, so a
    long job cannot fill the queue ahead of a short one submitted after it: as its chunks
    finish, the job is topped up again (the chunk runner, the reaper). Running chunks do not
    count: a job alone on a farm of 200 GPUs keeps them all busy, not `window` of them
    (bench/bench_control_plane.py).
    """
    with db.transaction() as s:
        return take_chunks_locked(s, lock_job(s, job_id), window)


def take_chunks_locked(s: Any, job: Job, window: int) -> list[tuple[int, int]]:
    """take_chunks_to_enqueue inside an open transaction, the job row already locked."""
    if not is_rendering(job):
        return []
    # A count and at most `window` rows, never the whole job: a long film has thousands of
    # chunks, and loading them all on every finish cost ~50 ms of CPU per chunk at 200
    # workers (bench/bench_control_plane.py). Every top-up holds the job's row lock.
    waiting = s.execute(select(func.count()).select_from(Chunk).where(
        Chunk.job_id == job.id, Chunk.queued_at.is_not(None), Chunk.state == ChunkState.PENDING.value)).scalar_one()
    if waiting >= window:
        return []
    picked = s.execute(select(Chunk).where(
        Chunk.job_id == job.id, Chunk.queued_at.is_(None), Chunk.state == ChunkState.PENDING.value)
        .order_by(Chunk.frames_planned.desc(), Chunk.index).limit(window - waiting).with_for_update()).scalars().all()
    now = utcnow()
    for c in picked:
        c.queued_at = now
    return [(c.index, job.priority) for c in picked]


def release_chunks(db: Database, workers: list[str]) -> int:
    """Give back the running chunks of workers that stopped (a node shut down): pending again."""
    if not workers:
        return 0
    with db.transaction() as s:
        chunks = s.execute(select(Chunk).where(Chunk.state == ChunkState.RUNNING.value,
                                               Chunk.worker.in_(workers)).with_for_update()).scalars().all()
        for c in chunks:
            set_chunk_state(c, ChunkState.PENDING)
            c.queued_at, c.frames_done = None, 0
            add_event(s, c.job_id, "chunk_released", f"{c.worker} stopped", c.index)
        return len(chunks)
