"""Celery settings for long GPU tasks (see reference.md section 3)."""

from farm.broker.celery_app import (
    QUEUE_CPU,
    QUEUE_GPU,
    TASK_FINALIZE_JOB,
    TASK_PROCESS_CHUNK,
    celery_config,
    celery_priority,
    create_app,
)
from farm.broker.tasks import register_tasks
from farm.config import load_settings


def test_long_task_settings(tmp_path):
    s = load_settings({"FARM_HOME": str(tmp_path), "FARM_CHUNK_TIME_LIMIT_S": "900"})
    conf = celery_config(s)
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_time_limit"] == 900 and conf["task_soft_time_limit"] < 900
    vt = s.visibility_timeout_s
    assert vt > 900
    assert conf["broker_transport_options"]["visibility_timeout"] == vt
    assert conf["result_backend_transport_options"]["visibility_timeout"] == vt
    assert conf["visibility_timeout"] == vt
    assert conf["task_routes"][TASK_PROCESS_CHUNK]["queue"] == QUEUE_GPU
    assert conf["task_routes"][TASK_FINALIZE_JOB]["queue"] == QUEUE_CPU


def test_tasks_have_explicit_stable_names(tmp_path):
    s = load_settings({"FARM_HOME": str(tmp_path)})
    app = create_app(s)
    register_tasks(app, s)
    assert {TASK_PROCESS_CHUNK, TASK_FINALIZE_JOB} <= set(app.tasks)
    assert TASK_PROCESS_CHUNK == "farm.process_chunk" and TASK_FINALIZE_JOB == "farm.finalize_job"


def test_each_app_runs_its_own_tasks(tmp_path):
    # Two apps in one process (a test run, an API next to a worker): each app's task is the
    # one registered on it, bound to its own settings. Celery shares app.task by default,
    # so every later app used to get the first app's task (and its database).
    import warnings

    first, second = (load_settings({"FARM_HOME": str(tmp_path / name)}) for name in ("a", "b"))
    app_a, app_b = create_app(first), create_app(second)
    register_tasks(app_a, first)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a duplicate task name would warn
        register_tasks(app_b, second)
        task_a, task_b = app_a.tasks[TASK_PROCESS_CHUNK], app_b.tasks[TASK_PROCESS_CHUNK]
    assert task_a is not task_b and task_b.app is app_b
    assert create_app(first).tasks.get(TASK_PROCESS_CHUNK) is None   # a new app has none until registered


def test_user_priority_maps_to_redis_order():
    assert celery_priority(9) == 0 and celery_priority(0) == 9 and celery_priority(5) == 4
    assert celery_priority(42) == 0 and celery_priority(-3) == 9
