"""A client sees and acts on its own work only: the jobs and batches its token submitted.

"A client" is an API token (as for outputs, farm.api.outputs). GET, cancel, retry and the
output download of a job or batch another token submitted, or one submitted on the farm
itself (`farm submit`), answer 404 exactly as an unknown id does, so that a client cannot
learn which ids exist; GET /jobs lists the client's own jobs. The farm's own commands
(`farm status`, `farm cancel`, ...) see everything.
"""

from __future__ import annotations

from fastapi import Request

from farm.errors import JobNotFound
from farm.state import batches
from farm.state.db import Database, Job


def job_client(db: Database, job_id: str) -> int | None:
    """The API token that submitted the job (None: submitted on the farm itself, `farm
    submit`, or no such job)."""
    with db.transaction() as s:
        job = s.get(Job, job_id)
        return None if job is None else job.api_token_id


def own_job(request: Request, job_id: str) -> str:
    """`job_id`, if the calling token submitted it; JobNotFound otherwise."""
    owner = job_client(request.app.state.ctx.db, job_id)
    if owner != request.state.token_id:   # None: a local job, or none
        raise JobNotFound(f"no job {job_id!r}", hint="GET /jobs lists this token's jobs")
    return job_id


def own_batch(request: Request, batch_id: str) -> batches.BatchView:
    """The batch, if the calling token submitted it; JobNotFound otherwise (an unknown id alike)."""
    ctx = request.app.state.ctx
    try:
        batch = batches.get_batch(ctx.db, batch_id)
    except JobNotFound:
        batch = None
    if batch is None or batch.token_id != request.state.token_id:
        raise JobNotFound(f"no batch {batch_id!r}", hint="submit a batch with POST /batches; its id comes back")
    return batch
