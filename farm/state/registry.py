"""Workers as they report themselves: for `farm status`, metrics and bad-worker quarantine."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from farm.state.db import Database, WorkerRow, utcnow
from farm.state.states import WorkerState


@dataclass
class WorkerView:
    hostname: str
    pid: int
    gpu: str | None
    providers: str
    state: str
    job_id: str | None
    chunk_index: int | None
    fps: float
    frames_total: int
    consecutive_failures: int
    last_seen: dt.datetime
    note: str | None

    def alive(self, within_s: float | None = None) -> bool:
        """Heard from within `within_s` seconds (default WORKER_OFFLINE_AFTER_S) and not stopped."""
        limit = WORKER_OFFLINE_AFTER_S if within_s is None else within_s
        return self.state != STOPPED and (utcnow() - self.last_seen).total_seconds() < limit

    def offline(self) -> bool:
        """Stopped cleanly, or its heartbeat stopped (silent for WORKER_OFFLINE_AFTER_S)."""
        return not self.alive()


WORKER_HEARTBEAT_S = 30.0
"""How often each node's `farm worker` supervisor says which of its worker processes are
running (touch_workers), busy or idle; seconds."""

WORKER_OFFLINE_AFTER_S = 3 * WORKER_HEARTBEAT_S
"""A worker not heard from for this long (three missed heartbeats) is shown offline; seconds."""

STOPPED = WorkerState.STOPPED.value


def _row(s, hostname: str) -> WorkerRow:  # noqa: ANN001
    row = s.get(WorkerRow, hostname, with_for_update=True)
    if row is None:
        row = WorkerRow(hostname=hostname)
        s.add(row)
    return row


def report_start(db: Database, hostname: str, pid: int, gpu: str | None, providers: str) -> None:
    """A worker process started: idle, counters reset; `providers` as its sessions report them
    ('' before it has made any)."""
    with db.transaction() as s:
        row = _row(s, hostname)
        row.pid, row.gpu, row.providers, row.state = pid, gpu, providers, WorkerState.IDLE.value
        row.job_id = row.chunk_index = None
        row.started_at = row.last_seen = utcnow()
        row.consecutive_failures, row.note = 0, None


NO_PROVIDERS = ("", "-")
"""Values that say nothing about the providers in use; report_busy keeps the stored ones."""


def report_busy(db: Database, hostname: str, job_id: str, chunk_index: int, providers: str | None = None) -> None:
    """Mark the worker busy on a chunk; `providers`: the ONNX Runtime providers its sessions
    report (comma-separated), or None/''/'-' (a pass-through chunk) to keep the stored ones."""
    with db.transaction() as s:
        mark_busy(s, hostname, job_id, chunk_index, providers)


def mark_busy(s, hostname: str, job_id: str, chunk_index: int, providers: str | None = None) -> None:  # noqa: ANN001
    """report_busy inside an open transaction (chunks.claim_chunk's `also`)."""
    row = _row(s, hostname)
    row.state, row.job_id, row.chunk_index, row.last_seen = WorkerState.BUSY.value, job_id, chunk_index, utcnow()
    if providers not in (None, *NO_PROVIDERS):
        row.providers = providers


def report_result(db: Database, hostname: str, *, ok: bool, frames: int = 0, fps: float = 0.0,
                  blame_worker: bool = True) -> int:
    """Record a finished (ok) or failed chunk; returns the failures in a row.

    blame_worker=False: a failure that is not the worker's (the storage is full): the
    worker goes idle and its count of failures in a row stays as it was.
    """
    with db.transaction() as s:
        return mark_result(s, hostname, ok=ok, frames=frames, fps=fps, blame_worker=blame_worker)


def mark_result(s, hostname: str, *, ok: bool, frames: int = 0, fps: float = 0.0,  # noqa: ANN001
                blame_worker: bool = True) -> int:
    """report_result inside an open transaction (chunks.finish_chunk's `also`)."""
    row = _row(s, hostname)
    row.last_seen = utcnow()
    row.job_id = row.chunk_index = None
    if row.state != WorkerState.QUARANTINED.value:
        row.state = WorkerState.IDLE.value
    if ok:
        row.consecutive_failures, row.fps = 0, fps
        row.frames_total = (row.frames_total or 0) + frames
    elif blame_worker:
        row.consecutive_failures = (row.consecutive_failures or 0) + 1
    return row.consecutive_failures or 0


def report_state(db: Database, hostname: str, state: str, note: str | None = None) -> None:
    with db.transaction() as s:
        row = _row(s, hostname)
        row.state, row.note, row.last_seen = state, note, utcnow()


def touch_workers(db: Database, hostnames: list[str], pids: dict[str, int] | None = None) -> None:
    """The supervisor's heartbeat: these worker processes are running (last seen now).

    A worker not yet in the table (no task run yet) is added as idle; a stopped one that
    runs again is idle; busy and quarantined ones keep their state.
    """
    if not hostnames:
        return
    with db.transaction() as s:
        for hostname in hostnames:
            row = s.get(WorkerRow, hostname, with_for_update=True)
            if row is None:
                row = WorkerRow(hostname=hostname, state=WorkerState.IDLE.value, pid=(pids or {}).get(hostname, 0))
                s.add(row)
            elif row.state == STOPPED:
                row.state, row.job_id, row.chunk_index = WorkerState.IDLE.value, None, None
            row.last_seen = utcnow()


def report_stopped(db: Database, hostnames: list[str]) -> None:
    """The supervisor stopped these workers: shown offline until they run again."""
    with db.transaction() as s:
        for hostname in hostnames:
            row = s.get(WorkerRow, hostname, with_for_update=True)
            if row is not None:
                row.state, row.job_id, row.chunk_index, row.last_seen = STOPPED, None, None, utcnow()


def list_workers(db: Database) -> list[WorkerView]:
    with db.transaction() as s:
        rows = s.execute(select(WorkerRow).order_by(WorkerRow.hostname)).scalars().all()
        return [WorkerView(r.hostname, r.pid, r.gpu, r.providers, r.state, r.job_id, r.chunk_index, r.fps,
                           r.frames_total, r.consecutive_failures, r.last_seen, r.note) for r in rows]


CHUNK_WORKER_PREFIXES = ("gpu", "cpu")
"""Hostnames of chunk workers (gpu<i>@node, cpu<i>@node); fin@node only finalizes."""

ALL_QUARANTINED = ("every chunk worker is quarantined, so no chunk will run until one is fixed and restarted "
                   "(local farm: `farm down`, then `farm up`)")


def all_quarantined(workers: list[WorkerView]) -> str | None:
    """ALL_QUARANTINED with each worker's reason when every chunk worker is quarantined;
    None while any other live chunk worker is known (idle, busy) or none is quarantined.
    A quarantined worker counts until it is stopped or restarted (it stays quarantined
    however long it is silent); an idle or busy one only while it is live."""
    chunk_workers = [w for w in workers if w.hostname.startswith(CHUNK_WORKER_PREFIXES)
                     and w.state != STOPPED and (w.state == WorkerState.QUARANTINED.value or w.alive())]
    if not chunk_workers or any(w.state != WorkerState.QUARANTINED.value for w in chunk_workers):
        return None
    return f"{ALL_QUARANTINED}: " + "; ".join(f"{w.hostname}: {w.note or 'quarantined'}" for w in chunk_workers)
