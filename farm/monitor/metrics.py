"""Prometheus metrics of the farm, read from the job database and the broker.

`render_metrics(settings, db)` returns the text exposition format (version 0.0.4);
`metrics_app(settings)` is an ASGI app serving it at `/metrics` (what `farm metrics`
runs, and what the HTTP API can mount). Every value is read at scrape time, so any
number of these servers can run side by side; nothing is kept in memory.

Families:
- `farm_jobs{state}`, `farm_chunks{state}`: rows by state (every state, zeros included)
- `farm_chunk_duration_seconds`: histogram of the wall time of done chunks
- `farm_job_frames_done{job}`, `farm_job_frames{job}`: progress of unfinished jobs (store.live_jobs,
  JobView.frames_done: the numbers `farm status` shows)
- `farm_worker_fps{worker,gpu}`: frames per second of each worker's last chunk
- `farm_worker_up`, `farm_worker_busy`, `farm_worker_frames_total`,
  `farm_worker_consecutive_failures`, `farm_worker_info{providers,state}`: per worker
- `farm_queue_depth{queue}`: messages waiting on the `gpu` and `cpu` queues, summed over
  their priority sub-queues (`gpu`, `gpu:1` ... `gpu:9`)
- `farm_broker_unacked_messages`: delivered, not yet acknowledged (chunks running)
- `farm_broker_up`, `farm_database_up`: 1 when the read worked, else 0
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from farm.broker import transport as broker
from farm.config import Settings
from farm.errors import FarmError
from farm.state import store
from farm.state.db import Chunk, Database, Job
from farm.state.states import ChunkState, JobState, WorkerState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_PORT = 9750
BROKER_TIMEOUT_S = 2.0
CHUNK_SECONDS_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


@dataclass
class Family:
    """One metric family: `# HELP`, `# TYPE`, then its samples (suffix, labels, value)."""

    name: str
    kind: str                   # gauge | counter | histogram
    help: str
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> None:
        self.samples.append((suffix, labels, value))


# ---- the text format -------------------------------------------------------------

def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def exposition(families: Iterable[Family]) -> str:
    lines = []
    for fam in families:
        help_text = fam.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"# HELP {fam.name} {help_text}")
        lines.append(f"# TYPE {fam.name} {fam.kind}")
        for suffix, labels, value in fam.samples:
            label_text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
            lines.append(f"{fam.name}{suffix}{{{label_text}}} {_number(value)}" if labels
                         else f"{fam.name}{suffix} {_number(value)}")
    return "\n".join(lines) + "\n"


def histogram(name: str, help_text: str, values: Iterable[float], buckets: Iterable[float]) -> Family:
    """A cumulative histogram family from raw observations."""
    values = sorted(values)
    fam = Family(name, "histogram", help_text)
    for le in (*buckets, math.inf):
        fam.add(sum(1 for v in values if v <= le), "_bucket", le=repr(float(le)) if le != math.inf else "+Inf")
    fam.add(sum(values), "_sum")
    fam.add(len(values), "_count")
    return fam


# ---- broker ------------------------------------------------------------------------

# ---- database ----------------------------------------------------------------------

def _database_families(db: Database) -> list[Family]:
    from farm.state.registry import WORKER_OFFLINE_AFTER_S, list_workers

    with db.transaction() as s:
        job_counts = dict(s.execute(select(Job.state, func.count()).group_by(Job.state)).all())
        chunk_counts = dict(s.execute(select(Chunk.state, func.count()).group_by(Chunk.state)).all())
        spans = s.execute(select(Chunk.started_at, Chunk.finished_at).where(
            Chunk.state == ChunkState.DONE.value, Chunk.started_at.is_not(None),
            Chunk.finished_at.is_not(None))).all()
    live = store.live_jobs(db)   # the store's "live" and "frames done", as farm status shows them
    workers = list_workers(db)

    jobs = Family("farm_jobs", "gauge", "Jobs in the database by state.")
    for st in JobState:
        jobs.add(job_counts.get(st.value, 0), state=st.value)
    chunks = Family("farm_chunks", "gauge", "Chunks in the database by state.")
    for st in ChunkState:
        chunks.add(chunk_counts.get(st.value, 0), state=st.value)
    durations = histogram("farm_chunk_duration_seconds", "Wall time of done chunks, claim to completion, in seconds.",
                          (max(0.0, (end - start).total_seconds()) for start, end in spans), CHUNK_SECONDS_BUCKETS)
    done = Family("farm_job_frames_done", "gauge", "Frames rendered so far of each unfinished job.")
    total = Family("farm_job_frames", "gauge", "Frames of each unfinished job.")
    for job in sorted(live, key=lambda j: j.id):
        done.add(job.frames_done, job=job.id)
        total.add(job.frames_total, job=job.id)

    fps = Family("farm_worker_fps", "gauge", "Frames per second of the last chunk each worker finished.")
    up = Family("farm_worker_up", "gauge", "1 unless the worker is offline (stopped, or silent for "
                f"{WORKER_OFFLINE_AFTER_S:.0f} s).")
    busy = Family("farm_worker_busy", "gauge", "1 while the worker runs a chunk.")
    frames = Family("farm_worker_frames_total", "counter", "Frames rendered by the worker since it was first seen.")
    failures = Family("farm_worker_consecutive_failures", "gauge", "Failed chunks in a row of the worker.")
    info = Family("farm_worker_info", "gauge", "Worker attributes: GPU, providers in use, state.")
    for w in workers:
        gpu = w.gpu or ""
        fps.add(w.fps or 0.0, worker=w.hostname, gpu=gpu)
        up.add(0 if w.offline() else 1, worker=w.hostname)
        busy.add(1 if w.state == WorkerState.BUSY.value else 0, worker=w.hostname)
        frames.add(w.frames_total or 0, worker=w.hostname)
        failures.add(w.consecutive_failures or 0, worker=w.hostname)
        info.add(1, worker=w.hostname, gpu=gpu, providers=w.providers or "", state=w.state)
    return [jobs, chunks, durations, done, total, fps, up, busy, frames, failures, info]


# ---- all of it -------------------------------------------------------------------

def render_metrics(settings: Settings, db: Database, client: redis.Redis | None = None) -> str:
    """The whole exposition; a dead broker or database gives `*_up 0`, never an error."""
    families: list[Family] = []
    db_up = Family("farm_database_up", "gauge", "1 if the job database answered this scrape.")
    try:
        families += _database_families(db)
        db_up.add(1)
    except (FarmError, SQLAlchemyError, OSError):
        db_up.add(0)
    broker_up = Family("farm_broker_up", "gauge", "1 if the broker answered this scrape.")
    depth = Family("farm_queue_depth", "gauge", "Messages waiting on a queue, all priorities.")
    unacked = Family("farm_broker_unacked_messages", "gauge", "Messages delivered to workers and not yet acknowledged.")
    try:
        depths, in_flight = broker.depths(client or broker.client(settings, BROKER_TIMEOUT_S), settings)
    except (redis.RedisError, OSError):
        broker_up.add(0)
    else:
        broker_up.add(1)
        for queue, n in depths.items():
            depth.add(n, queue=queue)
        unacked.add(in_flight)
    families += [depth, unacked, broker_up, db_up]
    return exposition(families)


def metrics_app(settings: Settings, db: Database | None = None):  # noqa: ANN201 - fastapi.FastAPI
    """An ASGI app: GET /metrics (Prometheus text), GET /healthz."""
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse, Response

    app = FastAPI(title="farm metrics", docs_url=None, redoc_url=None, openapi_url=None)
    state: dict[str, Database] = {}

    def database() -> Database:
        if db is not None:
            return db
        if "db" not in state:
            state["db"] = Database(settings.database)
        return state["db"]

    @app.get("/metrics")
    def metrics() -> Response:  # sync: FastAPI runs it in a thread, off the event loop
        return Response(render_metrics(settings, database()), media_type=CONTENT_TYPE)

    @app.get("/healthz")
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("OK")

    return app

