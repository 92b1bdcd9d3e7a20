"""The job records: what a job and its chunks look like, how they are created and read,
and the job-level changes (cancel, retry, fail, notes).

The database is the truth about jobs. This module holds the snapshots every reader gets
(JobView, ChunkView: ChunkView.frames_rendered is the farm's one rule for "frames done"),
the liveness rule that chunks and finalize steps are both judged by (is_silent), and the
row helpers that farm.state.chunks (chunk claims, heartbeats, finish) and
farm.state.finalizing (the finalize claim and publishing) build their transactions from.
Every change happens in one transaction, under the job's row lock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple

from sqlalchemy import select

from farm.errors import JobNotFound, StateError
from farm.state.db import Chunk, Database, Event, Job, utcnow
from farm.state.states import JOB_LIVE, JOB_RENDERING, JOB_TERMINAL, ChunkState, JobState, check_chunk, check_job


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
    people_changed: dict[str, int] | None = None   # --map: frames per mapping ({"0": n, ...}; Face.source)

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
    def changed(self) -> tuple[int, int] | None:
        """(frames with a face changed, faces changed) over the chunks done so far; None when
        a done chunk was not counted (rendered before the counts were kept) or none is done."""
        done = [c for c in self.chunks if c.state == ChunkState.DONE]
        if not done or any(c.frames_changed is None or c.faces_changed is None for c in done):
            return None
        return sum(c.frames_changed or 0 for c in done), sum(c.faces_changed or 0 for c in done)

    @property
    def people_changed(self) -> dict[str, int] | None:
        """With --map: frames with each mapping's person changed, over the chunks done so far
        ({"0": frames, ...}: the index of the mapping, then --map-others'); None for a job
        without --map or without counts."""
        if not (self.options or {}).get("map") or self.changed is None:
            return None
        total: dict[str, int] = {}
        for c in self.chunks:
            if c.state == ChunkState.DONE:
                for key, frames in (c.people_changed or {}).items():
                    total[key] = total.get(key, 0) + frames
        return total

    @property
    def terminal(self) -> bool:
        return JobState(self.state) in JOB_TERMINAL

    @property
    def live(self) -> bool:
        """Unfinished: queued, running or finalizing (farm.state.states.JOB_LIVE)."""
        return JobState(self.state) in JOB_LIVE


def face_job(job: Any) -> bool:
    """True if the job ran face stages (False for --passthrough: a re-encode only)."""
    options = job.options or {}
    return bool(job.models) and options.get("faces", "off") != "off"


# ---- row helpers (inside an open transaction; farm.state.chunks and finalizing use them too)

def chunk_snapshot(c: Chunk) -> ChunkView:
    return ChunkView(c.index, c.state, c.attempts, c.worker, c.first_frame, c.frames_planned, c.frames_done,
                     dict(c.plan), c.input_path, c.output_path, c.started_at, c.heartbeat_at, c.finished_at,
                     c.error, c.frames_changed, c.faces_changed, dict(c.people_changed or {}) or None)


def job_snapshot(job: Job, chunks: Iterable[Chunk]) -> JobView:
    return JobView(
        job.id, job.state, job.created_at, job.updated_at, job.finished_at, job.input_path, job.source_path,
        job.output_path, job.overwrite, job.keep_chunks, job.priority, dict(job.options), dict(job.encoder),
        dict(job.models), job.frames_total, job.fps, job.chunk_count, job.cancel_requested, job.error,
        sorted((chunk_snapshot(c) for c in chunks), key=lambda c: c.index), job.consent, job.provenance,
    )


def lock_job(session: Any, job_id: str) -> Job:
    job = session.execute(select(Job).where(Job.id == job_id).with_for_update()).scalar_one_or_none()
    if job is None:
        raise JobNotFound(f"no job {job_id!r}", hint="`farm jobs` lists the jobs this farm knows")
    return job


def lock_chunk(session: Any, job_id: str, index: int) -> Chunk:
    chunk = session.execute(
        select(Chunk).where(Chunk.job_id == job_id, Chunk.index == index).with_for_update()
    ).scalar_one_or_none()
    if chunk is None:
        raise JobNotFound(f"job {job_id!r} has no chunk {index}")
    return chunk


def add_event(session: Any, job_id: str, kind: str, message: str = "", chunk: int | None = None) -> None:
    session.add(Event(job_id=job_id, chunk_index=chunk, kind=kind, message=message[:4000]))


def set_job_state(job: Job, state: JobState) -> None:
    if job.state != state:
        job.state = check_job(job.state, state).value


def set_chunk_state(chunk: Chunk, state: ChunkState) -> None:
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


def is_rendering(job: Job) -> bool:
    """A job whose chunks may still be claimed and enqueued (JOB_RENDERING, not being cancelled)."""
    return JobState(job.state) in JOB_RENDERING and not job.cancel_requested


def rendering_clause() -> tuple[Any, Any]:
    """is_rendering as a WHERE clause on Job."""
    return Job.state.in_([st.value for st in JOB_RENDERING]), Job.cancel_requested.is_(False)


# ---- create and read ---------------------------------------------------------------

def create_job(db: Database, *, job_id: str, chunks: list[ChunkSpec],
               notes: Iterable[tuple[str, str]] = (), also: Any = None, **fields: Any) -> None:
    """Record a job and all its chunks (state queued/pending) in one transaction.

    notes: (kind, message) events logged with it (what was ingested, which video stream).
    also(session): more rows written in the same transaction (an images job's images and items).
    """
    with db.transaction() as s:
        s.add(Job(id=job_id, state=JobState.QUEUED.value, chunk_count=len(chunks), **fields))
        s.flush()
        for spec in chunks:
            s.add(Chunk(job_id=job_id, state=ChunkState.PENDING.value, index=spec.index,
                        first_frame=spec.first_frame, frames_planned=spec.frames_planned, plan=spec.plan,
                        input_path=spec.input_path, output_path=spec.output_path))
        add_event(s, job_id, "submitted", f"{len(chunks)} chunks, {fields.get('frames_total')} frames")
        for kind, message in notes:
            add_event(s, job_id, kind, message)
        if also is not None:
            also(s)


def get_job(db: Database, job_id: str) -> JobView:
    with db.transaction() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r}", hint="`farm jobs` lists the jobs this farm knows")
        chunks = s.execute(select(Chunk).where(Chunk.job_id == job_id)).scalars().all()
        return job_snapshot(job, chunks)


def list_jobs(db: Database, limit: int | None = 20, states: Iterable[str] | None = None, *,
              api_token_id: int | None = None) -> list[JobView]:
    """The newest `limit` jobs (None: all), optionally only those in `states`, or only
    those API token `api_token_id` submitted."""
    with db.transaction() as s:
        q = select(Job).order_by(Job.created_at.desc(), Job.id)
        if limit is not None:
            q = q.limit(limit)
        if states:
            q = q.where(Job.state.in_([JobState(x).value for x in states]))
        if api_token_id is not None:
            q = q.where(Job.api_token_id == api_token_id)
        jobs = s.execute(q).scalars().all()
        ids = [j.id for j in jobs]
        chunks = s.execute(select(Chunk).where(Chunk.job_id.in_(ids))).scalars().all() if ids else []
        by_job: dict[str, list[Chunk]] = {}
        for c in chunks:
            by_job.setdefault(c.job_id, []).append(c)
        return [job_snapshot(j, by_job.get(j.id, [])) for j in jobs]


def live_jobs(db: Database, limit: int | None = None) -> list[JobView]:
    """The unfinished jobs (JOB_LIVE), newest first: what the metrics and `farm status
    --follow` show progress of."""
    return list_jobs(db, limit=limit, states=JOB_LIVE)


def events(db: Database, job_id: str) -> list[tuple[dt.datetime, int | None, str, str]]:
    with db.transaction() as s:
        rows = s.execute(select(Event).where(Event.job_id == job_id).order_by(Event.id)).scalars().all()
        return [(e.at, e.chunk_index, e.kind, e.message) for e in rows]


def rendering_job_ids(db: Database) -> list[str]:
    """Jobs that still have chunks to run (JOB_RENDERING: queued or running)."""
    with db.transaction() as s:
        return list(s.execute(select(Job.id).where(*rendering_clause())).scalars())


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
    claimed, or the owner went silent: the same rule finalizing.claim_finalize applies).
    stale_chunks and stale_finals say which of them had an owner that went silent.
    """
    with db.transaction() as s:
        rows = s.execute(
            select(Chunk.job_id, Chunk.index, Job.priority, Chunk.state, Chunk.heartbeat_at)
            .join(Job, Job.id == Chunk.job_id)
            .where(*rendering_clause(), Chunk.queued_at.is_not(None),
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


# ---- job life cycle ------------------------------------------------------------------

def fail_job(db: Database, job_id: str, error: str) -> None:
    with db.transaction() as s:
        job = lock_job(s, job_id)
        if JobState(job.state) in JOB_TERMINAL:
            return
        set_job_state(job, JobState.FAILED)
        job.error, job.finished_at = error[:4000], utcnow()
        add_event(s, job_id, "failed", error)


def request_cancel(db: Database, job_id: str) -> JobView:
    """Cancel a job: workers stop between frames, nothing is published.

    Refused (StateError) once the job is done; publishing and marking done happen
    together under the job's lock (finalizing.publish_and_finish), so a cancel is either
    before them (nothing is published) or after them (refused).
    """
    with db.transaction() as s:
        job = lock_job(s, job_id)
        if job.state == JobState.DONE:
            raise StateError(f"job {job_id} is already done: its output {job.output_path} was published "
                             f"before the cancel arrived, so there is nothing to cancel")   # hint: service.cancel_job
        job.cancel_requested = True
        if JobState(job.state) not in JOB_TERMINAL:
            set_job_state(job, JobState.CANCELLED)
            job.finished_at = utcnow()
        chunks = s.execute(select(Chunk).where(Chunk.job_id == job_id).with_for_update()).scalars().all()
        for c in chunks:
            if c.state in (ChunkState.PENDING, ChunkState.RUNNING):
                set_chunk_state(c, ChunkState.CANCELLED)
        add_event(s, job_id, "cancelled", "by request")
        return job_snapshot(job, chunks)


def retry_job(db: Database, job_id: str, also: Any = None) -> list[int]:
    """Put a failed or cancelled job back in the queue; return the chunks to enqueue again.
    also(session, job): a check in the same transaction before it is live again (its output's)."""
    with db.transaction() as s:
        job = lock_job(s, job_id)
        if job.state not in (JobState.FAILED, JobState.CANCELLED):
            raise StateError(f"job {job_id} is {job.state}; only failed or cancelled jobs can be retried")
        if also is not None:
            also(s, job)
        set_job_state(job, JobState.QUEUED)
        job.cancel_requested, job.error, job.finished_at = False, None, None
        job.finalize_owner = job.finalize_claimed_at = None
        chunks = s.execute(select(Chunk).where(Chunk.job_id == job_id).with_for_update()).scalars().all()
        todo = []
        for c in chunks:
            if c.state != ChunkState.DONE:
                if c.state != ChunkState.PENDING:
                    set_chunk_state(c, ChunkState.PENDING)
                c.attempts, c.error, c.frames_done, c.queued_at = 0, None, 0, None
                todo.append(c.index)
        if not todo:  # every chunk was done: only the finalize step failed
            set_job_state(job, JobState.FINALIZING)
        add_event(s, job_id, "retried", f"{len(todo)} chunks to run again")
        return sorted(todo)


def note(db: Database, job_id: str, kind: str, message: str, chunk: int | None = None) -> None:
    """Append an event to a job's log."""
    with db.transaction() as s:
        add_event(s, job_id, kind, message, chunk)
