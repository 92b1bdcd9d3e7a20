"""Control plane: the broker (Redis, Celery app and task shells, queue names) and the reaper."""
