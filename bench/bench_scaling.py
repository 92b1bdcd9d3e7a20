"""Benchmark (c): scaling over N simulated GPU workers, many jobs at once.

    .venv/bin/python bench/bench_scaling.py [--workers 1 2 4 8] [--runs 3]

Each simulated worker is a real farm Celery worker process (workers.celery_worker,
prefork, concurrency 1, prefetch 1) running the real chunk task (claim in the database,
heartbeats, complete, top-up of the job window, broker enqueue) with the decode/stage/
encode work replaced by a fixed sleep per frame (bench/_sim_worker.py). Broker: the
farm's private Redis (unix socket on this host); database: SQLite under FARM_HOME.

For each N, `--runs` rounds: create `--jobs` jobs at once (real store.create_job +
submit.enqueue_job), measure the makespan from the first enqueue until every chunk is
done, and compare with the ideal = total frames * frame cost / N. The finalize step
is not part of the measurement (no cpu-queue worker runs). Goal: makespan/ideal <= 1.10.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import uuid
from fractions import Fraction
from pathlib import Path

from _util import ROOT, header, median

GOAL = 1.10
HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=6)
    ap.add_argument("--chunks", type=int, default=8, help="chunks per job (the last one is half length)")
    ap.add_argument("--frames", type=int, default=60, help="frames per full chunk")
    ap.add_argument("--frame-ms", type=float, default=10.0, help="simulated GPU time per frame")
    args = ap.parse_args()
    if args.runs < 3:
        ap.error("--runs must be at least 3")

    from farm import records, store
    from farm.media.chunk_codec import EncoderSettings
    from farm.media.plan import ChunkPlan
    from farm.config import load_settings
    from farm.db import Database, upgrade_schema
    from farm.local import start_redis
    from farm.submit import enqueue_job

    header("scaling: N simulated GPU workers (real farm task path), many jobs at once")
    home = Path("/tmp") / f"farm-bench-{uuid.uuid4().hex[:8]}"
    home.mkdir()
    env = dict(os.environ, FARM_HOME=str(home), BENCH_FRAME_S=str(args.frame_ms / 1000), PYTHONUNBUFFERED="1")
    env.pop("FARM_BROKER_URL", None)
    os.environ["FARM_HOME"] = str(home)
    os.environ.pop("FARM_BROKER_URL", None)
    settings = load_settings({"FARM_HOME": str(home)})
    start_redis(settings)
    db = Database(settings.database)
    upgrade_schema(db)
    frames_per_job = args.frames * (args.chunks - 1) + args.frames // 2
    print(f"load:    {args.jobs} jobs x {args.chunks} chunks ({args.frames} frames, last {args.frames // 2}), "
          f"{args.frame_ms:g} ms/frame -> {args.frames * args.frame_ms / 1000:.2f} s per full chunk; "
          f"job window {settings.job_window}")

    encoder = records.dump(EncoderSettings(codec="libx264", preset="veryfast", crf=18, pix_fmt="yuv420p"))

    def make_jobs() -> list[str]:
        ids = []
        for _ in range(args.jobs):
            job_id = uuid.uuid4().hex[:12]
            specs, first = [], 0
            for i in range(args.chunks):
                n = args.frames if i < args.chunks - 1 else args.frames // 2
                plan = records.dump(ChunkPlan(index=i, first_frame=first, frame_count=n, start_pts=first,
                                              end_pts=None if i == args.chunks - 1 else first + n,
                                              seg_first_packet=first, seg_end_packet=first + n,
                                              time_base=Fraction(1, 30)))
                specs.append(store.ChunkSpec(index=i, first_frame=first, frames_planned=n, plan=plan,
                                             input_path=str(home / f"{job_id}-{i}.in"),
                                             output_path=str(home / "out" / job_id / f"{i}.mov")))
                first += n
            store.create_job(db, job_id=job_id, chunks=specs, input_path="sim", source_path="sim",
                             output_path=str(home / f"{job_id}.mp4"), overwrite=True, keep_chunks=False,
                             priority=5, options={"faces": "off"}, encoder=encoder, models={},
                             frames_total=first, fps=30.0)
            ids.append(job_id)
        return ids

    def all_done(ids: list[str]) -> bool:
        for job_id in ids:
            chunks = store.get_job(db, job_id).chunks
            if any(c.state != "done" for c in chunks):
                if any(c.state == "failed" for c in chunks):
                    raise SystemExit(f"job {job_id}: a chunk failed: {[(c.state, c.error) for c in chunks]}")
                return False
        return True

    results: dict[int, list[float]] = {}
    procs: list[subprocess.Popen] = []
    try:
        for n in args.workers:
            procs = [subprocess.Popen([sys.executable, str(HERE / "_sim_worker.py"), "--hostname",
                                       f"sim{i}-n{n}@bench"], env=env, cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for i in range(n)]
            wait_ready(settings, n)
            ideal = args.jobs * frames_per_job * args.frame_ms / 1000 / n
            results[n] = []
            for _ in range(args.runs):
                ids = make_jobs()
                start = time.monotonic()
                for job_id in ids:
                    enqueue_job(settings, db, job_id)
                while not all_done(ids):
                    time.sleep(0.05)
                results[n].append((time.monotonic() - start) / ideal)
            stop(procs)
            procs = []
            ratio = median(results[n])
            print(f"N={n}: ideal {ideal:.2f} s, makespan/ideal " + ", ".join(f"{r:.3f}" for r in results[n])
                  + f" -> median {ratio:.3f} ({'met' if ratio <= GOAL else 'NOT met'}, goal <= {GOAL})")
        return 0
    finally:
        stop(procs)
        db.dispose()
        pid = home / "run" / "redis.pid"
        if pid.exists():
            try:
                os.kill(int(pid.read_text()), 15)
            except (OSError, ValueError):
                pass
        time.sleep(0.5)
        shutil.rmtree(home, ignore_errors=True)


def wait_ready(settings, n: int, timeout_s: float = 120.0) -> None:
    """Until n workers answer a ping (startup is not part of the measurement)."""
    from farm.celery_app import create_app

    app = create_app(settings)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            replies = app.control.ping(timeout=1.0) or []
            if len(replies) >= n:
                return
        raise SystemExit(f"only {len(replies)} of {n} simulated workers started")
    finally:
        app.close()


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


if __name__ == "__main__":
    raise SystemExit(main())
