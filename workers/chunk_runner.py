"""The work of one chunk, as a plain function the Celery task calls.

encoder check (a worker that cannot produce the job's encoder leaves the chunk to
another: farm.workers.encoder_check) -> claim (attempts counted in the database) -> decode ->
stage chain -> encode -> frame count check -> temporary name + rename -> mark done.
The worker that marks the last chunk done enqueues the finalize task; the database
decides who that is.

Face jobs run their stage chain over BATCH_FRAMES frames at a time (StageChain.process_batch,
when a stage declares `batches`), so a model with a dynamic batch dimension sees the faces
of several frames in one run.
Which models batch: the ArcFace recogniser (w600k_r50, [N,3,112,112] -> [N,512]) in
--faces reference mode, and a detector whose outputs keep the batch (rank 3). det_10g
has a dynamic input batch but rank-2 outputs ([anchors, values]), so detection runs
once per frame; YuNet, inswapper_128 and GFPGAN 1.4 are fixed batch 1 and run once per
face. Pass-through jobs keep the plain frame-by-frame path. The chain counts the frames
and faces it changed; they are stored with the chunk, and finalize labels the output
from their sums (a clip where no face was found says it is unaltered). On the batch path the
codec takes the chain's frames back by index (a stage may hold some for look-ahead, the track
stage: they come from StageChain.flush at the chunk's end, and context frames never come back).
"""

from __future__ import annotations

import errno
import logging
import os
import time
from pathlib import Path
from typing import Callable

from farm.broker.celery_app import QUEUE_GPU, enqueue_chunk, enqueue_finalize
from farm.errors import ChunkCancelled, FarmError, InputError
from farm.media.chunk_codec import transcode_chunk
from farm.media.plan import ChunkPlan
from farm.pipeline.frame import Frame
from farm.pipeline.stage import StageChain
from farm.state import chunks, records, registry
from farm.state.images import is_images_job
from farm.state.states import ChunkState
from farm.workers.encoder_check import job_encoder, refuse_chunk
from farm.workers.runtime import Runtime

log = logging.getLogger("farm.chunk")

RETRY_BACKOFF_S = (2.0, 10.0, 30.0)   # delay before a failed chunk runs again, by attempt
NOT_RETRYABLE = (InputError,)        # the job's own input: no other worker would do better
BUSY_RECHECK_MAX_S = 30.0             # a duplicate delivery of a live chunk looks again after at most this
STORAGE_ERRNOS = {                    # the storage's fault, not the worker's: never counted towards quarantine
    errno.ENOSPC: ("no space left on", "free space there"),
    errno.EDQUOT: ("disk quota exceeded on", "free space there or raise the quota"),
    errno.EROFS: ("read-only file system at", "make it writable (remount it read-write)"),
}
"""errno -> (what happened at the folder, what the user does about it)."""


def run_chunk(ctx: Runtime, job_id: str, index: int, worker: str) -> str:
    """Run chunk `index` of `job_id` on this worker; returns what happened, for the logs."""
    problem = ctx.encoder_problem(job_id)   # checked before the claim: a refusal counts no attempt
    if problem is not None:
        return refuse_chunk(ctx, job_id, index, worker, problem)
    claim = chunks.claim_chunk(ctx.db, job_id, index, worker, ctx.settings.max_attempts,
                               stale_after_s=ctx.settings.stale_heartbeat_s,
                               also=lambda s: registry.mark_busy(s, worker, job_id, index))
    if claim.outcome == "busy":
        recheck = min(BUSY_RECHECK_MAX_S, ctx.settings.stale_heartbeat_s / 2)
        enqueue_chunk(ctx.app, job_id, index, 9, countdown_s=recheck)
    if claim.outcome != "run":
        log.info("job %s chunk %d: %s (%s)", job_id, index, claim.outcome, claim.reason)
        return claim.outcome
    job, chunk = claim.job, claim.chunk
    if is_images_job(job):   # a group of images: same claim, finish and attempts, its own work
        from farm.workers.image_runner import run_image_chunk

        return run_image_chunk(ctx, claim, worker)
    cancelled = [False]

    def on_progress(frames_done: int) -> None:
        cancelled[0] = chunks.heartbeat(ctx.db, job_id, index, frames_done)

    started = time.monotonic()
    try:
        Path(chunk.output_path).parent.mkdir(parents=True, exist_ok=True)
        chain = ctx.chain_for(job)
        providers = ctx.providers_in_use(job)
        if providers and providers != ctx.reported_providers:   # a write only when they change
            registry.report_busy(ctx.db, worker, job_id, index, providers=providers)
            ctx.reported_providers = providers
        with chain:
            frames = transcode_chunk(
                Path(chunk.input_path), Path(chunk.output_path), records.load(ChunkPlan, chunk.plan),
                job_encoder(job), chain.process,
                on_progress=on_progress, should_cancel=lambda: cancelled[0],
                process_batch=batch_for(chain), report_final=False,   # finish_chunk stores the end
                flush=chain.flush if chain.batches else None,   # frames back by index; held ones at the end
            )
    except ChunkCancelled:
        chunks.fail_chunk(ctx.db, job_id, index, "cancelled", retryable=False, max_attempts=0)
        registry.report_result(ctx.db, worker, ok=True)
        log.info("job %s chunk %d: cancelled between frames", job_id, index)
        return "cancelled"
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, bounded by attempts
        return record_failure(ctx, claim, worker, exc, Path(chunk.output_path).parent)
    seconds = time.monotonic() - started
    log.info("job %s chunk %d: %d frames in %.1f s (%.1f fps)", job_id, index, frames, seconds,
             frames / seconds if seconds else 0.0)
    fps = frames / seconds if seconds else 0.0
    finish = chunks.finish_chunk(ctx.db, job_id, index, worker, window=ctx.settings.job_window,
                                 changed=(chain.changed.frames, chain.changed.faces),
                                 people=dict(chain.changed.people) or None,
                                 also=lambda s: registry.mark_result(s, worker, ok=True, frames=frames, fps=fps))
    return hand_on(ctx, job_id, finish)


def record_failure(ctx: Runtime, claim: chunks.Claim, worker: str, exc: BaseException, folder: Path) -> str:
    """A claimed chunk that failed (a video's or an images job's): the failure recorded,
    bounded by attempts; the worker blamed (and quarantined after too many) unless the
    storage at `folder` is at fault; a chunk with attempts left enqueued again after a
    back-off. Returns what happened, for the logs."""
    job, chunk = claim.job, claim.chunk
    storage = storage_problem(exc, folder, job.id)
    message = storage or (str(exc) if isinstance(exc, FarmError) else f"{type(exc).__name__}: {exc}")
    state = chunks.fail_chunk(ctx.db, job.id, chunk.index, message, retryable=not isinstance(exc, NOT_RETRYABLE),
                              max_attempts=ctx.settings.max_attempts)
    failures = registry.report_result(ctx.db, worker, ok=False, blame_worker=storage is None)
    if storage is None and failures >= ctx.settings.max_worker_failures:
        quarantine(ctx, worker, failures, message)
    log.warning("job %s chunk %d attempt %d failed: %s -> %s", job.id, chunk.index, chunk.attempts, message, state)
    if state == ChunkState.PENDING:
        delay = RETRY_BACKOFF_S[min(chunk.attempts, len(RETRY_BACKOFF_S)) - 1]
        enqueue_chunk(ctx.app, job.id, chunk.index, job.priority, countdown_s=delay)
    return f"error: {message}"


def hand_on(ctx: Runtime, job_id: str, finish: chunks.Finish) -> str:
    """After a chunk's finish: enqueue the finalize for the last one, else the chunks the
    finish topped the job's window up with (in the same transaction)."""
    if finish.finalize:
        enqueue_finalize(ctx.app, job_id)
        return "done, finalize enqueued"
    for next_index, priority in finish.enqueue:
        enqueue_chunk(ctx.app, job_id, next_index, priority)
    return "done"


def storage_problem(exc: BaseException, folder: Path, job_id: str) -> str | None:
    """"no space left on <folder> ..." when `exc` is (or was raised while handling) a storage
    error (STORAGE_ERRNOS), or an ffmpeg failure that says so, rather than a fault of this
    worker; None otherwise. `folder`: where the failed write went, when the error names no file."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in STORAGE_ERRNOS:
            name = cause.filename if isinstance(cause.filename, str) else ""
            where = Path(name.removeprefix("file:")).parent if name else folder   # PyAV names file: URLs
            return _storage_text(cause.errno, where, job_id)
        cause = cause.__cause__ or cause.__context__
    said = [code for code in STORAGE_ERRNOS if os.strerror(code) in str(exc)]   # ffmpeg's own stderr
    return _storage_text(said[0], folder, job_id) if said else None


def _storage_text(code: int, where: Path, job_id: str) -> str:
    what, remedy = STORAGE_ERRNOS[code]
    return f"{what} {where} ({os.strerror(code)}); {remedy}, then `farm retry {job_id}`"


def batch_for(chain: StageChain) -> Callable[[list[Frame]], list[Frame]] | None:
    """The `process_batch` for transcode_chunk: the chain's own when one of its stages
    declares that it batches (face jobs), None (frame by frame) otherwise (pass-through)."""
    return chain.process_batch if chain.batches else None


def quarantine(ctx: Runtime, worker: str, failures: int, last_error: str) -> None:
    """A worker that failed `failures` chunks in a row (a broken GPU?) stops taking chunks."""
    note = f"stopped taking chunks after {failures} failures in a row; last: {last_error}"
    registry.report_state(ctx.db, worker, "quarantined", note)
    log.error("%s %s; fix it and restart the worker", worker, note)
    ctx.app.control.cancel_consumer(QUEUE_GPU, destination=[worker])
