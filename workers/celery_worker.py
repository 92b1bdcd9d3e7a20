"""One Celery worker process (run by the supervisor with its own environment).

    python -m farm.workers.celery_worker --hostname gpu0@node --queues gpu,cpu

Concurrency 1 and prefetch 1: one chunk at a time, and a queued chunk is never held
by a busy worker.
"""

from __future__ import annotations

import argparse
import logging
import sys

from farm.workers.process_exit import exit_now

from farm.broker.celery_app import create_app
from farm.broker.tasks import register_tasks
from farm.config import load_settings

EXIT_GPU_MISSING = 4   # the supervisor does not restart a child that exits with this


def check_providers(spec: str, hostname: str) -> None:
    """Refuse to start when a GPU provider was asked for and cannot be had (never a silent CPU fallback).

    This only looks for libraries and devices; it creates no CUDA context.
    """
    from farm.errors import FarmError
    from farm.models.providers import parse_providers, require

    try:
        names = parse_providers(spec)
        if names != ["auto"]:
            require(names)
    except FarmError as exc:
        print(f"farm worker {hostname}: refusing to start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_GPU_MISSING) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="farm-celery-worker")
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--queues", default="gpu,cpu")
    parser.add_argument("--loglevel", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.loglevel, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    check_providers(settings.providers, args.hostname)
    app = create_app(settings)
    register_tasks(app, settings)
    app.worker_main([
        "worker", "--hostname", args.hostname, "--queues", args.queues, "--concurrency", "1",
        "--pool", "prefork", "--prefetch-multiplier", "1", "--loglevel", args.loglevel,
        "--task-events", "--without-gossip", "--without-mingle",
    ])


if __name__ == "__main__":
    try:
        main()
    except SystemExit as stop:   # Celery ends its worker with sys.exit
        exit_now(0 if stop.code is None else stop.code if isinstance(stop.code, int) else 1)
    exit_now(0)
