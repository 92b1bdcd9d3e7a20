"""farm.monitor.metrics: the Prometheus exposition read from a real job database (SQLite and
PostgreSQL) and, for queue depth, a real private Redis; parsed back with prometheus_client's
own parser (a dependency of Flower) as an independent check of the text format."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from farm.broker import embedded as local
from farm.broker import transport as broker
from farm.broker.transport import queue_keys
from farm.monitor.metrics import CONTENT_TYPE, Family, exposition, metrics_app, render_metrics
from farm.state import chunks, finalizing, registry
from farm.state.db import Chunk, Database, upgrade_schema
from tests.job_rows import make_job

T0 = dt.datetime(2024, 5, 1, 12, 0, 0)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a whole exposition."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def set_span(db, job_id: str, index: int, seconds: float) -> None:
    with db.transaction() as s:
        chunk = s.query(Chunk).filter_by(job_id=job_id, index=index).one()
        chunk.started_at, chunk.finished_at = T0, T0 + dt.timedelta(seconds=seconds)


@pytest.fixture
def farm_db(db):
    """Given: job a (3 chunks: 2 done in 4 s and 45 s, 1 running at 10/30 frames), job b queued,
    job c done; worker gpu0 busy on a/2 with CUDA, worker gpu1 idle at 42.5 fps."""
    make_job(db, "a", [30, 30, 30])
    make_job(db, "b", [60])
    make_job(db, "c", [15])
    for i in (0, 1):
        assert chunks.claim_chunk(db, "a", i, "gpu1@n", 3, stale_after_s=120).outcome == "run"
        chunks.finish_chunk(db, "a", i, "gpu1@n")
    set_span(db, "a", 0, 4.0)
    set_span(db, "a", 1, 45.0)
    chunks.claim_chunk(db, "a", 2, "gpu0@n", 3, stale_after_s=120)
    chunks.heartbeat(db, "a", 2, 10)
    chunks.claim_chunk(db, "c", 0, "gpu1@n", 3, stale_after_s=120)
    assert chunks.finish_chunk(db, "c", 0, "gpu1@n").finalize
    assert finalizing.claim_finalize(db, "c", "fin", stale_after_s=120) is not None
    assert finalizing.publish_and_finish(db, "c", "fin", lambda: None) == "done"
    set_span(db, "c", 0, 700.0)
    registry.report_start(db, "gpu0@n", 11, "0", "CUDAExecutionProvider,CPUExecutionProvider")
    registry.report_busy(db, "gpu0@n", "a", 2)
    registry.report_start(db, "gpu1@n", 12, "1", "TensorrtExecutionProvider")
    registry.report_result(db, "gpu1@n", ok=True, frames=75, fps=42.5)
    return db


def test_jobs_chunks_workers_and_durations_from_the_database(farm_db, settings):
    text = render_metrics(settings, farm_db)          # no broker running: broker_up 0
    got = samples(text)
    assert got[("farm_jobs", (("state", "running"),))] == 1
    assert got[("farm_jobs", (("state", "queued"),))] == 1
    assert got[("farm_jobs", (("state", "done"),))] == 1
    assert got[("farm_jobs", (("state", "failed"),))] == 0
    assert got[("farm_chunks", (("state", "done"),))] == 3
    assert got[("farm_chunks", (("state", "running"),))] == 1
    assert got[("farm_chunks", (("state", "pending"),))] == 1
    # histogram of done chunks: 4 s, 45 s, 700 s
    assert got[("farm_chunk_duration_seconds_bucket", (("le", "5.0"),))] == 1
    assert got[("farm_chunk_duration_seconds_bucket", (("le", "60.0"),))] == 2
    assert got[("farm_chunk_duration_seconds_bucket", (("le", "600.0"),))] == 2
    assert got[("farm_chunk_duration_seconds_bucket", (("le", "+Inf"),))] == 3
    assert got[("farm_chunk_duration_seconds_count", ())] == 3
    assert got[("farm_chunk_duration_seconds_sum", ())] == pytest.approx(749.0)
    # progress of unfinished jobs only
    assert got[("farm_job_frames_done", (("job", "a"),))] == 70
    assert got[("farm_job_frames", (("job", "a"),))] == 90
    assert got[("farm_job_frames_done", (("job", "b"),))] == 0
    assert ("farm_job_frames", (("job", "c"),)) not in got
    # workers
    assert got[("farm_worker_fps", (("gpu", "1"), ("worker", "gpu1@n")))] == 42.5
    assert got[("farm_worker_busy", (("worker", "gpu0@n"),))] == 1
    assert got[("farm_worker_busy", (("worker", "gpu1@n"),))] == 0
    assert got[("farm_worker_up", (("worker", "gpu0@n"),))] == 1
    assert got[("farm_worker_frames_total", (("worker", "gpu1@n"),))] == 75
    info = [k for k in got if k[0] == "farm_worker_info" and ("worker", "gpu0@n") in k[1]]
    assert info and ("providers", "CUDAExecutionProvider,CPUExecutionProvider") in info[0][1]
    assert got[("farm_database_up", ())] == 1
    assert got[("farm_broker_up", ())] == 0
    assert not [k for k in got if k[0] == "farm_queue_depth"]


def test_queue_depth_sums_the_priority_sub_queues_of_a_real_broker(settings, tmp_path):
    # Given the farm's own broker with messages on gpu (priorities 0, 3, 9) and cpu
    db = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    upgrade_schema(db)
    local.start_redis(settings)
    try:
        client = broker.client(settings)
        client.lpush("gpu", "m1")
        client.lpush("gpu:3", "m2", "m3")
        client.lpush("gpu:9", "m4")
        client.lpush("cpu", "m5")
        client.hset("unacked", "tag1", "x")
        got = samples(render_metrics(settings, db))
    finally:
        local.down(settings)
        db.dispose()
    assert got[("farm_broker_up", ())] == 1
    assert got[("farm_queue_depth", (("queue", "gpu"),))] == 4
    assert got[("farm_queue_depth", (("queue", "cpu"),))] == 1
    assert got[("farm_broker_unacked_messages", ())] == 1


def test_queue_keys_follow_the_celery_transport_options():
    transport = {"sep": ":", "priority_steps": list(range(10))}
    assert queue_keys("gpu", transport) == ["gpu"] + [f"gpu:{p}" for p in range(1, 10)]


def test_exposition_escapes_labels_and_formats_numbers():
    fam = Family("x_total", "counter", "A help\nline.")
    fam.add(3, worker='a"b\\c\nd')
    fam.add(math.inf, worker="inf")
    fam.add(0.25, worker="q")
    text = exposition([fam])
    assert '# HELP x_total A help\\nline.' in text
    assert 'x_total{worker="a\\"b\\\\c\\nd"} 3' in text
    assert 'x_total{worker="inf"} +Inf' in text
    parsed = {s.labels["worker"]: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert parsed == {'a"b\\c\nd': 3, "inf": math.inf, "q": 0.25}


def test_metrics_app_serves_the_exposition(farm_db, settings):
    client = TestClient(metrics_app(settings, farm_db))
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"] == CONTENT_TYPE
    assert samples(resp.text)[("farm_jobs", (("state", "running"),))] == 1
    assert client.get("/healthz").text == "OK"


def test_a_database_without_the_schema_gives_database_up_0_not_an_error(settings, tmp_path):
    empty = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    got = samples(render_metrics(settings, empty))
    assert got[("farm_database_up", ())] == 0 and got[("farm_broker_up", ())] == 0
    empty.dispose()
