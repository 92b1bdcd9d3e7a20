"""Which live job writes which output, read under the outputs lock (one output, one live job).

A job becomes live when it is recorded or retried; that transaction takes `lock` before it
asks video_writers / image_writers (farm.jobs.reservation decides), so two such transactions
for one output run one after the other, and the second sees the first's job. SQLite's BEGIN
IMMEDIATE already serialises every write transaction; on PostgreSQL `lock` is a
transaction-level advisory lock, released at commit or rollback.
"""

from __future__ import annotations

from typing import Any, Collection, NamedTuple

from sqlalchemy import select, text

from farm.state.db import Job, JobImage
from farm.state.images import PENDING, is_images_job
from farm.state.states import JOB_LIVE

OUTPUTS_LOCK_KEY = 727275
"""The PostgreSQL advisory lock that `lock` takes (farm.state.db's schema lock is 727274)."""


class Writer(NamedTuple):
    """A live job and the output it is to write."""

    job_id: str
    state: str
    output: str


def lock(session: Any) -> None:
    """Hold the outputs lock until this transaction ends (see the module's docstring)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": OUTPUTS_LOCK_KEY})


def _live_jobs(session: Any, besides: str | None, *more: Any) -> list[Any]:
    return session.execute(select(Job.id, Job.state, Job.output_path, Job.encoder)
                           .where(Job.state.in_([st.value for st in JOB_LIVE]), Job.id != besides, *more)).all()


def video_writers(session: Any, name: str, besides: str | None = None) -> list[Writer]:
    """The live jobs but `besides` whose output is a file called `name` (an images job's
    output_path is its images' folder, never one of these)."""
    rows = _live_jobs(session, besides, Job.output_path.endswith("/" + name, autoescape=True))
    return [Writer(r.id, r.state, r.output_path) for r in rows if not is_images_job(r)]


def image_writers(session: Any, outputs: Collection[str], besides: str | None = None) -> dict[str, Writer]:
    """Of `outputs`, those that a pending image of a live images job but `besides` is to
    write: output -> that job."""
    jobs = {r.id: r.state for r in _live_jobs(session, besides) if is_images_job(r)}
    if not jobs or not outputs:
        return {}
    rows = session.execute(select(JobImage.output_path, JobImage.job_id)
                           .where(JobImage.job_id.in_(list(jobs)), JobImage.state == PENDING)).all()
    return {out: Writer(job_id, jobs[job_id], out) for out, job_id in rows if out in outputs}


def pending_outputs(session: Any, job_id: str) -> list[str]:
    """The outputs of an images job's images still to be written (what its retry makes live again)."""
    return list(session.execute(select(JobImage.output_path)
                                .where(JobImage.job_id == job_id, JobImage.state == PENDING)).scalars())
