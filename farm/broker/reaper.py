"""The reaper: the database knows what is unfinished; put back what the broker lost.

It re-enqueues
- running chunks whose heartbeat stopped (a dead or hung worker) for the stale time;
- pending chunks of live jobs that no queue and no worker holds (Redis restarted
  without its data, a message dropped);
- finalize steps of finalizing jobs that nobody holds, or whose owner stopped beating
  (a finalizer killed or hung mid-join) for the stale time.
The stale time is settings.stale_heartbeat_s, the one a redelivered chunk or finalize
task applies when it claims (farm.state.store.is_silent): what the reaper re-enqueues as
lost, that task takes over.
Queue contents are read from Redis itself (kombu's lists per queue and priority, and
its `unacked` hash of messages delivered to workers). Re-enqueueing too much is safe:
a duplicate of a done chunk is skipped, a duplicate of a live one is "busy".
"""

from __future__ import annotations

import logging
from typing import Iterable

from farm.broker import transport as broker
from farm.broker.celery_app import TASK_FINALIZE_JOB, TASK_PROCESS_CHUNK, create_app, enqueue_chunk, enqueue_finalize
from farm.config import Settings
from farm.state import chunks, store
from farm.state.db import Database

log = logging.getLogger("farm.broker.reaper")

LOCK_KEY = "farm:reaper:lock"  # one reaper per interval across the cluster


def reap(settings: Settings, db: Database, stale_after_s: float | None = None, interval_s: float = 0,
         job_id: str | None = None) -> dict[str, int]:
    """Re-enqueue lost work once; with `interval_s`, at most once per interval cluster-wide;
    with `job_id`, only that job's (`farm retry` of a live job: the counts are its own).

    The stale time is settings.stale_heartbeat_s; `stale_after_s`, kept for old callers,
    must be None or that value (the reaper and the tasks it enqueues agree on who is gone).
    """
    if stale_after_s is not None and stale_after_s != settings.stale_heartbeat_s:
        raise ValueError(f"the reaper's stale time is settings.stale_heartbeat_s "
                         f"({settings.stale_heartbeat_s} s), not {stale_after_s} s")
    client = broker.client(settings)
    if interval_s and not client.set(LOCK_KEY, "1", nx=True, ex=max(1, int(interval_s))):
        return {"skipped": 1}
    held = broker.holdings(client, settings)
    pending, finals, stale, stale_finals = store.unfinished_work(db, stale_after_s=settings.stale_heartbeat_s)
    live = store.rendering_job_ids(db)
    if job_id is not None:
        pending = [p for p in pending if p[0] == job_id]
        finals, live = [j for j in finals if j == job_id], [j for j in live if j == job_id]
    app = create_app(settings)
    counts = {"stale": 0, "lost": 0, "finalize": 0}
    try:
        for pending_id, index, priority in pending:
            is_stale = (pending_id, index) in stale
            if is_stale or (TASK_PROCESS_CHUNK, (pending_id, index)) not in held:
                enqueue_chunk(app, pending_id, index, priority)
                counts["stale" if is_stale else "lost"] += 1
                store.note(db, pending_id, "requeued", "heartbeat stopped" if is_stale else "lost by the broker",
                           index)
        for live_id in live:   # windows that lost their top-up
            for index, priority in chunks.take_chunks_to_enqueue(db, live_id, settings.job_window):
                enqueue_chunk(app, live_id, index, priority)
                counts["topped_up"] = counts.get("topped_up", 0) + 1
        for final_id in finals:
            if final_id in stale_finals or (TASK_FINALIZE_JOB, (final_id,)) not in held:
                enqueue_finalize(app, final_id)
                counts["finalize"] += 1
                if final_id in stale_finals:
                    store.note(db, final_id, "requeued", "finalize owner stopped beating")
    finally:
        app.close()
    if any(counts.values()):
        log.warning("reaper re-enqueued %s", counts)
    return counts


def running_loop(settings: Settings, interval_s: float, stop: Iterable[bool]) -> None:
    """Reap every `interval_s` until `stop[0]` (used by the supervisor thread)."""
    import time

    from farm.jobs.sweep import sweep

    db = Database(settings.database)
    while not stop[0]:  # type: ignore[index]
        try:
            if reap(settings, db, interval_s=interval_s) != {"skipped": 1}:
                sweep(settings, db)   # once per interval cluster-wide, with the reap (logs what it removed)
        except Exception as exc:  # noqa: BLE001 - a reaper pass must never kill the node
            log.warning("reaper pass failed: %s", exc)
        for _ in range(int(interval_s * 10)):
            if stop[0]:  # type: ignore[index]
                break
            time.sleep(0.1)
