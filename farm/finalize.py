"""Finalize a job exactly once: join chunks, remux the original's other streams, verify, publish."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from farm import __version__, store
from farm.errors import FarmError
from farm.media.join import join_chunks
from farm.media.probe import probe
from farm.media.verify import verify_output
from farm.storage import publish, temp_name

log = logging.getLogger("farm.finalize")


def output_metadata(job: Any) -> dict[str, str]:
    """The container tags every output carries: synthetic-media label, job id, models."""
    models = job.models or {}
    entries = models.get("models", {})
    model_text = "; ".join(f"{m['name']} sha256:{m.get('sha256') or 'unknown'}" for m in entries.values())
    pack = models.get("pack", "none (pass-through)")
    label = f"synthetic media: faces altered by farm {__version__}, job {job.id}, model pack {pack}"
    if models.get("demo"):
        label += " (demo stand-in models, not real face swap)"
    return {
        "comment": label,
        "description": label,
        "farm_synthetic": "1",
        "farm_job_id": job.id,
        "farm_model_pack": str(pack),
        "farm_models": model_text or "none",
        "farm_version": __version__,
    }


def run_finalize(ctx: Any, job_id: str, owner: str) -> str:
    """Join, verify and publish `job_id` if this caller owns its finalize step."""
    job = store.claim_finalize(ctx.db, job_id, owner, stale_after_s=ctx.settings.chunk_time_limit_s)
    if job is None:
        log.info("job %s: finalize skipped (not finalizing, or owned by another worker)", job_id)
        return "skip"
    source = Path(job.source_path)
    joined = ctx.storage.output(job_id, source.suffix)
    tmp = temp_name(joined)
    try:
        info = probe(source)
        join_chunks([Path(c.output_path) for c in job.chunks], source, info, tmp, output_metadata(job))
        verify_output(info, tmp, output_metadata(job))
        if store.get_job(ctx.db, job_id).cancel_requested:
            return "cancelled"
        tmp.replace(joined)
        publish(joined, Path(job.output_path), overwrite=job.overwrite)
    except Exception as exc:  # noqa: BLE001 - the job fails with the reason; nothing is published
        message = str(exc) if isinstance(exc, FarmError) else f"{type(exc).__name__}: {exc}"
        store.fail_job(ctx.db, job_id, f"finalize failed: {message}")
        log.error("job %s: finalize failed: %s", job_id, message)
        return f"error: {message}"
    finally:
        tmp.unlink(missing_ok=True)
    store.finish_job(ctx.db, job_id, f"published {job.output_path}")
    joined.unlink(missing_ok=True)
    if not job.keep_chunks:
        ctx.storage.remove_chunks(job_id)
    log.info("job %s: done -> %s", job_id, job.output_path)
    return "done"
