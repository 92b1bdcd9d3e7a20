"""Finalize a job exactly once: join chunks, remux the original's other streams, verify, publish."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Mapping

import av

from farm import __version__
from farm.broker.celery_app import enqueue_chunk
from farm.errors import FarmError, VerifyError
from farm.faces.mapping import people_counts
from farm.media.formats import keeps_free_tags
from farm.media.join import join_chunks, muxer_for, uses_free_tags
from farm.media.labels import label_head, read_tags
from farm.media.media_info import MediaInfo
from farm.media.probe import probe
from farm.media.tags_3gpp import muxes_3gpp_tags, read_3gpp_tags
from farm.media.verify import verify_output
from farm.provenance.sign import record_provenance, sign_output
from farm.state import finalizing, store
from farm.state.images import is_images_job
from farm.state.store import JobView, face_job
from farm.step_clock import StepClock
from farm.storage import (
    IngestRecord,
    check_source,
    commit_publish,
    remove_leftovers,
    temp_name,
)
from farm.workers.beats import Heartbeat
from farm.workers.chunk_outputs import lost_chunk_outputs
from farm.workers.chunk_runner import storage_problem
from farm.workers.encoder_check import job_encoder
from farm.workers.runtime import Runtime

log = logging.getLogger("farm.workers.finalize")

#: Longest label an MPEG-TS service_name can hold (a one-byte length in the SDT), in bytes.
TS_SERVICE_NAME_MAX_BYTES = 255


def changed_counts(job: JobView) -> tuple[int, int] | None:
    """(frames, faces) the job's workers replaced faces in, summed over its chunks; None
    when some chunk was not counted (rendered before the counts were kept)."""
    chunks = getattr(job, "chunks", None) or []
    counts = [(getattr(c, "frames_changed", None), getattr(c, "faces_changed", None)) for c in chunks]
    if not counts or any(f is None or n is None for f, n in counts):
        return None
    return sum(f for f, _ in counts), sum(n for _, n in counts)


Counts = tuple[int, int, int]
"""(frames with a face changed, faces changed, frames in all): one output's, e.g. one image's."""


def _counts(job: JobView, counts: Counts | None) -> tuple[tuple[int, int] | None, int | None]:
    if counts is not None:
        return (counts[0], counts[1]), counts[2]
    return changed_counts(job), getattr(job, "frames_total", None)


def faces_altered(job: JobView, counts: Counts | None = None) -> bool:
    """True if the output has a face the job changed: a face job, unless its workers
    counted no replaced face at all (a job without counts is taken as altered).
    `counts`: the output's own (an image of an images job), else the job's."""
    if not face_job(job):
        return False
    counted = _counts(job, counts)[0]
    return counted is None or counted[1] > 0


def output_label(job: JobView, counts: Counts | None = None) -> str:
    """One line saying what the output is: synthetic media made by farm, the job, what changed.

    A face job names the stages that changed pixels and, where the workers counted them,
    in how many frames and how many faces; one that found no face says it is unaltered.
    `counts`: the output's own (an image of an images job: 1 frame), else the job's sums."""
    head = label_head(job.id)
    if not face_job(job):
        return f"{head}: a pass-through re-encode, no faces were changed"
    models = job.models or {}
    pack = models.get("pack", "unknown")
    counted, total = _counts(job, counts)
    if counted is not None and counted[1] == 0:
        opts = job.options or {}
        none = ("no face matched the reference" if opts.get("faces") == "reference" else
                "no face matched a --map reference" if opts.get("map") else "no face found")
        return f"{head}: {none}; unaltered, a re-encode (faces searched for with model pack {pack})"
    named = models.get("stage_labels") or {}   # e.g. swap -> "swap (pixel boost 512)"
    stages = [named.get(stage, stage) for stage in models.get("stages") or []]
    label = f"{head}: faces altered" + (f" by {' + '.join(stages)}" if stages else "")
    if counted is not None:
        frames, faces = counted
        label += f" in {frames}" + (f" of {total}" if total else "") + f" frames ({faces} faces"
        people = getattr(job, "people_changed", None) if counts is None else None
        if people is not None:   # --map: per person, e.g. "person-1.png -> a.jpg: 40 frames"
            label += "; " + ", ".join(f"{name}: {n} frames" for name, n in people_counts(job.options, people))
        label += ")"
    label += f" with model pack {pack}"
    if models.get("precision") not in (None, "fp32"):   # e.g. "fp16" (--precision, farm.models.precision)
        label += f", precision {models['precision']}"
    if models.get("demo"):
        label += " (demo stand-in models, not real face swap)"
    return label


def output_metadata(job: JobView, muxer: str | None = None, counts: Counts | None = None) -> dict[str, str]:
    """The container tags an output carries: the synthetic-media label, job id, models.

    muxer: the output's muxer (None: one that keeps free-form tags). AVI keeps only its
    RIFF INFO fields, so the label goes in `comment`; MPEG-TS keeps only the service
    description, so it goes in `service_name` (at most 255 bytes), `service_provider`
    naming farm. 3GP/3G2 keep only the 3GPP asset tags (farm.media.tags_3gpp), so the
    label and the models go in `comment` (the 'dscp' box). Other muxers get every tag
    below. `counts`: as output_label's.
    """
    label = output_label(job, counts)
    if muxer == "avi":
        return {"comment": label}
    if muxer == "mpegts":
        name = label.encode("utf-8")[:TS_SERVICE_NAME_MAX_BYTES].decode("utf-8", "ignore")
        return {"service_provider": f"farm {__version__}", "service_name": name}
    models = job.models or {}
    entries = models.get("models", {})
    model_text = "; ".join(f"{m['name']} sha256:{m.get('sha256') or 'unknown'}" for m in entries.values())
    if muxer is not None and muxes_3gpp_tags(muxer):
        return {"comment": f"{label}; models: {model_text or 'none'}"}
    return {
        "comment": label,
        "description": label,
        "farm_synthetic": "1",
        "farm_faces_altered": "1" if faces_altered(job, counts) else "0",
        "farm_job_id": job.id,
        "farm_model_pack": str(models.get("pack", "none (pass-through)")),
        "farm_models": model_text or "none",
        "farm_version": __version__,
    }


def itunes_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """The tags of an MP4 whose iTunes tag list keeps cover art (join.uses_free_tags): only
    iTunes' own `comment` (the label) and `description` (the label and the models)."""
    return {"comment": metadata["comment"],
            "description": f"{metadata['description']}; models: {metadata['farm_models']}"}


def recorded_source(db: Any, job_id: str) -> tuple[IngestRecord | None, int | None]:
    """What submit logged for the job: the ingested copy, and the index of its video stream
    (None, None for jobs submitted before these were logged)."""
    ingested = video_index = None
    for _at, _chunk, kind, message in store.events(db, job_id):
        if kind == "ingested":
            ingested = IngestRecord.from_description(message)
        elif kind == "video_stream" and (found := re.match(r"stream (\d+)", message)):
            video_index = int(found[1])
    return ingested, video_index


def output_muxer(info: MediaInfo, job: JobView) -> str:
    """The muxer finalize writes the job's output with (the source's kind of container)."""
    codec = av.codec.Codec(job_encoder(job).codec, "w").canonical_name
    return muxer_for(info, codec)


def verify_label(path: Path, muxer: str, metadata: Mapping[str, str]) -> None:
    """Raise VerifyError unless the output at `path` carries `metadata` where its container keeps it.

    verify_output checks the tags of containers with free-form tags; this reads back
    AVI's INFO fields and MPEG-TS's service description (program tags) with ffmpeg, and
    3GP's asset boxes itself (ffmpeg reads none of them).
    """
    if keeps_free_tags(muxer):
        return
    if muxer not in ("avi", "mpegts") and not muxes_3gpp_tags(muxer):
        raise VerifyError(f"output {path.name}: the {muxer} container cannot carry the synthetic-media label",
                          hint="submit the video in MP4, MOV, Matroska, AVI, MPEG-TS or 3GP")
    tags = read_3gpp_tags(path) if muxes_3gpp_tags(muxer) else read_tags(path, muxer, program=muxer == "mpegts")
    wrong = [f"{k} is {tags.get(k)!r}, expected {v!r}" for k, v in metadata.items() if tags.get(k) != v]
    if wrong:
        raise VerifyError(f"output {path.name} lacks its synthetic-media label: " + "; ".join(wrong))


def run_finalize(ctx: Runtime, job_id: str, owner: str) -> str:
    """Join, verify and publish `job_id` if this caller owns its finalize step.

    Returns "done", "skip" (not ours), "cancelled" (cancel came first; nothing published),
    "requeued" (a chunk output was lost: those chunks run again, then finalize) or
    "error: ..." (the job failed with that reason; nothing published). While it works the
    owner beats (finalizing.touch_finalize); one silent for settings.stale_heartbeat_s
    loses its claim to the next finalize the reaper enqueues.
    """
    stale_s = ctx.settings.stale_heartbeat_s
    job = finalizing.claim_finalize(ctx.db, job_id, owner, stale_after_s=stale_s)
    if job is None:
        log.info("job %s: finalize skipped (not finalizing, or owned by another worker)", job_id)
        return "skip"
    if is_images_job(job):   # each image was published by its chunk
        from farm.workers.image_runner import finalize_images

        return finalize_images(ctx, job, owner)
    beat = Heartbeat(lambda: finalizing.touch_finalize(ctx.db, job_id, owner), store.beat_interval_s(stale_s),
                     name="farm-finalize-heartbeat").start()
    lost = lost_chunk_outputs(job.chunks)
    if lost:
        beat.stop()
        return requeue_lost(ctx, job_id, owner, lost)
    source = Path(job.source_path)
    final = Path(job.output_path)
    tmp = temp_name(final, job_id)   # written beside the destination: published by a rename, never copied
    for path in remove_leftovers(final, job_id, older_than_s=stale_s):
        log.warning("job %s: removed %s, left by a finalizer that was killed", job_id, path)
    published = False
    clock = StepClock()
    try:
        ingested, video_index = recorded_source(ctx.db, job_id)
        if ingested is not None:
            check_source(source, ingested)   # the farm's copy is still what was ingested
        info = probe(source, video_index=video_index)
        muxer = output_muxer(info, job)
        metadata = output_metadata(job, muxer)
        if keeps_free_tags(muxer) and not uses_free_tags(info, muxer):
            metadata = itunes_metadata(metadata)
        clock.lap("check+probe")
        final.parent.mkdir(parents=True, exist_ok=True)
        join_chunks([Path(c.output_path) for c in job.chunks], source, info, tmp, metadata, clock.times,
                    scratch=ctx.storage.job_dir(job_id))
        clock.lap(None)
        provenance = sign_output(tmp, source, job, muxer, ctx.settings)   # adds a box; checked below
        clock.lap("sign")
        verify_output(info, tmp, metadata)
        verify_label(tmp, muxer, metadata)
        clock.lap("verify")
        record_provenance(ctx.db, job_id, provenance)

        def publish() -> None:
            nonlocal published
            commit_publish(tmp, final, overwrite=job.overwrite)
            published = True

        outcome = finalizing.publish_and_finish(ctx.db, job_id, owner, publish, f"published {final}")
        clock.lap("publish")
    except Exception as exc:  # noqa: BLE001 - the job fails with the reason; nothing is published
        if published and not job.overwrite:
            final.unlink(missing_ok=True)   # linked by us, but the job could not be marked done
        message = (storage_problem(exc, final.parent, job_id)   # the remux writes beside the output
                   or (str(exc) if isinstance(exc, FarmError) else f"{type(exc).__name__}: {exc}"))
        store.fail_job(ctx.db, job_id, f"finalize failed: {message}")
        log.error("job %s: finalize failed: %s", job_id, message)
        return f"error: {message}"
    finally:
        beat.stop()
        tmp.unlink(missing_ok=True)
    if outcome != "done":
        log.info("job %s: nothing published (%s)", job_id, outcome)
        return "cancelled" if outcome == "cancelled" else "skip"
    if not job.keep_chunks:
        ctx.storage.remove_chunks(job_id)
    remove_leftovers(final, job_id)   # done: a lost finalizer's temporary is nobody's now
    store.note(ctx.db, job_id, "finalize_steps", clock.describe())
    log.info("job %s: done -> %s", job_id, final)
    return "done"


def requeue_lost(ctx: Runtime, job_id: str, owner: str, lost: dict[int, str]) -> str:
    """Send the chunks whose output was lost back to the workers; finalize runs again after them."""
    todo = finalizing.requeue_lost_chunks(ctx.db, job_id, owner, lost, window=ctx.settings.job_window)
    if todo is None:
        return "skip"
    for index, priority in todo:
        enqueue_chunk(ctx.app, job_id, index, priority)
    log.warning("job %s: %s; rendering again", job_id, "; ".join(lost.values()))
    return "requeued"
