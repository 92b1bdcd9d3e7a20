"""The reaper: the database knows what is unfinished; put back what the broker lost.

It re-enqueues
- running chunks whose heartbeat stopped (a dead or hung worker) after `stale_after_s`;
- pending chunks of live jobs that no queue and no worker holds (Redis restarted
  without its data, a message dropped);
- finalize steps of finalizing jobs that nobody holds, or whose owner stopped beating
  (a finalizer killed or hung mid-join) after `stale_after_s`.
Queue contents are read from Redis itself (kombu's lists per queue and priority, and
its `unacked` hash of messages delivered to workers). Re-enqueueing too much is safe:
a duplicate of a done chunk is skipped, a duplicate of a live one is "busy".
"""

from __future__ import annotations

import logging
from typing import Iterable

from farm import broker, store
from farm.celery_app import TASK_FINALIZE_JOB, TASK_PROCESS_CHUNK, create_app, enqueue_chunk, enqueue_finalize
from farm.config import Settings
from farm.db import Database

log = logging.getLogger("farm.reaper")

LOCK_KEY = "farm:reaper:lock"  # one reaper per interval across the cluster


def reap(settings: Settings, db: Database, stale_after_s: float, interval_s: float = 0) -> dict[str, int]:
    """Re-enqueue lost work once; with `interval_s`, at most once per interval cluster-wide."""
    client = broker.client(settings)
    if interval_s and not client.set(LOCK_KEY, "1", nx=True, ex=max(1, int(interval_s))):
        return {"skipped": 1}
    held = broker.holdings(client, settings)
    pending, finals = store.unfinished_work(db, stale_after_s=stale_after_s)
    stale = set(store.stale_running(db, stale_after_s))
    stale_finals = set(store.stale_finalizing(db, stale_after_s))
    app = create_app(settings)
    counts = {"stale": 0, "lost": 0, "finalize": 0}
    try:
        for job_id, index, priority in pending:
            is_stale = (job_id, index) in stale
            if is_stale or (TASK_PROCESS_CHUNK, (job_id, index)) not in held:
                enqueue_chunk(app, job_id, index, priority)
                counts["stale" if is_stale else "lost"] += 1
                store.note(db, job_id, "requeued", "heartbeat stopped" if is_stale else "lost by the broker", index)
        for job_id in store.live_job_ids(db):   # windows that lost their top-up
            for index, priority in store.take_chunks_to_enqueue(db, job_id, settings.job_window):
                enqueue_chunk(app, job_id, index, priority)
                counts["topped_up"] = counts.get("topped_up", 0) + 1
        for job_id in finals:
            if job_id in stale_finals or (TASK_FINALIZE_JOB, (job_id,)) not in held:
                enqueue_finalize(app, job_id)
                counts["finalize"] += 1
                if job_id in stale_finals:
                    store.note(db, job_id, "requeued", "finalize owner stopped beating")
    finally:
        app.close()
    if any(counts.values()):
        log.warning("reaper re-enqueued %s", counts)
    return counts


def running_loop(settings: Settings, interval_s: float, stale_after_s: float, stop: Iterable[bool]) -> None:
    """Reap every `interval_s` until `stop[0]` (used by the supervisor thread)."""
    import time

    from farm.sweep import sweep

    db = Database(settings.database)
    while not stop[0]:  # type: ignore[index]
        try:
            if reap(settings, db, stale_after_s, interval_s) != {"skipped": 1}:
                sweep(settings, db)   # once per interval cluster-wide, with the reap (logs what it removed)
        except Exception as exc:  # noqa: BLE001 - a reaper pass must never kill the node
            log.warning("reaper pass failed: %s", exc)
        for _ in range(int(interval_s * 10)):
            if stop[0]:  # type: ignore[index]
                break
            time.sleep(0.1)
