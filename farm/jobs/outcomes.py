"""What a job's end means to a machine: the exit code and the one JSON object that the CLI's
--json, `farm jobs --json` and the HTTP API all give (same keys every time)."""

from __future__ import annotations

from typing import Any

from farm.errors import EXIT_CANCELLED, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED, EXIT_UNAVAILABLE
from farm.state.batches import RESUMED, BatchView, ItemView
from farm.state.states import JobState
from farm.state.store import JobView, face_job


def exit_code_for(state: str) -> int:
    return {JobState.DONE.value: EXIT_OK, JobState.CANCELLED.value: EXIT_CANCELLED}.get(state, EXIT_FAILED)


def no_face_warning(job: JobView) -> str | None:
    """What a done face job whose workers changed no face at all says at its end (stderr of
    `farm submit --wait`, `warning` in its JSON): usually a wrong reference or threshold."""
    changed = job.changed
    if job.state != JobState.DONE.value or not face_job(job) or changed is None or changed[1] > 0:
        return None
    options = job.options or {}
    if options.get("faces") == "reference":
        why = (f"no face matched the reference (similarity {options.get('similarity', '?')}): check --reference / "
               "--reference-frame, or lower --similarity")
    else:
        why = "no face was found: try a lower --min-score or a larger --detect-max-side (`farm preview` shows one frame)"
    return f"job {job.id} changed no face in any of its {job.frames_total} frames; the output is the input " \
           f"re-encoded ({why})"


def people_json(job: JobView) -> list[dict[str, Any]] | None:
    """With --map: [{"mapping": "person-1.png -> a.jpg", "frames": 40}, ...] (then the
    others' source), frames with that person changed over the chunks done; else None."""
    people = job.people_changed
    if people is None:
        return None
    from farm.faces.mapping import people_counts   # numpy: not for every `farm` command's start

    return [{"mapping": name, "frames": n} for name, n in people_counts(job.options, people)]


def job_json(job: JobView) -> dict[str, Any]:
    """The CI-facing result of a job (`farm submit --json`, `farm jobs --json`, the API).
    frames_changed / faces_changed: frames with a face changed and faces changed, over the
    chunks done so far (null: not counted, or no chunk done); people_changed: the same per
    --map person (people_json); warning: see no_face_warning."""
    changed = job.changed
    return {
        "id": job.id,
        "state": job.state,
        "input": job.input_path,
        "output": job.output_path,
        "frames": job.frames_total,
        "frames_done": job.frames_done,
        "chunks": job.chunk_count,
        "chunks_done": job.chunks_done,
        "priority": job.priority,
        "created_at": job.created_at.isoformat() + "Z",
        "finished_at": job.finished_at.isoformat() + "Z" if job.finished_at else None,
        "models": job.models.get("pack") if job.models else None,
        "error": job.error,
        "consent": job.consent,
        "provenance": job.provenance,
        "frames_changed": changed[0] if changed else None,
        "faces_changed": changed[1] if changed else None,
        "people_changed": people_json(job),
        "warning": no_face_warning(job),
    }


OUTCOME_STATES = {EXIT_FAILED: "failed", EXIT_REFUSED: "refused", EXIT_CANCELLED: "cancelled",
                  EXIT_UNAVAILABLE: "unavailable", EXIT_INTERRUPTED: "interrupted"}
"""The `state` of a --json outcome that is not a job's own, by exit code (see farm.errors)."""


def outcome_json(exit_code: int, error: str, hint: str | None = None, job_id: str | None = None) -> dict[str, Any]:
    """The one JSON object a --json command prints when it ends without a job result:
    refused (2), failed (1), cancelled (3), unavailable (4) or interrupted (130); `id` is
    the job's once one exists, else null (the keys are the same every time)."""
    return {"id": job_id, "state": OUTCOME_STATES.get(exit_code, "failed"), "error": error, "hint": hint,
            "exit_code": exit_code}


def job_outcome_json(job: JobView) -> dict[str, Any]:
    """job_json plus the exit code and, for a failed or cancelled job, what to do; `error` is
    null only when the job is done (a cancel leaves no error on the job itself)."""
    hints = {JobState.FAILED.value: f"see `farm status {job.id}`; after fixing the cause, `farm retry {job.id}`",
             JobState.CANCELLED.value: f"nothing was published; `farm retry {job.id}` runs what is left"}
    error = job.error
    if error is None and job.state == JobState.CANCELLED.value:
        error = "the job was cancelled (`farm cancel` or the API)"
    return {**job_json(job), "error": error, "hint": hints.get(job.state), "exit_code": exit_code_for(job.state)}


def batch_exit_code(batch: BatchView) -> int:
    """0 when every item is done (or resumed), 1 when any failed, 3 when one was cancelled
    and none failed; a batch still running counts as failed (it was not waited for)."""
    if batch.count(JobState.FAILED.value) or batch.live:
        return EXIT_FAILED
    return EXIT_CANCELLED if batch.count(JobState.CANCELLED.value) else EXIT_OK


def batch_item_json(item: ItemView) -> dict[str, Any]:
    """One item; an image (an item of an images job, or resumed from one) is one frame."""
    frames, done = (item.job.frames_total, item.job.frames_done) if item.job else (None, None)
    if item.image is not None:
        frames, done = 1, int(item.image.state != "pending")
    return {"id": item.job_id, "input": item.input, "output": item.output, "state": item.state,
            "error": item.failure, "resumed": item.kind == RESUMED, "frames": frames, "frames_done": done}


def batch_json(batch: BatchView) -> dict[str, Any]:
    """The one object of `farm submit PATH... --json`, `farm status BATCH --json` and GET
    /batches/{id}: the batch's state and counts, every item, and what was skipped (why)."""
    frames_done, frames = batch.frames
    failed = [i.input for i in batch.items if i.state == JobState.FAILED.value]
    return {
        "batch": batch.id, "state": batch.state, "created_at": batch.created_at.isoformat() + "Z",
        "output_dir": batch.output_dir, "total": len(batch.items), "done": batch.count(JobState.DONE.value),
        "failed": len(failed), "cancelled": batch.count(JobState.CANCELLED.value), "running": batch.live,
        "resumed": sum(1 for i in batch.items if i.kind == RESUMED), "frames": frames, "frames_done": frames_done,
        "items": [batch_item_json(i) for i in batch.items],
        "skipped": [{"input": i.input, "reason": i.error} for i in batch.skipped],
        "failures": failed, "exit_code": batch_exit_code(batch) if not batch.live else None,
    }
