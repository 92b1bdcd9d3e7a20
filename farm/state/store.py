"""Every change of job and chunk state, each in one transaction.

The database is the truth about jobs: these functions decide who runs a chunk
(attempts counted here, since Celery does not count redeliveries), which worker
finishes the last chunk (exactly one caller gets `True` from `complete_chunk`), and
who owns the finalize step (`claim_finalize`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, NamedTuple

from sqlalchemy import func, select

from farm.errors import JobNotFound, StateError
from farm.state.db import Chunk, Database, Event, Job, utcnow
from farm.state.states import JOB_LIVE, JOB_RENDERING, JOB_TERMINAL, ChunkState, JobState, check_chunk, check_job

SessionHook = Callable[[Any], None]
"""A write to run inside a store transaction (given the open session)."""


@dataclass
class ChunkSpec:
    """A planned chunk as submit records it."""

    index: int
    first_frame: int
    frames_planned: int
    plan: dict[str, Any]
    input_path: str
    output_path: str


@dataclass
class ChunkView:
    index: int
    state: str
    attempts: int
    worker: str | None
    first_frame: int
    frames_planned: int
    frames_done: int
    plan: dict[str, Any]
    input_path: str
    output_path: str
    started_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None
    frames_changed: int | None = None   # frames where the worker replaced a face (None: not counted)
    faces_changed: int | None = None    # faces replaced, summed over those frames

    @property
    def frames_rendered(self) -> int:
        """The frames of this chunk that count as done, the farm's one rule for "frames done":
        all of a done chunk, the progress of a running one (at most its planned frames), none
        of a chunk that must start again (pending, failed, cancelled: its next attempt
        starts from frame 0, so the progress of an attempt that stopped does not count)."""
        if self.state == ChunkState.DONE:
            return self.frames_planned
        if self.state == ChunkState.RUNNING:
            return max(0, min(self.frames_done, self.frames_planned))
        return 0

    @property
    def seconds(self) -> float | None:
        """Wall time of the chunk so far, in seconds."""
        if not self.started_at:
            return None
        end = self.finished_at or self.heartbeat_at or self.started_at
        return (end - self.started_at).total_seconds()


@dataclass
class JobView:
    """A detached snapshot of a job and its chunks (safe to use after the session closes)."""

    id: str
    state: str
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None
    input_path: str
    source_path: str
    output_path: str
    overwrite: bool
    keep_chunks: bool
    priority: int
    options: dict[str, Any]
    encoder: dict[str, Any]
    models: dict[str, Any]
    frames_total: int
    fps: float
    chunk_count: int
    cancel_requested: bool
    error: str | None
    chunks: list[ChunkView] = field(default_factory=list)
    consent: str | None = None       # the job's --consent reference
    provenance: str | None = None    # what finalize signed into the output (or why not)

    @property
    def frames_done(self) -> int:
        """Frames of the job done so far: the sum of its chunks' ChunkView.frames_rendered."""
        return sum(c.frames_rendered for c in self.chunks)

    @property
    def chunks_done(self) -> int:
        return sum(1 for c in self.chunks if c.state == ChunkState.DONE)

    @property
    def terminal(self) -> bool:
        return JobState(self.state) in JOB_TERMINAL

    @property
    def live(self) -> bool:
        """Unfinished: queued, running or finalizing (farm.state.states.JOB_LIVE)."""
        return JobState(self.state) in JOB_LIVE


def _chunk_view(c: Chunk) -> ChunkView:
    return ChunkView(c.index, c.state, c.attempts, c.worker, c.first_frame, c.frames_planned, c.frames_done,
                     dict(c.plan), c.input_path, c.output_path, c.started_at, c.heartbeat_at, c.finished_at,
                     c.error, c.frames_changed, c.faces_changed)


def _job_view(job: Job, chunks: Iterable[Chunk]) -> JobView:
    return JobView(
        job.id, job.state, job.created_at, job.updated_at, job.finished_at, job.input_path, job.source_path,
        job.output_path, job.overwrite, job.keep_chunks, job.priority, dict(job.options), dict(job.encoder),
        dict(job.models), job.frames_total, job.fps, job.chunk_count, job.cancel_requested, job.error,
        sorted((_chunk_view(c) for c in chunks), key=lambda c: c.index), job.consent, job.provenance,
    )


def _lock_job(session: Any, job_id: str) -> Job:
    job = session.execute(select(Job).where(Job.id == job_id).with_for_update()).scalar_one_or_none()
    if job is None:
        raise JobNotFound(f"no job {job_id!r}", hint="`farm jobs` lists the jobs this farm knows")
    return job


def _lock_chunk(session: Any, job_id: str, index: int) -> Chunk:
    chunk = session.execute(
        select(Chunk).where(Chunk.job_id == job_id, Chunk.index == index).with_for_update()
    ).scalar_one_or_none()
    if chunk is None:
        raise JobNotFound(f"job {job_id!r} has no chunk {index}")
    return chunk


def _event(session: Any, job_id: str, kind: str, message: str = "", chunk: int | None = None) -> None:
    session.add(Event(job_id=job_id, chunk_index=chunk, kind=kind, message=message[:4000]))


def _set_job(job: Job, state: JobState) -> None:
    if job.state != state:
        job.state = check_job(job.state, state).value


def _set_chunk(chunk: Chunk, state: ChunkState) -> None:
    chunk.state = check_chunk(chunk.state, state).value


# ---- liveness ------------------------------------------------------------------------

def stale_cutoff(stale_after_s: float) -> dt.datetime:
    """The liveness rule, for chunks and finalize steps alike: an owner whose last beat
    (chunk heartbeat_at, job finalize_claimed_at) is older than this, `stale_after_s`
    seconds ago (settings.stale_heartbeat_s), is gone, and its work may be taken over."""
    return utcnow() - dt.timedelta(seconds=stale_after_s)


def is_silent(beat_at: dt.datetime | None, stale_after_s: float) -> bool:
    """True if an owner that last beat at `beat_at` (None: never) counts as gone (stale_cutoff)."""
    return beat_at is None or beat_at < stale_cutoff(stale_after_s)


def beat_interval_s(stale_after_s: float) -> float:
    """How often an owner beats (seconds): several beats per stale time, at most every 5 s."""
    return max(0.2, min(5.0, stale_after_s / 4))


def _rendering(job: Job) -> bool:
    """A job whose chunks may still be claimed and enqueued (JOB_RENDERING, not being cancelled)."""
    return JobState(job.state) in JOB_RENDERING and not job.cancel_requested


def _rendering_sql() -> tuple[Any, Any]:
    """_rendering as a WHERE clause on Job."""
    return Job.state.in_([st.value for st in JOB_RENDERING]), Job.cancel_requested.is_(False)


# ---- create and read ---------------------------------------------------------------

def create_job(db: Database, *, job_id: str, chunks: list[ChunkSpec],
               notes: Iterable[tuple[str, str]] = (), **fields: Any) -> None:
    """Record a job and all its chunks (state queued/pending) in one transaction.

    notes: (kind, message) events logged with it (what was ingested, which video stream).
    """
    with db.transaction() as s:
        s.add(Job(id=job_id, state=JobState.QUEUED.value, chunk_count=len(chunks), **fields))
        s.flush()
        for spec in chunks:
            s.add(Chunk(job_id=job_id, state=ChunkState.PENDING.value, index=spec.index,
                        first_frame=spec.first_frame, frames_planned=spec.frames_planned, plan=spec.plan,
                        input_path=spec.input_path, output_path=spec.output_path))
        _event(s, job_id, "submitted", f"{len(chunks)} chunks, {fields.get('frames_total')} frames")
        for kind, message in notes:
            _event(s, job_id, kind, message)


def get_job(db: Database, job_id: str) -> JobView:
    with db.transaction() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r}", hint="`farm jobs` lists the jobs this farm knows")
        chunks = s.execute(select(Chunk).where(Chunk.job_id == job_id)).scalars().all()
        return _job_view(job, chunks)


def list_jobs(db: Database, limit: int | None = 20, states: Iterable[str] | None = None) -> list[JobView]:
    """The newest `limit` jobs (None: all), optionally only those in `states`."""
    with db.transaction() as s:
        q = select(Job).order_by(Job.created_at.desc(), Job.id)
        if limit is not None:
            q = q.limit(limit)
        if states:
            q = q.where(Job.state.in_([JobState(x).value for x in states]))
        jobs = s.execute(q).scalars().all()
        ids = [j.id for j in jobs]
        chunks = s.execute(select(Chunk).where(Chunk.job_id.in_(ids))).scalars().all() if ids else []
        by_job: dict[str, list[Chunk]] = {}
        for c in chunks:
            by_job.setdefault(c.job_id, []).append(c)
        return [_job_view(j, by_job.get(j.id, [])) for j in jobs]


def live_jobs(db: Database, limit: int | None = None) -> list[JobView]:
    """The unfinished jobs (JOB_LIVE), newest first: what the metrics and `farm status
    --follow` show progress of."""
    return list_jobs(db, limit=limit, states=JOB_LIVE)


def events(db: Database, job_id: str) -> list[tuple[dt.datetime, int | None, str, str]]:
    with db.transaction() as s:
        rows = s.execute(select(Event).where(Event.job_id == job_id).order_by(Event.id)).scalars().all()
        return [(e.at, e.chunk_index, e.kind, e.message) for e in rows]


# ---- chunk life cycle ----------------------------------------------------------------

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
        job = _lock_job(s, job_id)
        chunk = _lock_chunk(s, job_id, index)
        if not _rendering(job):
            return Claim("skip", reason=f"job is {job.state}")
        if chunk.state in (ChunkState.DONE, ChunkState.FAILED, ChunkState.CANCELLED):
            return Claim("skip", reason=f"chunk is {chunk.state}")
        if chunk.state == ChunkState.RUNNING and not is_silent(chunk.heartbeat_at, stale_after_s):
            return Claim("busy", reason=f"running on {chunk.worker}, heartbeat {chunk.heartbeat_at:%H:%M:%S}")
        if chunk.attempts >= max_attempts:
            msg = (f"chunk {index} of job {job_id} gave up after {chunk.attempts} attempts"
                   f" (last error: {chunk.error or 'worker lost'})")
            _set_chunk(chunk, ChunkState.FAILED)
            chunk.error = chunk.error or "worker lost"
            _set_job(job, JobState.FAILED)
            job.error, job.finished_at = msg, utcnow()
            _event(s, job_id, "chunk_exhausted", msg, index)
            return Claim("exhausted", reason=msg)
        _set_chunk(chunk, ChunkState.RUNNING)
        chunk.attempts += 1
        chunk.worker = worker
        chunk.frames_done = 0
        chunk.started_at = chunk.heartbeat_at = utcnow()
        chunk.finished_at = None
        if job.state == JobState.QUEUED:
            _set_job(job, JobState.RUNNING)
        _event(s, job_id, "chunk_claimed", f"attempt {chunk.attempts} on {worker}", index)
        if also is not None:
            also(s)
        s.flush()
        return Claim("run", job=_job_view(job, []), chunk=_chunk_view(chunk))


def heartbeat(db: Database, job_id: str, index: int, frames_done: int) -> bool:
    """Store progress (frames done in this chunk); return True if the job was cancelled."""
    with db.transaction() as s:
        chunk = _lock_chunk(s, job_id, index)
        if chunk.state == ChunkState.RUNNING:
            chunk.frames_done = frames_done
            chunk.heartbeat_at = utcnow()
        job = s.get(Job, job_id)
        return bool(job.cancel_requested) or job.state == JobState.CANCELLED


def complete_chunk(db: Database, job_id: str, index: int, worker: str) -> bool:
    """Mark a chunk done; True for exactly one caller: the one that must enqueue finalize."""
    return finish_chunk(db, job_id, index, worker).finalize


@dataclass
class Finish:
    """What `finish_chunk` decided: enqueue finalize (exactly one caller), and/or the job's
    next chunks to hand to the broker [(index, priority)]."""

    finalize: bool
    enqueue: list[tuple[int, int]] = field(default_factory=list)


def finish_chunk(db: Database, job_id: str, index: int, worker: str, window: int = 0,
                 also: SessionHook | None = None, changed: tuple[int, int] | None = None) -> Finish:
    """Mark a chunk done and, with `window` > 0, top the job's window up, in one transaction.

    `changed`: (frames, faces) the worker's chain replaced faces in (None: not counted).
    `also(session)` runs in the same transaction (the worker's result on its own row). One
    write per finished chunk instead of three keeps SQLite's write lock free for the other
    workers (bench/bench_scaling.py).
    """
    with db.transaction() as s:
        job = _lock_job(s, job_id)
        chunk = _lock_chunk(s, job_id, index)
        if also is not None:
            also(s)   # after the job and chunk locks, in the same order as claim_chunk
        if chunk.state != ChunkState.RUNNING:
            return Finish(False)  # done by another delivery, or cancelled/failed meanwhile: not wanted
        _set_chunk(chunk, ChunkState.DONE)
        chunk.frames_done, chunk.finished_at, chunk.error = chunk.frames_planned, utcnow(), None
        chunk.worker = worker
        chunk.frames_changed, chunk.faces_changed = changed if changed is not None else (None, None)
        _event(s, job_id, "chunk_done", f"by {worker}", index)
        s.flush()
        left = s.execute(select(func.count()).select_from(Chunk).where(
            Chunk.job_id == job_id, Chunk.state != ChunkState.DONE.value)).scalar_one()
        if left == 0 and _rendering(job):
            _set_job(job, JobState.FINALIZING)
            _event(s, job_id, "finalizing", "all chunks done")
            return Finish(True)
        return Finish(False, _take_chunks(s, job, window) if window > 0 else [])


def fail_chunk(db: Database, job_id: str, index: int, error: str, *, retryable: bool, max_attempts: int) -> str:
    """Record a chunk failure; back to pending while attempts remain, else fail the job."""
    with db.transaction() as s:
        job = _lock_job(s, job_id)
        chunk = _lock_chunk(s, job_id, index)
        if chunk.state != ChunkState.RUNNING:
            return chunk.state
        chunk.error = error[:4000]
        _event(s, job_id, "chunk_error", f"attempt {chunk.attempts}: {error}", index)
        if job.cancel_requested:
            _set_chunk(chunk, ChunkState.CANCELLED)
            return chunk.state
        if retryable and chunk.attempts < max_attempts:
            _set_chunk(chunk, ChunkState.PENDING)
            return chunk.state
        _set_chunk(chunk, ChunkState.FAILED)
        chunk.finished_at = utcnow()
        if JobState(job.state) not in JOB_TERMINAL:
            _set_job(job, JobState.FAILED)
            job.error = f"chunk {index} failed after {chunk.attempts} attempt(s): {error}"
            job.finished_at = utcnow()
        return chunk.state


def take_chunks_to_enqueue(db: Database, job_id: str, window: int) -> list[tuple[int, int]]:
    """Mark up to `window` chunks of a live job as handed to the broker; returns [(index, priority)].

    Each job has at most `window` chunks in the broker at once, longest first, so a long job
    cannot fill the queue ahead of a short one submitted after it: as its chunks finish,
    the job is topped up again (chunk_work, the reaper).
    """
    with db.transaction() as s:
        return _take_chunks(s, _lock_job(s, job_id), window)


def _take_chunks(s: Any, job: Job, window: int) -> list[tuple[int, int]]:
    """take_chunks_to_enqueue inside an open transaction, the job row already locked."""
    if not _rendering(job):
        return []
    chunks = s.execute(select(Chunk).where(Chunk.job_id == job.id).with_for_update()).scalars().all()
    live = [c for c in chunks if c.queued_at is not None and c.state in (ChunkState.PENDING, ChunkState.RUNNING)]
    waiting = sorted((c for c in chunks if c.queued_at is None and c.state == ChunkState.PENDING),
                     key=lambda c: (-c.frames_planned, c.index))
    picked = waiting[:max(0, window - len(live))]
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
            _set_chunk(c, ChunkState.PENDING)
            c.queued_at, c.frames_done = None, 0
            _event(s, c.job_id, "chunk_released", f"{c.worker} stopped", c.index)
        return len(chunks)


def rendering_job_ids(db: Database) -> list[str]:
    """Jobs that still have chunks to run (JOB_RENDERING: queued or running)."""
    with db.transaction() as s:
        return list(s.execute(select(Job.id).where(*_rendering_sql())).scalars())


# ---- job life cycle ------------------------------------------------------------------

def claim_finalize(db: Database, job_id: str, owner: str, stale_after_s: float) -> JobView | None:
    """Own the finalize step of a job, unless another live owner has it or it is over.

    An owner is live while it beats (touch_finalize) within `stale_after_s` seconds
    (is_silent, the same rule as for running chunks).
    """
    with db.transaction() as s:
        job = _lock_job(s, job_id)
        if job.state != JobState.FINALIZING or job.cancel_requested:
            return None
        if job.finalize_owner and job.finalize_owner != owner and \
                not is_silent(job.finalize_claimed_at, stale_after_s):
            return None
        job.finalize_owner, job.finalize_claimed_at = owner, utcnow()
        _event(s, job_id, "finalize_claimed", owner)
        chunks = s.execute(select(Chunk).where(Chunk.job_id == job_id)).scalars().all()
        return _job_view(job, chunks)


def touch_finalize(db: Database, job_id: str, owner: str) -> bool:
    """The finalize owner's heartbeat; False once `owner` no longer owns a finalizing job."""
    with db.transaction() as s:
        job = _lock_job(s, job_id)
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
    max_attempts (claim_chunk). Returns the chunks to enqueue [(index, priority)].
    """
    with db.transaction() as s:
        job = _lock_job(s, job_id)
        if job.state != JobState.FINALIZING or job.finalize_owner != owner or job.cancel_requested:
            return None
        for index, reason in sorted(lost.items()):
            chunk = _lock_chunk(s, job_id, index)
            if chunk.state != ChunkState.DONE:
                continue
            _set_chunk(chunk, ChunkState.PENDING)
            chunk.error = reason[:4000]
            chunk.queued_at = chunk.finished_at = None
            chunk.frames_done = 0
            _event(s, job_id, "chunk_lost", f"{reason}; rendering it again", index)
        _set_job(job, JobState.RUNNING)
        job.finalize_owner = job.finalize_claimed_at = None
        s.flush()
        return _take_chunks(s, job, window)


def publish_and_finish(db: Database, job_id: str, owner: str, publish: Callable[[], None],
                       message: str = "") -> str:
    """Publish a job's output and mark the job done in one transaction, under its row lock.

    `publish` (a quick atomic rename or link, no copying) runs only while the job is
    finalizing, owned by `owner` and not cancelled. A cancel that arrives meanwhile waits
    for the lock (SELECT ... FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite) and then
    finds the job done, which request_cancel refuses. Returns "done"; "cancelled" or "lost"
    (another finalizer owns the job now) when nothing was published. If `publish` raises,
    the job is left as it was and the error propagates.
    """
    with db.transaction() as s:
        job = _lock_job(s, job_id)
        if job.cancel_requested or job.state == JobState.CANCELLED:
            _event(s, job_id, "publish_skipped", "cancelled before publishing; nothing published")
            return "cancelled"
        if job.state != JobState.FINALIZING or job.finalize_owner != owner:
            return "lost"
        publish()
        _set_job(job, JobState.DONE)
        job.finished_at, job.error = utcnow(), None
        _event(s, job_id, "done", message)
        return "done"


def fail_job(db: Database, job_id: str, error: str) -> None:
    with db.transaction() as s:
        job = _lock_job(s, job_id)
        if JobState(job.state) in JOB_TERMINAL:
            return
        _set_job(job, JobState.FAILED)
        job.error, job.finished_at = error[:4000], utcnow()
        _event(s, job_id, "failed", error)


def request_cancel(db: Database, job_id: str) -> JobView:
    """Cancel a job: workers stop between frames, nothing is published.

    Refused (StateError) once the job is done; publishing and marking done happen
    together under the job's lock (publish_and_finish), so a cancel is either before
    them (nothing is published) or after them (refused).
    """
    with db.transaction() as s:
        job = _lock_job(s, job_id)
        if job.state == JobState.DONE:
            raise StateError(f"job {job_id} is already done: its output {job.output_path} was published "
                             f"before the cancel arrived, so there is nothing to cancel",
                             hint=f"delete {job.output_path} if you do not want it")
        job.cancel_requested = True
        if JobState(job.state) not in JOB_TERMINAL:
            _set_job(job, JobState.CANCELLED)
            job.finished_at = utcnow()
        chunks = s.execute(select(Chunk).where(Chunk.job_id == job_id).with_for_update()).scalars().all()
        for c in chunks:
            if c.state in (ChunkState.PENDING, ChunkState.RUNNING):
                _set_chunk(c, ChunkState.CANCELLED)
        _event(s, job_id, "cancelled", "by request")
        return _job_view(job, chunks)


def retry_job(db: Database, job_id: str) -> list[int]:
    """Put a failed or cancelled job back in the queue; return the chunks to enqueue again."""
    with db.transaction() as s:
        job = _lock_job(s, job_id)
        if job.state not in (JobState.FAILED, JobState.CANCELLED):
            raise StateError(f"job {job_id} is {job.state}; only failed or cancelled jobs can be retried")
        _set_job(job, JobState.QUEUED)
        job.cancel_requested, job.error, job.finished_at = False, None, None
        job.finalize_owner = job.finalize_claimed_at = None
        chunks = s.execute(select(Chunk).where(Chunk.job_id == job_id).with_for_update()).scalars().all()
        todo = []
        for c in chunks:
            if c.state != ChunkState.DONE:
                if c.state != ChunkState.PENDING:
                    _set_chunk(c, ChunkState.PENDING)
                c.attempts, c.error, c.frames_done, c.queued_at = 0, None, 0, None
                todo.append(c.index)
        if not todo:  # every chunk was done: only the finalize step failed
            _set_job(job, JobState.FINALIZING)
        _event(s, job_id, "retried", f"{len(todo)} chunks to run again")
        return sorted(todo)


def note(db: Database, job_id: str, kind: str, message: str, chunk: int | None = None) -> None:
    """Append an event to a job's log."""
    with db.transaction() as s:
        _event(s, job_id, kind, message, chunk)


class UnfinishedWork(NamedTuple):
    """What the broker may have lost, read in one transaction (unfinished_work)."""

    chunks: list[tuple[str, int, int]]   # (job_id, chunk_index, priority) to enqueue again
    finals: list[str]                    # finalizing jobs to finalize again
    stale_chunks: frozenset[tuple[str, int]] = frozenset()   # of `chunks`: running, owner silent
    stale_finals: frozenset[str] = frozenset()               # of `finals`: claimed, owner silent


def unfinished_work(db: Database, stale_after_s: float) -> UnfinishedWork:
    """Chunks and finalize steps that the broker may have lost, for re-enqueueing.

    chunks: pending chunks of rendering jobs (JOB_RENDERING) already handed to the broker,
    and their running chunks whose owner is silent (is_silent with `stale_after_s`,
    settings.stale_heartbeat_s); finals: finalizing jobs that no live owner holds (never
    claimed, or the owner went silent: the same rule claim_finalize applies). stale_chunks
    and stale_finals say which of them had an owner that went silent.
    """
    with db.transaction() as s:
        rows = s.execute(
            select(Chunk.job_id, Chunk.index, Job.priority, Chunk.state, Chunk.heartbeat_at)
            .join(Job, Job.id == Chunk.job_id)
            .where(*_rendering_sql(), Chunk.queued_at.is_not(None),
                   Chunk.state.in_([ChunkState.PENDING.value, ChunkState.RUNNING.value]))
        ).all()
        stale = frozenset((j, i) for j, i, _p, st, hb in rows
                          if st == ChunkState.RUNNING and is_silent(hb, stale_after_s))
        chunks = [(j, i, p) for j, i, p, st, _hb in rows if st == ChunkState.PENDING or (j, i) in stale]
        fin = s.execute(select(Job.id, Job.finalize_owner, Job.finalize_claimed_at).where(
            Job.state == JobState.FINALIZING.value)).all()
        finals = [j for j, _owner, at in fin if is_silent(at, stale_after_s)]
        stale_finals = frozenset(j for j, owner, at in fin if owner is not None and is_silent(at, stale_after_s))
        return UnfinishedWork(chunks, finals, stale, stale_finals)
