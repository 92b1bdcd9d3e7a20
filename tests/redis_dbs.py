"""Databases of the machine's Redis server for the tests that use it (cluster mode)."""

from __future__ import annotations

import os


def shared_redis_db(first: int) -> int:
    """A database of the machine's Redis server for one test file: `first` for the only (or
    first) pytest-xdist worker, first + 1 for the second, so that two files running at once
    never flush each other's (README's test command runs two workers). Files take:
    test_cluster_mode 7, test_encoder_per_job 9, test_submit_cli 11, test_api_upload_limit 13."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return first + int(worker[2:] or 0)
