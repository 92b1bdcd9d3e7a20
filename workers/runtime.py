"""The seam between the worker's plain functions and the process that runs them.

chunk_runner.run_chunk, finalize.run_finalize, encoder_check and job_chain take a
`Runtime`: what a worker process keeps between tasks (farm.workers.context.WorkerContext
is the one the Celery workers use; a test may pass its own). Typed here, once, instead of
`ctx: Any`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from celery import Celery

    from farm.config import Settings
    from farm.pipeline.stage import StageChain
    from farm.state.db import Database
    from farm.state.store import JobView
    from farm.storage import Storage


class Runtime(Protocol):
    """A worker process's settings, database, storage and Celery app (to enqueue the next
    work), its warm model packs and stage chains, and what it can encode."""

    settings: Settings
    db: Database
    storage: Storage
    app: Celery | None
    reported_providers: str

    def chain_for(self, job: JobView) -> StageChain:
        """The stage chain of a job (faces, or pass-through), warm across chunks."""

    def providers_in_use(self, job: JobView) -> str | None:
        """The ONNX Runtime providers this process's sessions report."""

    def encoder_problem(self, job_id: str) -> str | None:
        """Why this process cannot produce the job's encoder; None when it can."""

    def pack(self, name: str, precision: Any = None) -> Any:
        """A model pack at a precision plan (None: the default), loaded once per process."""
