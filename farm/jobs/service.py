"""The job service: submit, cancel and retry, as `farm` (the CLI) and the HTTP API both call them.

One set of semantics and errors for both front ends; each keeps only its own concerns (the
CLI starts the local farm, prints and waits; the API handles idempotency keys, output claims,
upload folders and maps errors to HTTP statuses: farm.api.app.STATUS_FOR_ERROR).

- submit_job: every check runs before anything is stored (InputError etc.: CLI exit 2,
  HTTP 422). Once the job is recorded it *is* submitted: the database is the truth, the
  broker only carries work. If the broker then refuses the hand-over, the job stays queued
  in the database and the reaper (every `farm worker`, `farm up`) hands it over when the
  broker is back; submit_job returns it with `enqueued=False` and a `warning`, and both
  front ends report it as submitted (exit 0 with its id; HTTP 201) with that warning. An
  error there would make a CI client submit again and render the video twice.
  An output that another live job is to write is refused (farm.jobs.reservation).
- cancel_job: any job not done is cancelled; a done job is refused (StateError: exit 2,
  HTTP 409), saying what is at its output now (farm.jobs.published: a later job may have replaced it).
- retry_job: a failed or cancelled job runs its unfinished chunks again, or is finalized
  again when none is left, unless another live job is now to write its output; a queued,
  running or finalizing job (one left behind by a stopped farm, say) gets queued again what
  the broker lost (farm.broker.reaper.reap, for that job only); a done job is refused
  (StateError: exit 2, HTTP 409). As at submit, a broker that refuses the hand-over once the
  database holds the job as to be run is a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import redis
from kombu.exceptions import KombuError

from farm.config import Settings
from farm.errors import StateError, UnavailableError
from farm.state import store
from farm.state.db import Database
from farm.state.states import JOB_LIVE, JobState

if TYPE_CHECKING:   # farm.jobs.submit (probe, plan, split: PyAV) is imported only by the calls that use it,
    from farm.jobs.submit import SubmitRequest  # so that `farm cancel` and `farm retry` start fast

BROKER_ERRORS = (UnavailableError, redis.RedisError, KombuError, OSError)
"""What handing work to the broker raises when it is down or refuses (enqueue_job's own is UnavailableError)."""


@dataclass(frozen=True)
class Submitted:
    """The job submit_job created (its own id, never looked up again)."""

    job: store.JobView
    enqueued: bool             # handed to the broker now; False: the reaper hands it over later
    warning: str | None = None  # why it is not enqueued yet (the broker refused it)


@dataclass(frozen=True)
class Retried:
    """What retry_job did to the job; `message` is the sentence both front ends show."""

    job: store.JobView         # the job after the retry
    message: str
    chunks: int                # chunks queued again (failed/cancelled), or re-enqueued (live)
    finalizing: bool = False   # nothing was left to render: the finalize step is queued again
    requeued: dict[str, int] | None = None   # a live job: what the reaper queued again, by kind
    warning: str | None = None  # the broker refused the hand-over; the reaper does it later


def submit_job(req: SubmitRequest, settings: Settings, db: Database, *,
               on_step: Callable[[str], None] | None = None,
               before_store: Callable[[], None] | None = None) -> Submitted:
    """Check, record and enqueue a job; the Submitted names the job this call recorded.

    on_step: progress messages; before_store: called once every check has passed, before
    anything is written (the CLI starts the local farm there, so a refused job starts nothing).
    """
    from farm.jobs.submit import enqueue_job, record

    job_id = record(req, settings, db, on_step=on_step, before_store=before_store)
    if on_step is not None:
        on_step("enqueueing")
    warning = _hand_over(settings, job_id, lambda: enqueue_job(settings, db, job_id))
    return Submitted(store.get_job(db, job_id), enqueued=warning is None, warning=warning)


def cancel_job(settings: Settings, db: Database, job_id: str) -> store.JobView:
    """Cancel a job (workers stop between frames; nothing is published); returns it cancelled.

    Refused (StateError) once the job is done, including when its output was being
    published as the cancel came: publishing and finishing happen under the job's lock.
    """
    try:
        return store.request_cancel(db, job_id)
    except StateError as exc:
        job = store.get_job(db, job_id)
        if job.state != JobState.DONE.value:
            raise
        from farm.jobs.published import changed_since, delete_hint

        changed = changed_since(job)   # a later job may have replaced it since
        raise StateError(exc.message + (f"; {changed}" if changed else ""), hint=delete_hint(job)) from None


def retry_job(settings: Settings, db: Database, job_id: str, *,
              before_enqueue: Callable[[], None] | None = None) -> Retried:
    """Run a job again from what the database says is left (the semantics above).

    before_enqueue: called once the retry is accepted, before the broker is used (the CLI
    starts the local farm there, so a refused retry starts nothing).
    """
    job = store.get_job(db, job_id)
    if job.state == JobState.DONE.value:
        from farm.jobs.published import describe

        raise StateError(f"job {job_id} is done, so there is nothing to retry: {describe(job)}",
                         hint="submit the video again for a new render")
    if JobState(job.state) in JOB_LIVE:   # nothing to reset: queue again what the broker lost
        return _retry_live(settings, db, job, before_enqueue)
    from farm.jobs.reservation import claim_again
    from farm.jobs.submit import enqueue_job

    # StateError if it changed state meanwhile, or another live job is now to write its output
    todo = store.retry_job(db, job_id, also=claim_again)
    if before_enqueue is not None:
        before_enqueue()
    if todo:
        warning = _hand_over(settings, job_id, lambda: enqueue_job(settings, db, job_id))
    else:
        warning = _hand_over(settings, job_id, lambda: _enqueue_finalize(settings, job_id))
    message = f"job {job_id}: {len(todo)} chunk(s) queued again" + ("" if todo else "; finalizing")
    return Retried(store.get_job(db, job_id), message, len(todo), finalizing=not todo, warning=warning)


def _retry_live(settings: Settings, db: Database, job: store.JobView,
                before_enqueue: Callable[[], None] | None) -> Retried:
    """A job the farm still holds as live: queue again what the broker lost (stale or lost
    chunks, a lost top-up, a lost or stale finalize), and nothing that is really running."""
    from farm.broker.reaper import reap

    if before_enqueue is not None:
        before_enqueue()
    counts: dict[str, int] = {}

    def reap_job() -> None:
        counts.update(reap(settings, db, job_id=job.id))

    warning = _hand_over(settings, job.id, reap_job)
    shown = {kind: n for kind, n in counts.items() if n}
    message = (f"job {job.id} is {job.state}; queued again what the broker did not hold: "
               + (", ".join(f"{n} {kind}" for kind, n in shown.items()) or "nothing was missing"))
    chunks = sum(n for kind, n in counts.items() if kind != "finalize")
    return Retried(store.get_job(db, job.id), message, chunks, finalizing=job.state == JobState.FINALIZING.value,
                   requeued=counts, warning=warning)


def _enqueue_finalize(settings: Settings, job_id: str) -> None:
    from farm.broker.celery_app import create_app, enqueue_finalize

    app = create_app(settings)
    try:
        enqueue_finalize(app, job_id)
    finally:
        app.close()


def _hand_over(settings: Settings, job_id: str, send: Callable[[], object]) -> str | None:
    """Run `send` (which talks to the broker); None if it worked, else the warning to show:
    the database already holds the job as to be run, so a broker refusal is not an error."""
    try:
        send()
    except BROKER_ERRORS as exc:
        from farm.jobs.submit import broker_refused

        error = exc if isinstance(exc, UnavailableError) else broker_refused(settings, job_id, exc)
        return f"{error.message} ({error.hint})"
    return None
