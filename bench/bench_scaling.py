"""Benchmark (c): scaling over N simulated GPU workers, many jobs at once.

    .venv/bin/python bench/bench_scaling.py [--workers 1 2 4 8] [--runs 3] [--broker redis://127.0.0.1:PORT/N]
                                            [--pg postgresql://postgres@127.0.0.1:5432/test]

Each simulated worker is a real farm Celery worker process (farm.workers.celery_worker,
prefork, concurrency 1, prefetch 1) running the real chunk task (claim in the database,
heartbeats, finish with the top-up of the job window, broker enqueue) with the decode/stage/
encode work replaced by a fixed cost per frame (bench/_sim_worker.py). Broker: Redis on
loopback TCP, as a cluster's would be reached: by default a private redis-server this
script starts on a free 127.0.0.1 port (and stops); `--broker` names one instead (its
database must be empty; it is emptied again at the end). Database: SQLite under a
private FARM_HOME (the embedded default), or with `--pg ADMIN_URL` a private PostgreSQL
database made on that server for the run and dropped after it (what a cluster uses).

For each N: one warm-up round (each worker process opens its database engine; not
counted), then `--runs` rounds: create `--jobs` jobs at once (real store.create_job +
submit.enqueue_job), measure the makespan from the first enqueue until every chunk is
done, and compare with the ideal = total frames * frame cost / N. Also printed: the
floor of the load, the makespan / ideal its chunks would give with zero overhead (each
free worker takes the next chunk in the broker's order); few, unequal chunks cannot be
spread evenly however fast the farm is. The default load (8 jobs x 8 chunks of 1.2 s,
the last one 0.6 s) has a floor of 1.000 for N = 1, 2, 4, 8. The finalize step is not
part of the measurement (no cpu-queue worker runs). Goal: makespan/ideal <= 1.10.
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
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--chunks", type=int, default=8, help="chunks per job (the last one is half length)")
    ap.add_argument("--frames", type=int, default=120, help="frames per full chunk")
    ap.add_argument("--frame-ms", type=float, default=10.0, help="simulated GPU time per frame")
    ap.add_argument("--broker", default=None, metavar="redis://127.0.0.1:PORT/N",
                    help="a loopback Redis database to use (must be empty); default: start a private one")
    ap.add_argument("--pg", default=None, metavar="postgresql://USER@HOST:PORT/DB",
                    help="run on a private database created (and dropped) on this PostgreSQL server")
    args = ap.parse_args()
    if args.runs < 3:
        ap.error("--runs must be at least 3")
    if args.broker and not args.broker.startswith("redis://"):
        ap.error("--broker takes a redis://HOST:PORT/N URL (TCP)")

    from farm.config import load_settings, redact_url
    from farm.jobs.submit import enqueue_job
    from farm.media.chunk_codec import EncoderSettings
    from farm.media.plan import ChunkPlan
    from farm.state import records, store
    from farm.state.db import Database, upgrade_schema

    header("scaling: N simulated GPU workers (real farm task path), many jobs at once")
    home = Path("/tmp") / f"farm-bench-{uuid.uuid4().hex[:8]}"
    home.mkdir()
    redis_proc = None
    if args.broker:
        broker = args.broker
        check_empty(broker)
    else:
        redis_proc, broker = start_loopback_redis(home / "run")
    print(f"broker:  {redact_url(broker)}" + (" (private redis-server, loopback TCP)" if redis_proc else ""))
    env = dict(os.environ, FARM_HOME=str(home), FARM_BROKER_URL=broker, BENCH_FRAME_S=str(args.frame_ms / 1000),
               PYTHONUNBUFFERED="1")
    os.environ["FARM_HOME"] = str(home)
    os.environ["FARM_BROKER_URL"] = broker
    pg_name = None
    if args.pg:
        pg_name, env["FARM_DATABASE_URL"] = create_pg_database(args.pg)
        os.environ["FARM_DATABASE_URL"] = env["FARM_DATABASE_URL"]
    settings = load_settings({"FARM_HOME": str(home), "FARM_BROKER_URL": broker,
                              **({"FARM_DATABASE_URL": env["FARM_DATABASE_URL"]} if pg_name else {})})
    print(f"database: {'PostgreSQL (private database ' + pg_name + ')' if pg_name else 'SQLite under FARM_HOME'}")
    db = Database(settings.database)
    upgrade_schema(db)
    frames_per_job = args.frames * (args.chunks - 1) + args.frames // 2
    print(f"load:    {args.jobs} jobs x {args.chunks} chunks ({args.frames} frames, last {args.frames // 2}), "
          f"{args.frame_ms:g} ms/frame -> {args.frames * args.frame_ms / 1000:.2f} s per full chunk; "
          f"job window {settings.job_window}")

    encoder = records.dump(EncoderSettings(codec="libx264", preset="veryfast", crf=18, pix_fmt="yuv420p"))

    def make_jobs(jobs: int = args.jobs, chunks: int = args.chunks, frames: int = args.frames) -> list[str]:
        ids = []
        for _ in range(jobs):
            job_id = uuid.uuid4().hex[:12]
            specs, first = [], 0
            for i in range(chunks):
                n = frames if i < chunks - 1 else max(1, frames // 2)
                plan = records.dump(ChunkPlan(index=i, first_frame=first, frame_count=n, start_pts=first,
                                              end_pts=None if i == chunks - 1 else first + n,
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
        """One read (polled every 50 ms): are all chunks of these jobs done? Exits on a failed chunk."""
        from sqlalchemy import func, select

        from farm.state.db import Chunk

        with db.sessions() as s:
            rows = s.execute(select(Chunk.state, func.count()).where(Chunk.job_id.in_(ids))
                             .group_by(Chunk.state)).all()
        counts = dict(rows)
        if counts.get("failed"):
            failed = [(j, c.index, c.error) for j in ids for c in store.get_job(db, j).chunks if c.state == "failed"]
            raise SystemExit(f"a chunk failed: {failed}")
        return set(counts) == {"done"}

    def run_round(ids: list[str]) -> float:
        """Enqueue the jobs as submit does and wait until every chunk is done; seconds."""
        start = time.monotonic()
        for job_id in ids:
            enqueue_job(settings, db, job_id)
        while not all_done(ids):
            time.sleep(0.05)
        return time.monotonic() - start

    full, last = args.frames, max(1, args.frames // 2)
    chunk_frames = [f for _ in range(args.jobs) for f in ([full] * (args.chunks - 1) + [last])]  # queue order
    results: dict[int, list[float]] = {}
    procs: list[subprocess.Popen] = []
    try:
        for n in args.workers:
            procs = [subprocess.Popen([sys.executable, str(HERE / "_sim_worker.py"), "--hostname",
                                       f"sim{i}-n{n}@bench"], env=env, cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for i in range(n)]
            wait_ready(settings, n)
            run_round(make_jobs(jobs=2 * n, chunks=1, frames=20))   # warm-up, not counted: each process
            ideal = args.jobs * frames_per_job * args.frame_ms / 1000 / n   # opens its database engine
            floor = packing_floor(chunk_frames, n) * args.frame_ms / 1000 / ideal
            results[n] = [run_round(make_jobs()) / ideal for _ in range(args.runs)]
            stop(procs)
            procs = []
            ratio = median(results[n])
            print(f"N={n}: ideal {ideal:.2f} s, makespan/ideal " + ", ".join(f"{r:.3f}" for r in results[n])
                  + f" -> median {ratio:.3f} ({'met' if ratio <= GOAL else 'NOT met'}, goal <= {GOAL}); "
                  f"floor of this load with zero overhead {floor:.3f}")
        return 0
    finally:
        stop(procs)
        db.dispose()
        if pg_name:
            drop_pg_database(args.pg, pg_name)
        if redis_proc is not None:
            stop([redis_proc])
        else:
            import redis

            redis.Redis.from_url(broker).flushdb()   # the finalize messages nobody consumed
        shutil.rmtree(home, ignore_errors=True)


def packing_floor(chunk_frames: list[int], n: int) -> int:
    """Frames on the busiest of n workers when each free worker takes the next chunk in queue
    order (the broker's FIFO of each job's chunks, longest first) and nothing costs overhead:
    the best this load can do, since chunks are not split further."""
    import heapq

    loads = [0] * n
    for frames in chunk_frames:
        heapq.heappush(loads, heapq.heappop(loads) + frames)
    return max(loads)


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_loopback_redis(run_dir: Path, timeout_s: float = 15.0) -> tuple[subprocess.Popen, str]:
    """Start a private redis-server on a free 127.0.0.1 port (no persistence); (process, URL)."""
    import redis

    from farm.broker.embedded import redis_server_exe

    run_dir.mkdir(parents=True, exist_ok=True)
    port = free_loopback_port()
    proc = subprocess.Popen([redis_server_exe(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(run_dir),
                             "--save", "", "--appendonly", "no", "--daemonize", "no"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if redis.Redis.from_url(url, socket_timeout=1).ping():
                return proc, url
        except redis.RedisError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    stop([proc])
    raise SystemExit(f"redis-server did not start on 127.0.0.1:{port}")


def create_pg_database(admin_url: str) -> tuple[str, str]:
    """A new empty database on the server of `admin_url`; (name, its URL)."""
    import psycopg

    name = f"farm_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise SystemExit(f"--pg: cannot create a database on {admin_url}: {exc}") from None
    return name, f"{admin_url.rsplit('/', 1)[0]}/{name}"


def drop_pg_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def check_empty(url: str) -> None:
    """Refuse a --broker database that holds keys: the benchmark empties it at the end."""
    import redis

    try:
        keys = redis.Redis.from_url(url, socket_timeout=5).dbsize()
    except redis.RedisError as exc:
        raise SystemExit(f"--broker: cannot reach Redis: {exc}") from None
    if keys:
        raise SystemExit(f"--broker: the database holds {keys} keys; give an empty one (e.g. another /N)")


def wait_ready(settings, n: int, timeout_s: float = 120.0) -> None:
    """Until n workers answer a ping (startup is not part of the measurement)."""
    from farm.broker.celery_app import create_app

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
