"""The Celery application, built from Settings (never a global app bound at import time).

Long GPU tasks on Redis need: acks_late + prefetch 1 (one chunk at a time per GPU),
reject_on_worker_lost (a SIGKILLed chunk is redelivered; attempts are counted in the
database), and a visibility timeout above the chunk time limit, set in every place
Celery reads it, or Redis hands a still-running chunk to a second worker.
"""

from __future__ import annotations

from celery import Celery

from farm.config import Settings

TASK_PROCESS_CHUNK = "farm.process_chunk"
TASK_FINALIZE_JOB = "farm.finalize_job"
QUEUE_GPU = "gpu"
QUEUE_CPU = "cpu"
PRIORITY_LEVELS = 10  # user priority 0 (lowest) .. 9 (highest)


def celery_config(settings: Settings) -> dict:
    transport = {
        "visibility_timeout": settings.visibility_timeout_s,
        "queue_order_strategy": "priority",
        "priority_steps": list(range(PRIORITY_LEVELS)),
        "sep": ":",
    }
    return {
        "broker_url": settings.broker,
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": settings.visibility_timeout_s},
        "visibility_timeout": settings.visibility_timeout_s,
        "broker_connection_retry_on_startup": True,
        "task_ignore_result": True,            # the database holds every result
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": settings.chunk_time_limit_s,
        "task_soft_time_limit": max(settings.chunk_time_limit_s - 60, 30),
        "task_track_started": True,
        "task_send_sent_event": True,
        "worker_send_task_events": True,
        "task_default_queue": QUEUE_CPU,
        "task_routes": {TASK_PROCESS_CHUNK: {"queue": QUEUE_GPU}, TASK_FINALIZE_JOB: {"queue": QUEUE_CPU}},
        "task_queue_max_priority": PRIORITY_LEVELS - 1,
        "task_default_priority": 4,
        "worker_hijack_root_logger": False,
        "task_serializer": "json",
        "accept_content": ["json"],
    }


def create_app(settings: Settings) -> Celery:
    app = Celery("farm")
    app.conf.update(celery_config(settings))
    return app


def celery_priority(user_priority: int) -> int:
    """Redis priorities are 0 = first; the user's --priority is 9 = first."""
    return PRIORITY_LEVELS - 1 - max(0, min(PRIORITY_LEVELS - 1, user_priority))


def enqueue_chunk(app: Celery, job_id: str, index: int, priority: int, countdown_s: float = 0) -> None:
    app.send_task(TASK_PROCESS_CHUNK, args=[job_id, index], queue=QUEUE_GPU,
                  priority=celery_priority(priority), countdown=countdown_s or None)


def enqueue_finalize(app: Celery, job_id: str) -> None:
    app.send_task(TASK_FINALIZE_JOB, args=[job_id], queue=QUEUE_CPU, priority=0)
