"""A simulated GPU worker for bench_scaling: the real Celery worker, task and chunk path
(claim, heartbeat, complete, top-up, in the real database and broker) with the media
work replaced by a fixed sleep per frame.

    python bench/_sim_worker.py --hostname sim0@bench   (FARM_HOME, BENCH_FRAME_S set)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import farm.workers.chunk_runner as chunk_runner  # noqa: E402
from farm.pipeline.stage import PassThrough, StageChain  # noqa: E402
from farm.workers.context import WorkerContext  # noqa: E402

FRAME_S = float(os.environ.get("BENCH_FRAME_S", "0.01"))
PROGRESS_S = 1.0


def simulated_transcode(in_path, out_path, plan, settings, process, on_progress=None, should_cancel=None,
                        report_final=True, **_):
    """Take FRAME_S per planned frame, checking cancel and reporting progress as the real one does.

    Sleeps to a deadline per frame (start + n * FRAME_S), so the work is exactly
    frames * FRAME_S and time.sleep's overshoot does not pile up as fake overhead.
    """
    start = last = time.monotonic()
    for n in range(plan.frame_count):
        if should_cancel is not None and should_cancel():
            from farm.errors import ChunkCancelled

            raise ChunkCancelled("cancelled")
        time.sleep(max(0.0, start + (n + 1) * FRAME_S - time.monotonic()))
        if on_progress is not None and time.monotonic() - last >= PROGRESS_S:
            on_progress(n + 1)
            last = time.monotonic()
    Path(out_path).write_bytes(b"")
    if on_progress is not None and report_final:
        on_progress(plan.frame_count)
    return plan.frame_count


chunk_runner.transcode_chunk = simulated_transcode
WorkerContext.chain_for = lambda self, job: StageChain([PassThrough()])

if __name__ == "__main__":
    from farm.workers.celery_worker import main

    main(["--queues", "gpu", "--loglevel", "WARNING", *sys.argv[1:]])
