"""Job and chunk states, and the only transitions allowed between them.

Every state change in the store goes through `check_job` / `check_chunk`, so this
file is the one place that defines the life cycle.
"""

from __future__ import annotations

import enum

from farm.errors import StateError


class JobState(str, enum.Enum):
    QUEUED = "queued"          # chunks planned and enqueued
    RUNNING = "running"        # at least one chunk claimed
    FINALIZING = "finalizing"  # all chunks done; the one finalize task owns it
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ChunkState(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"          # gave up after the attempt limit, or a non-retryable error
    CANCELLED = "cancelled"


class WorkerState(str, enum.Enum):
    """What `farm status` and the metrics say of a chunk worker process (farm.state.registry)."""

    IDLE = "idle"
    BUSY = "busy"                # running a chunk (job_id, chunk_index)
    QUARANTINED = "quarantined"  # stopped taking chunks after failures in a row
    STOPPED = "stopped"          # its supervisor stopped it (`farm down`, SIGTERM)


JOB_TERMINAL = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})

JOB_LIVE = frozenset(JobState) - JOB_TERMINAL
"""Unfinished jobs, the farm's one meaning of "live": queued, running or finalizing
(what `farm status --follow` shows and the metrics report progress of)."""

JOB_RENDERING = frozenset({JobState.QUEUED, JobState.RUNNING})
"""Live jobs whose chunks are still to render: only their chunks are claimed, re-enqueued
by the reaper and topped up (a finalizing job has every chunk done)."""

JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.FINALIZING, JobState.FAILED, JobState.CANCELLED}),
    JobState.RUNNING: frozenset({JobState.FINALIZING, JobState.FAILED, JobState.CANCELLED}),
    # FINALIZING -> RUNNING: finalize found a done chunk's output lost; that chunk runs again
    JobState.FINALIZING: frozenset({JobState.RUNNING, JobState.DONE, JobState.FAILED, JobState.CANCELLED}),
    JobState.DONE: frozenset(),
    # retry: a failed or cancelled job goes back to the queue with its unfinished chunks
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset({JobState.QUEUED}),
}

CHUNK_TRANSITIONS: dict[ChunkState, frozenset[ChunkState]] = {
    ChunkState.PENDING: frozenset({ChunkState.RUNNING, ChunkState.FAILED, ChunkState.CANCELLED}),
    # RUNNING -> RUNNING: a redelivered task (dead worker, visibility timeout) re-claims it
    ChunkState.RUNNING: frozenset(
        {ChunkState.RUNNING, ChunkState.PENDING, ChunkState.DONE, ChunkState.FAILED, ChunkState.CANCELLED}
    ),
    ChunkState.DONE: frozenset({ChunkState.PENDING}),   # its output was lost (finalize checks it)
    ChunkState.FAILED: frozenset({ChunkState.PENDING}),
    ChunkState.CANCELLED: frozenset({ChunkState.PENDING}),
}


def check_job(current: JobState | str, new: JobState | str) -> JobState:
    """Return `new` as a JobState, or raise StateError if the move is not allowed."""
    cur, nxt = JobState(current), JobState(new)
    if nxt not in JOB_TRANSITIONS[cur]:
        raise StateError(f"job cannot go from {cur.value} to {nxt.value}")
    return nxt


def check_chunk(current: ChunkState | str, new: ChunkState | str) -> ChunkState:
    """Return `new` as a ChunkState, or raise StateError if the move is not allowed."""
    cur, nxt = ChunkState(current), ChunkState(new)
    if nxt not in CHUNK_TRANSITIONS[cur]:
        raise StateError(f"chunk cannot go from {cur.value} to {nxt.value}")
    return nxt
