"""An output is reserved for its live job: one that a queued, running or finalizing job is to
write is refused to every other job, with or without overwrite.

Checked early, before anything is stored (check_free, check_images_free: reads, for a prompt
refusal), and again in the transaction that makes the job live, under the outputs lock
(claim, claim_images, claim_again: farm.state.output_writers), so of two submits racing for
one output exactly one records its job; the other is refused as any submit is (InputError:
exit 2, HTTP 422; what it wrote is removed again). A retry that would make a job live beside
another one writing its output is refused (StateError: exit 2, HTTP 409). A video's output
compares by real path (a link to its folder is the same output); an image's as its batch names it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Collection

from farm.errors import InputError, StateError
from farm.jobs.output_places import real_output_path
from farm.state import output_writers
from farm.state.db import Database
from farm.state.images import is_images_job
from farm.state.output_writers import Writer


def writer_of(session: Any, output: Path, besides: str | None = None) -> Writer | None:
    """The live video job but `besides` that is to write `output`, if any."""
    real = real_output_path(output)
    return next((w for w in output_writers.video_writers(session, output.name, besides)
                 if real_output_path(Path(w.output)) == real), None)


def taken_text(output: str | Path, writer: Writer) -> str:
    """Why `output` is refused: the live job that is to write it."""
    return (f"output {output} is the output of job {writer.job_id}, which is {writer.state}; "
            "two jobs never write one output, with or without overwrite")


def refusal(output: str | Path, writer: Writer, flag: str = "--output") -> InputError:
    """A submit's refusal of `output`, naming the live job that holds it and what to do."""
    return InputError(taken_text(output, writer),
                      hint=f"wait for job {writer.job_id} to end, cancel it, or choose another {flag}")


def check_free(db: Database, output: Path, flag: str = "--output") -> None:
    """InputError when a live job is to write `output` (a read: claim decides)."""
    with db.transaction() as s:
        writer = writer_of(s, output)
    if writer is not None:
        raise refusal(output, writer, flag)


def claim(session: Any, output: Path, job_id: str, flag: str = "--output") -> None:
    """In the transaction that records job `job_id`: InputError when another live job is to write `output`."""
    output_writers.lock(session)
    writer = writer_of(session, output, besides=job_id)
    if writer is not None:
        raise refusal(output, writer, flag)


def images_taken(db: Database, outputs: Collection[str]) -> dict[str, Writer]:
    """Of the image outputs `outputs`, those a live images job is to write (a read: claim_images decides)."""
    with db.transaction() as s:
        return output_writers.image_writers(s, set(outputs))


def claim_images(session: Any, outputs: Collection[str], job_id: str) -> None:
    """In the transaction that records images job `job_id`: InputError when another live job is
    to write one of its images' `outputs`."""
    output_writers.lock(session)
    taken = output_writers.image_writers(session, set(outputs), besides=job_id)
    if taken:
        out, writer = next(iter(taken.items()))
        more = f" (and {len(taken) - 1} more of its images)" if len(taken) > 1 else ""
        raise refusal(f"{out}{more}", writer, "output folder")


def claim_again(session: Any, job: Any) -> None:
    """In the transaction that retries `job` (a Job row): StateError when another live job is
    now to write its output (a video's) or one of its images still to be written."""
    output_writers.lock(session)
    if is_images_job(job):
        pending = output_writers.pending_outputs(session, job.id)
        writer = next(iter(output_writers.image_writers(session, set(pending), job.id).values()), None)
    else:
        writer = writer_of(session, Path(job.output_path), besides=job.id)
    if writer is not None:
        raise StateError(f"job {job.id} cannot run again now: its {taken_text(writer.output, writer)}",
                         hint=f"wait for job {writer.job_id} to end (or cancel it), then retry job {job.id}")
