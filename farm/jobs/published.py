"""What is at a done job's output now: what it published, nothing, or another job's output.

A later job may replace a done job's output (with overwrite), so a done job's output is called
its own (cancel's "delete it if you do not want it", `farm status`) only while the file there
carries its label (farm.media.labels.job_of).
"""

from __future__ import annotations

from pathlib import Path

from farm.state.images import is_images_job
from farm.state.states import JobState
from farm.state.store import JobView


def output_now(job: JobView) -> str | None:
    """None while a done video job's output is the file it published (or that cannot be told,
    or the job is not done); else what that path holds now, as the end of a sentence about it."""
    if job.state != JobState.DONE.value or is_images_job(job):
        return None
    from farm.media.labels import NO_LABEL, job_of   # PyAV: only for a done job's output

    path = Path(job.output_path)
    if not path.exists():
        return "is no longer there"
    maker = job_of(path)
    if maker is None or maker == job.id:   # None: it cannot be told; said as before
        return None
    if maker == NO_LABEL:
        return "holds another file now (it does not carry this job's label)"
    return f"now holds job {maker}'s output (published after this one)"


def describe(job: JobView) -> str:
    """Where a done job published its output and, when that changed since, what is there now."""
    if is_images_job(job):
        return f"its images were published under {job.output_path}"
    return changed_since(job) or f"its output {job.output_path} is published"


def changed_since(job: JobView) -> str | None:
    """For a done job whose output path holds something else now, a sentence saying so; else None."""
    now = output_now(job)
    return None if now is None else f"its output was published at {job.output_path}, which {now}"


def delete_hint(job: JobView) -> str | None:
    """What to do with a done job's output that is not wanted: delete it, while it is this job's."""
    if is_images_job(job) or output_now(job) is not None:
        return None
    return f"delete {job.output_path} if you do not want it"
