"""The work of one chunk of an images job: a group of images through the job's chain.

The chunk was claimed by farm.workers.chunk_runner.run_chunk (attempts counted, the
worker marked busy), which hands it here. Each image is read (farm.media.stills), turned
into the pipeline's frame (farm.pipeline.still_frame), run through the same stage chain a
video frame goes through (built from the stored job: farm.workers.job_chain), and written
in its own format under a temporary name renamed into place, with its own label (the
job's, counted for this image). An image that cannot be read, or that its format cannot
carry, fails alone (its result says why); anything else (a model or storage failure)
fails the chunk, bounded by attempts, as a video chunk's would. The results of every
image are written in the transaction that marks the chunk done; the worker that finishes
the last chunk enqueues finalize, which only marks the job done (finalize_images).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from farm.errors import InputError
from farm.memory import keep_heap_while_working
from farm.media.stills import read_still, write_still
from farm.pipeline.stage import StageChain
from farm.pipeline.still_frame import copy_planes, frame_from_rgb, rgb_from_frame
from farm.state import chunks, finalizing, registry
from farm.state import images as image_rows
from farm.state.chunks import Claim
from farm.state.store import JobView, face_job
from farm.storage import temp_name
from farm.workers.runtime import Runtime

log = logging.getLogger("farm.images")

BEAT_EVERY_S = 1.0   # progress (and the cancel flag) written at most this often


def render_image(ctx: Runtime, chain: StageChain, job: JobView, image: image_rows.ImageView,
                 folders: set[Path]) -> int:
    """One image through `chain`, written to its output; returns the faces changed in it.
    InputError when the image itself is bad (the image fails, not the chunk). folders: the
    output folders already made by this task (each is made once, not once an image)."""
    from farm.workers.finalize import output_metadata

    settings = ctx.settings
    still = read_still(Path(image.input), max(settings.max_width, settings.max_height))
    if face_job(job):
        frame = frame_from_rgb(still.rgb)
        before = copy_planes(frame)
        with chain:   # set up per image: nothing is followed from one photo to the next
            done = (chain.process_batch([frame]) + chain.flush())[0] if chain.batches else chain.process(frame)
        faces = int(done.faces_changed)
        rgb = rgb_from_frame(done, before, still.rgb)
    else:   # pass-through: no stage would touch it, so no frame is made (the image is written back as read)
        faces, rgb = 0, still.rgb
    out = Path(image.output)
    if out.parent not in folders:
        out.parent.mkdir(parents=True, exist_ok=True)
        folders.add(out.parent)
    tags = output_metadata(job, counts=(1 if faces else 0, faces, 1))
    try:
        write_still(still, rgb, out, tags, temp_name(out))
    except (ValueError, TypeError, KeyError) as exc:   # Pillow refusing what the format cannot hold
        raise InputError(f"{image.input}: cannot be written back as {still.format} ({exc})",
                         hint="convert it to PNG or JPEG") from None
    return faces


def run_image_chunk(ctx: Runtime, claim: Claim, worker: str) -> str:
    """Render the claimed chunk's images; record each one's result with the chunk's finish."""
    from farm.workers.chunk_runner import hand_on, record_failure

    job, chunk = claim.job, claim.chunk
    keep_heap_while_working()   # images: each one's buffers reused by the next, not faulted in afresh
    started = last_beat = time.monotonic()
    results: list[image_rows.ImageResult] = []
    todo: list[image_rows.ImageView] = []
    folders: set[Path] = set()
    try:
        todo = image_rows.of_chunk(ctx.db, job.id, chunk.index)
        chain = ctx.chain_for(job)
        for n, image in enumerate(todo):
            if time.monotonic() - last_beat >= BEAT_EVERY_S:
                last_beat = time.monotonic()
                if chunks.heartbeat(ctx.db, job.id, chunk.index, n):
                    chunks.fail_chunk(ctx.db, job.id, chunk.index, "cancelled", retryable=False, max_attempts=0)
                    registry.report_result(ctx.db, worker, ok=True)
                    return "cancelled"
            try:
                faces = render_image(ctx, chain, job, image, folders)
            except InputError as exc:
                message = exc.message + (f" (what to do: {exc.hint})" if exc.hint else "")
                results.append(image_rows.ImageResult(image.id, image_rows.FAILED, message))
                continue
            results.append(image_rows.ImageResult(image.id, image_rows.DONE, None, faces))
    except Exception as exc:  # noqa: BLE001 - recorded, bounded by attempts, as a video chunk's
        folder = Path(todo[len(results)].output).parent if len(todo) > len(results) else Path(".")
        return record_failure(ctx, claim, worker, exc, folder)
    seconds = time.monotonic() - started
    changed = [r for r in results if r.faces_changed]
    fps = len(results) / seconds if seconds else 0.0

    def also(session: object) -> None:
        image_rows.record_results(session, results)
        registry.mark_result(session, worker, ok=True, frames=len(results), fps=fps)

    finish = chunks.finish_chunk(ctx.db, job.id, chunk.index, worker, window=ctx.settings.job_window, also=also,
                                 changed=(len(changed), sum(r.faces_changed or 0 for r in changed)))
    log.info("images job %s chunk %d: %d images in %.2f s", job.id, chunk.index, len(results), seconds)
    return hand_on(ctx, job.id, finish)


def finalize_images(ctx: Runtime, job: JobView, owner: str) -> str:
    """An images job's finalize (its claim already taken): every image was published by its
    chunk, so only the job is marked done, once."""
    outcome = finalizing.publish_and_finish(ctx.db, job.id, owner, lambda: None,
                                            f"{job.frames_total} images rendered")
    log.info("images job %s: %s", job.id, outcome)
    return "done" if outcome == "done" else ("cancelled" if outcome == "cancelled" else "skip")
