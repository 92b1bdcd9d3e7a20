"""Thin Celery task shells: ids in, call a plain function, nothing else.

Each worker process builds its WorkerContext lazily on the first task (never in the
parent of the prefork pool, never in worker_process_init), and keeps it, with its
database engine and warm model sessions, for every later chunk and job. After each task
the process hands its freed heap back (farm.memory.release_memory): a 4K chunk's frames
otherwise stayed in its RSS until the next one.
"""

from __future__ import annotations

import logging
import os

from celery import Celery

from farm.broker.celery_app import TASK_FINALIZE_JOB, TASK_PROCESS_CHUNK
from farm.config import Settings
from farm.memory import release_memory

log = logging.getLogger("farm.broker.tasks")


def register_tasks(app: Celery, settings: Settings) -> None:
    """Add the farm's tasks to `app`; the context they use is made per process, lazily."""
    state: dict[str, object] = {}
    app_hostname = ["worker"]

    def context():  # noqa: ANN202 - WorkerContext, imported lazily
        from farm.workers.context import WorkerContext

        if state.get("pid") != os.getpid():
            state["ctx"], state["pid"] = WorkerContext(settings, app), os.getpid()
            state["ctx"].report_start(app_hostname[0])
        return state["ctx"]

    @app.task(name=TASK_PROCESS_CHUNK, bind=True, shared=False)   # shared: every later app would get this one
    def process_chunk(self, job_id: str, index: int) -> str:  # noqa: ANN001
        from farm.workers.chunk_runner import run_chunk

        app_hostname[0] = self.request.hostname or "worker"
        try:
            return run_chunk(context(), job_id, index, worker=self.request.hostname or "worker")
        finally:
            release_memory()

    @app.task(name=TASK_FINALIZE_JOB, bind=True, shared=False)
    def finalize_job(self, job_id: str) -> str:  # noqa: ANN001
        from farm.workers.finalize import run_finalize

        app_hostname[0] = self.request.hostname or "worker"
        try:
            return run_finalize(context(), job_id, owner=f"{self.request.hostname}:{os.getpid()}")
        finally:
            release_memory()
