"""farm.broker.transport reads kombu's Redis layout as Celery writes it: the reaper's holdings and
the metrics' queue depths agree on every priority step. A real private Redis (the local
farm's), real Celery messages; no worker runs, so nothing is taken off the queues."""

from __future__ import annotations

from farm.broker import transport as broker
from farm.broker.celery_app import TASK_FINALIZE_JOB, TASK_PROCESS_CHUNK, create_app, enqueue_chunk, enqueue_finalize
from farm.broker.embedded import down, start_redis
from farm.config import load_settings


def test_holdings_and_depths_see_every_priority(farm_home):
    settings = load_settings({"FARM_HOME": str(farm_home)})
    start_redis(settings)
    app = create_app(settings)
    try:
        for index, priority in enumerate([0, 3, 5, 9]):
            enqueue_chunk(app, "job0000000ab", index, priority)
        enqueue_finalize(app, "job0000000cd")
        conn = broker.client(settings)
        held = broker.holdings(conn, settings)
        assert held == {(TASK_PROCESS_CHUNK, ("job0000000ab", i)) for i in range(4)} | {
            (TASK_FINALIZE_JOB, ("job0000000cd",))}
        waiting, unacked = broker.depths(conn, settings)
        assert waiting == {"gpu": 4, "cpu": 1} and unacked == 0
        # the lists really are split by priority (so a reader of one list alone would miss some)
        assert sum(1 for key in conn.keys("gpu*") if conn.llen(key)) >= 3
    finally:
        app.close()
        down(settings)
