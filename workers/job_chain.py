"""The stage chain a worker runs for a job, built from what submit stored: the options, the
model pack and the saved identity (farm.jobs.face_prep), never recomputed."""

from __future__ import annotations

import numpy as np

from farm.errors import FarmError
from farm.faces.mapping import FaceMap
from farm.pipeline.stage import PassThrough, StageChain
from farm.state.store import JobView
from farm.workers.context import job_plan
from farm.workers.runtime import Runtime


def load_identity(ctx: Runtime, job: JobView) -> tuple[np.ndarray, np.ndarray | None]:
    """(source latent, reference embedding or None) saved for `job` at submit.

    Never recomputed from the user's files: every chunk reads the same saved arrays.
    """
    path = ctx.storage.identity(job.id)
    try:
        with np.load(path) as data:
            source = np.asarray(data["source"], np.float32)
            reference = np.asarray(data["reference"], np.float32) if "reference" in data.files else None
    except (OSError, KeyError, ValueError) as exc:
        raise FarmError(f"job {job.id}: cannot read its saved identity {path} ({exc})",
                        hint="the job's storage folder was changed or is not shared with this worker; "
                        "check the storage mount, or submit the job again") from None
    if (job.options or {}).get("faces") == "reference" and reference is None:
        raise FarmError(f"job {job.id}: faces=reference but {path} holds no reference identity",
                        hint="submit the job again")
    return source, reference


def load_face_map(ctx: Runtime, job: JobView) -> FaceMap | None:
    """A --map job's references and sources saved at submit (None for a job without --map)."""
    if not (job.options or {}).get("map"):
        return None
    path = ctx.storage.identity(job.id)
    try:
        with np.load(path) as data:
            face_map = FaceMap.from_arrays({name: data[name] for name in data.files})
    except (OSError, KeyError, ValueError) as exc:
        raise FarmError(f"job {job.id}: cannot read its saved face map {path} ({exc})",
                        hint="check the storage mount, or submit the job again") from None
    if face_map is None:
        raise FarmError(f"job {job.id}: it maps faces (--map) but {path} holds no face map",
                        hint="submit the job again")
    return face_map


def build_job_chain(ctx: Runtime, job: JobView) -> StageChain:
    """The stage chain a worker runs for `job` (pass-through when the job has no faces to swap)."""
    options = job.options or {}
    if options.get("faces", "off") == "off":
        return StageChain([PassThrough()])
    from farm.faces.chain import build_chain

    pack = ctx.pack(job.models["pack_ref"], job_plan(job))
    source, reference = load_identity(ctx, job)
    return build_chain(options, pack, source, reference, load_face_map(ctx, job))
