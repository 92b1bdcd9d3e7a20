"""What a worker process keeps between tasks: settings, database, storage, warm stage
chains, and whether it can produce each job's encoder."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from celery import Celery

from farm.config import Settings
from farm.state.db import Database
from farm.storage import Storage

if TYPE_CHECKING:
    from farm.pipeline.stage import StageChain
    from farm.state.store import JobView

log = logging.getLogger("farm.worker")


class WorkerContext:
    """The Runtime (farm.workers.runtime) of a Celery worker process."""

    def __init__(self, settings: Settings, app: Celery) -> None:
        self.settings = settings
        self.app = app
        self.db = Database(settings.database)
        self.storage = Storage(settings.storage_dir)
        self._packs: dict[str, Any] = {}
        self._providers = ""   # ONNX Runtime providers last reported by a session, comma-separated
        self.reported_providers = ""   # what this process last wrote to its registry row
        self._job_encoders: dict[str, str | None] = {}   # job id -> why this process cannot produce its encoder

    def chain_for(self, job: JobView) -> StageChain:
        """The stage chain for a job: faces when the job asks for them, else pass-through."""
        from farm.workers.job_chain import build_job_chain

        return build_job_chain(self, job)

    def report_start(self, hostname: str) -> None:
        """Register this worker process; providers stay empty until a model session exists."""
        from farm.state import registry
        self._providers = self.reported_providers = ""
        registry.report_start(self.db, hostname, os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES") or None,
                              self._providers)

    def providers_in_use(self, job: JobView) -> str | None:
        """The ONNX Runtime providers this process's sessions report, e.g. 'CPUExecutionProvider'.

        Read from the sessions themselves (session.get_providers()), not from the settings.
        A pass-through job makes no session: it returns what was last in use (None if
        nothing yet), so `farm status` keeps showing the providers the worker really has.
        """
        ref = (job.models or {}).get("pack_ref")
        key = (ref, job_plan(job))
        if ref and key in self._packs:
            used = ",".join(self._packs[key].providers_in_use())
            if used:
                self._providers = used
        return self._providers or None

    def encoder_problem(self, job_id: str) -> str | None:
        """None if this process can produce the job's stored encoder, else why not.

        One database read per job and process: a job's encoder never changes."""
        if job_id not in self._job_encoders:
            from farm.errors import JobNotFound
            from farm.media.hwaccel import encoder_problem, parse_encoder_list
            from farm.state import store
            from farm.workers.encoder_check import job_encoder

            try:
                job = store.get_job(self.db, job_id)
            except JobNotFound:
                return None                 # the claim says what happened to it
            from farm.state.images import is_images_job

            if is_images_job(job):
                problem = None   # images are written by Pillow, in their own format
            else:
                try:
                    enc = job_encoder(job)
                except ValueError as exc:   # a record of a newer farm: leave it to a worker that reads it
                    from farm import __version__

                    problem = (f"farm {__version__} on this worker cannot read the job's encoder record ({exc}); "
                               f"upgrade this worker")
                else:
                    problem = encoder_problem(enc.codec, enc.pix_fmt,
                                              parse_encoder_list(self.settings.disabled_encoders))
            if len(self._job_encoders) >= 256:
                self._job_encoders.clear()
            self._job_encoders[job_id] = problem
        return self._job_encoders[job_id]

    def pack(self, name: str, precision: Any = None) -> Any:
        """A model pack at a precision plan (farm.models.precision.Plan; None: the default),
        loaded once per process and kept warm across chunks and jobs."""
        from farm.models.precision import Plan

        key = (name, precision or Plan())
        if key not in self._packs:
            from farm.models.packs import load_pack

            self._packs[key] = load_pack(name, models_dir=self.settings.models_path,
                                         providers=self.settings.providers,
                                         cache_dir=self.settings.storage_dir / "trt-cache", precision=key[1])
            log.info("model pack %s loaded (%s)", name, key[1].name)
        return self._packs[key]


def job_plan(job: JobView) -> Any:
    """The precision plan stored with the job at submit (farm.models.precision)."""
    from farm.models.precision import Plan

    return Plan.from_dict((job.models or {}).get("precision_plan"))
