"""Chunks go only to workers that can produce the job's encoder.

A job's encoder is decided once, at submit, and stored with the job, so that every
chunk has the same codec headers and the chunks join. A worker that cannot produce
that encoder (h264_nvenc on a node without NVENC, an encoder disabled with
FARM_DISABLED_ENCODERS) checks this before it claims the chunk: it counts no attempt
and no worker failure, notes once per job (and retry) that it refused
("encoder_refused" event, message "<worker>: <why>"), and puts the chunk back on the
queue a few seconds later for another worker. When every worker consuming the chunk
queue has refused the job since it was submitted or last retried, no worker can
produce it: the job fails, with each worker's reason, instead of going round forever.
"""

from __future__ import annotations

import logging
from typing import Any

from farm.broker.celery_app import QUEUE_GPU, enqueue_chunk
from farm.media.chunk_codec import EncoderSettings
from farm.state import records, store
from farm.state.states import ChunkState
from farm.state.store import JobView
from farm.workers.runtime import Runtime

log = logging.getLogger("farm.workers.encoder_check")

REFUSED_EVENT = "encoder_refused"
RECHECK_S = 5.0           # a refused chunk is offered again after this (seconds)
INSPECT_TIMEOUT_S = 1.0   # how long to wait for the workers' answers on which queues they consume


def job_encoder(job: JobView) -> EncoderSettings:
    """The job's encoder: the one submit chose (choose_encoder) and stored with the job.
    Every chunk is encoded with it and the finalizer picks the output's muxer from it;
    no worker chooses again."""
    return records.load(EncoderSettings, job.encoder)


def refuse_chunk(ctx: Runtime, job_id: str, index: int, worker: str, problem: str) -> str:
    """This worker cannot produce the job's encoder: leave chunk `index` to another worker,
    or fail the job when no worker consuming the chunk queue can produce it."""
    job = store.get_job(ctx.db, job_id)
    chunk = next((c for c in job.chunks if c.index == index), None)
    if job.terminal or job.cancel_requested:
        return f"skip (job is {job.state})"
    if chunk is None or chunk.state != ChunkState.PENDING:   # a duplicate: another worker has it
        return f"skip (chunk is {chunk.state if chunk else 'unknown'})"
    refused = refusals(ctx.db, job_id)
    if worker not in refused:      # once per job (and per retry of it)
        store.note(ctx.db, job_id, REFUSED_EVENT, f"{worker}: {problem}", index)
        refused[worker] = problem
        log.warning("job %s: %s leaves its chunks to other workers: %s", job_id, worker, problem)
    consumers = chunk_consumers(ctx.app)
    if consumers and consumers <= set(refused):
        reasons = "; ".join(f"{w}: {refused[w]}" for w in sorted(consumers))
        store.fail_job(ctx.db, job_id, f"no worker can encode job {job_id} with its encoder ({reasons}); "
                                       f"submit it again with a software --codec (h264, hevc), or start a worker "
                                       f"that has this encoder and `farm retry {job_id}`")
        return "failed: no worker can produce the job's encoder"
    enqueue_chunk(ctx.app, job_id, index, job.priority, countdown_s=RECHECK_S)
    return f"refused: {problem}"


def refusals(db: Any, job_id: str) -> dict[str, str]:
    """worker -> why it cannot produce the job's encoder, since the job was submitted or last retried."""
    refused: dict[str, str] = {}
    for _at, _chunk, kind, message in store.events(db, job_id):
        if kind == "retried":
            refused.clear()
        elif kind == REFUSED_EVENT and ": " in message:
            worker, why = message.split(": ", 1)
            refused[worker] = why
    return refused


def chunk_consumers(app: Any) -> set[str]:
    """Hostnames of the workers consuming the chunk queue now (empty if none answered)."""
    try:
        answers = app.control.inspect(timeout=INSPECT_TIMEOUT_S).active_queues() or {}
    except Exception as exc:  # noqa: BLE001 - no answer means "do not decide now"
        log.warning("cannot ask the workers which queues they consume: %s", exc)
        return set()
    return {host for host, queues in answers.items() if any(q.get("name") == QUEUE_GPU for q in queues or ())}
