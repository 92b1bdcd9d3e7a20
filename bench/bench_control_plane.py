"""Control plane at scale (issue 17.5): N simulated GPU workers on PostgreSQL and Redis.

    .venv/bin/python bench/bench_control_plane.py [--workers 200] [--minutes 5] [--jobs 20] [--load 1]
        [--kill 4] [--chunk-s 1.0] [--pg postgresql://postgres@127.0.0.1:5432/test] [--db-connections 60]

The farm's own code runs: jobs recorded with store.create_job and handed to the broker with
submit.enqueue_job; each simulated worker runs the real workers.chunk_runner.run_chunk
(encoder check, chunks.claim_chunk with the worker's registry row, chunks.heartbeat,
chunks.finish_chunk with the window top-up, the Celery enqueue of the next chunks or of
finalize) with the media work replaced by a sleep of --chunk-s (one beat half-way). The real
reaper (broker.reaper.reap) runs every --reap-s in the main process; two finalizer threads
there run the database part of workers.finalize.run_finalize (claim_finalize, the owner's
Heartbeat of touch_finalize, publish_and_finish), the media work a no-op; each finalize
message is delivered two or three times (redeliveries that must be no-ops).

The consumer is thin, not Celery's: each simulated worker is a thread that BRPOPs the gpu
queue's real kombu lists (`gpu`, `gpu:1` ... `gpu:9` in priority order, as kombu's Redis
transport does), decodes the real Celery message (args, eta), holds it in kombu's `unacked`
hash until it is done (acks_late) and keeps countdown (eta) messages aside until due, as a
Celery worker does. 50 threads per process share one engine (--db-connections / processes
connections) and one Celery app. --kill workers die mid-chunk (no beat, no finish, no ack):
the reaper must requeue their chunks after FARM_STALE_HEARTBEAT_S (--stale-s).
The load is --workers x --minutes of chunks x --load (below 1 where the machine cannot carry
workers / chunk-s claims a second), in --jobs jobs of 0.5-1.5x the mean size, priorities 0-9.

Printed: claim latency (message pop -> claim committed) p50/p99/max; the time of the claim,
heartbeat and finish transactions, of the enqueue and of a pool checkout; row-lock waits
(pg_locks); the share of worker-time idle while messages wait in the gpu queue (goal < 5%)
and while chunks wait in the database outside the broker (the job window); chunks lost and
done twice, jobs finalized twice (from the database); priority inversions (a pop while a
higher-priority job's message had waited INVERSION_S in the queue) and the mean wait per
priority; cores used by the simulated workers, the main process, PostgreSQL's backends and
Redis, and the machine's load. Goals: p99 claim < 100 ms, idle < 5%, 0 lost, 0 finalized twice.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import heapq
import json
import math
import multiprocessing as mp
import os
import random
import shutil
import threading
import time
import uuid
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path

from _util import header
from bench_scaling import (
    create_pg_database,
    drop_pg_database,
    start_loopback_redis,
    stop,
)

IDLE, CONTROL, RENDER, DEAD = 0, 1, 2, 3
THREADS_PER_PROC = 50
WARM_S = 10.0        # claims in the first seconds open the pools' connections: shown apart
INVERSION_S = 0.05   # a higher-priority message this long in the queue outranks a pop


class Killed(BaseException):
    """A simulated worker dies mid-chunk: no beat, no finish, no ack (run_chunk cannot catch it)."""


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, .5) * 1e3:.1f} / p99 {pct(values, .99) * 1e3:.1f} / max {max(values, default=0) * 1e3:.1f} ms"


def sized_database(url: str, pool: int):
    """The farm's Database, its engine with a pool of `pool` connections shared by the threads."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from farm.state.db import Database

    db = Database(url)
    db.engine.dispose()
    db.engine = create_engine("postgresql+psycopg://" + url.split("://", 1)[1], pool_pre_ping=True,
                              pool_size=pool, max_overflow=0, pool_timeout=60)
    db.sessions = sessionmaker(db.engine, expire_on_commit=False)
    return db


def pushes_recorded(enqueue, out: list):
    """enqueue_chunk that notes (job, chunk, time) of each message it makes poppable at once."""
    def wrapper(app, job_id, index, priority, countdown_s=0):
        enqueue(app, job_id, index, priority, countdown_s=countdown_s)
        if not countdown_s:
            out.append((job_id, index, time.time()))
    return wrapper


def decode(raw: bytes) -> tuple[dict, list, float | None]:
    """(message, args, eta as epoch seconds or None) of one Celery message from kombu's list."""
    msg = json.loads(raw)
    args = json.loads(base64.b64decode(msg["body"]))[0]
    eta = msg["headers"].get("eta")
    return msg, args, dt.datetime.fromisoformat(eta).timestamp() if eta else None


def worker_process(k: int, names: list[str], doomed: dict[str, int], states, env: dict, out: str,
                   pool: int, chunk_s: float, stop_evt) -> None:
    """One process of simulated workers: a thread each, running the real run_chunk."""
    os.environ.update(env)
    import farm.workers.chunk_runner as runner
    import redis
    from farm.workers.context import WorkerContext

    from farm.broker import transport
    from farm.broker.celery_app import QUEUE_GPU, create_app
    from farm.config import load_settings
    from farm.pipeline.stage import PassThrough, StageChain
    from farm.state import chunks

    settings = load_settings(env)
    app = create_app(settings)
    app.conf.broker_pool_limit = len(names) + 2          # a producer per thread: no wait for one
    ctx = WorkerContext(settings, app)
    ctx.db.dispose()
    ctx.db = sized_database(settings.database, pool)
    ctx.chain_for = lambda job: StageChain([PassThrough()])
    rec: dict[str, list[float]] = defaultdict(list)
    counts: Counter = Counter()
    local = threading.local()

    def timed(name: str, fn, since_pop: str | None = None):
        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                t1 = time.perf_counter()
                rec[name].append(t1 - t0)
                if since_pop:
                    rec[since_pop].append(t1 - local.popped)
                    rec["claim_at"].append(time.time())
                    rec["pops"].append((a[1], a[2], local.popped_at))
        return wrapper

    chunks.claim_chunk = timed("claim_txn", chunks.claim_chunk, since_pop="claim")
    chunks.heartbeat = timed("heartbeat_txn", chunks.heartbeat)
    chunks.finish_chunk = timed("finish_txn", chunks.finish_chunk)
    runner.enqueue_chunk = timed("enqueue", pushes_recorded(runner.enqueue_chunk, rec["pushes"]))
    runner.enqueue_finalize = timed("enqueue", runner.enqueue_finalize)
    ctx.db.engine.pool.connect = timed("pool_wait", ctx.db.engine.pool.connect)

    def render(in_path, out_path, plan, settings, process, on_progress=None, should_cancel=None, **_):
        states[local.slot] = RENDER
        local.rendered += 1
        half = chunk_s / 2
        time.sleep(half)
        if local.rendered == doomed.get(local.name):
            states[local.slot] = DEAD
            raise Killed
        on_progress(plan.frame_count // 2)
        time.sleep(chunk_s - half)
        states[local.slot] = CONTROL
        counts["rendered"] += 1
        return plan.frame_count

    runner.transcode_chunk = render
    opts = transport._transport(settings)
    keys = transport.queue_keys(QUEUE_GPU, opts)
    unacked, index_key = opts.get("global_keyprefix", "") + transport.UNACKED_KEY, "unacked_index"
    later: list[tuple[float, str, bytes]] = []            # eta messages kept aside, as a Celery worker does
    later_lock = threading.Lock()

    def next_message(r) -> bytes | None:
        with later_lock:
            if later and later[0][0] <= time.time():
                return heapq.heappop(later)[2]
        got = r.brpop(keys, timeout=1)
        return got[1] if got else None

    def sim(slot: int, name: str) -> None:
        local.slot, local.name, local.rendered = slot, name, 0
        r = redis.Redis.from_url(settings.broker)
        while not stop_evt.is_set():
            states[slot] = IDLE
            raw = next_message(r)
            if raw is None:
                continue
            local.popped, local.popped_at = time.perf_counter(), time.time()
            states[slot] = CONTROL
            msg, (job_id, index), eta = decode(raw)
            tag = msg["properties"]["delivery_tag"]
            r.pipeline().zadd(index_key, {tag: time.time()}).hset(unacked, tag, json.dumps([msg, "", "gpu"])).execute()
            if eta and eta > time.time():
                with later_lock:
                    heapq.heappush(later, (eta, tag, raw))
                continue
            try:
                outcome = runner.run_chunk(ctx, job_id, index, worker=name)
            except Killed:
                counts["killed"] += 1
                return
            counts[outcome.split(",")[0].split(":")[0]] += 1
            r.pipeline().zrem(index_key, tag).hdel(unacked, tag).execute()

    base = k * THREADS_PER_PROC
    threads = [threading.Thread(target=sim, args=(base + i, n), daemon=True) for i, n in enumerate(names)]
    t0, c0 = time.monotonic(), os.times()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c1 = os.times()
    Path(out).write_text(json.dumps({"rec": rec, "counts": counts, "cpu_s": c1.user + c1.system - c0.user - c0.system,
                                     "wall_s": time.monotonic() - t0}))


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process so far (seconds), from /proc; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return 0.0


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine, from /proc/stat."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=5.0, help="planned work: workers x minutes of chunks x --load")
    ap.add_argument("--load", type=float, default=1.0,
                    help="share of that work planned (< 1 where the machine cannot carry workers/chunk-s claims a second)")
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--kill", type=int, default=4, help="simulated workers killed mid-chunk")
    ap.add_argument("--chunk-s", type=float, default=1.0)
    ap.add_argument("--stale-s", type=float, default=10.0, help="FARM_STALE_HEARTBEAT_S for the run")
    ap.add_argument("--reap-s", type=float, default=5.0)
    ap.add_argument("--window", type=int, default=None, help="FARM_JOB_WINDOW (default: the farm's)")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test", metavar="ADMIN_URL")
    ap.add_argument("--db-connections", type=int, default=60, help="for all simulated workers together")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    import logging

    from farm.workers.beats import Heartbeat
    from sqlalchemy import select, text

    import farm.broker.reaper as reaper_mod
    import farm.jobs.submit as submit_mod
    from farm.broker import transport
    from farm.broker.celery_app import (
        QUEUE_CPU,
        QUEUE_GPU,
        create_app,
        enqueue_finalize,
    )
    from farm.broker.reaper import reap
    from farm.config import load_settings
    from farm.jobs.submit import enqueue_job
    from farm.media.plan import ChunkPlan
    from farm.state import finalizing, records, store
    from farm.state.db import Chunk, Event, Job, upgrade_schema

    logging.getLogger("farm.broker.reaper").setLevel(logging.ERROR)   # its counts are printed at the end

    header(f"control plane at scale: {args.workers} simulated GPU workers, {args.jobs} jobs (issue 17.5)")
    rng = random.Random(args.seed)
    home = Path("/tmp") / f"farm-cp-{uuid.uuid4().hex[:8]}"
    home.mkdir()
    redis_proc, broker = start_loopback_redis(home / "run")
    pg_name, db_url = create_pg_database(args.pg)
    env = {"FARM_HOME": str(home), "FARM_BROKER_URL": broker, "FARM_DATABASE_URL": db_url,
           "FARM_STALE_HEARTBEAT_S": str(args.stale_s), **({"FARM_JOB_WINDOW": str(args.window)} if args.window else {})}
    settings = load_settings(env)
    procs_n = math.ceil(args.workers / THREADS_PER_PROC)
    pool = max(2, args.db_connections // procs_n)
    print(f"broker: private redis-server on loopback TCP; database: PostgreSQL, private database {pg_name}")
    print(f"workers: {args.workers} threads in {procs_n} processes, {pool} connections each; job window "
          f"{settings.job_window}; chunk {args.chunk_s:g} s; stale after {args.stale_s:g} s; reaper every {args.reap_s:g} s")
    mp_ctx = mp.get_context("fork")
    stop_evt = mp_ctx.Event()
    states = mp_ctx.Array("b", args.workers, lock=False)
    names = [f"sim{i}@bench" for i in range(args.workers)]
    per_worker = args.minutes * 60 / args.chunk_s
    doomed = {n: rng.randint(int(per_worker * args.load * .2) + 1, int(per_worker * args.load * .5) + 1) for n in rng.sample(names, args.kill)}
    procs, fin_threads, db = [], [], None
    try:
        db = sized_database(db_url, 6)
        upgrade_schema(db)
        db.engine.dispose()                                # no connection crosses the fork
        for k in range(procs_n):
            mine = names[k * THREADS_PER_PROC:(k + 1) * THREADS_PER_PROC]
            p = mp_ctx.Process(target=worker_process, args=(k, mine, doomed, states, env, str(home / f"w{k}.json"),
                                                            pool, args.chunk_s, stop_evt))
            p.start()
            procs.append(p)
        # the load: --jobs jobs of unequal sizes, priorities 0..9, together --workers x --minutes of chunks
        total = int(args.workers * per_worker * args.load)
        weights = [rng.uniform(.5, 1.5) for _ in range(args.jobs)]
        sizes = [max(1, int(total * w / sum(weights))) for w in weights]
        prios = [i % 10 for i in range(args.jobs)]
        rng.shuffle(prios)
        encoder = {"codec": "libx264", "preset": "veryfast", "crf": 18, "pix_fmt": "yuv420p"}
        jobs = {}
        for size, prio in zip(sizes, prios):
            job_id = uuid.uuid4().hex[:12]
            specs = [store.ChunkSpec(i, i * 30, 30, records.dump(ChunkPlan(
                index=i, first_frame=i * 30, frame_count=30, start_pts=i * 30, end_pts=(i + 1) * 30,
                seg_first_packet=i * 30, seg_end_packet=(i + 1) * 30, time_base=Fraction(1, 30))),
                str(home / job_id / f"{i}.in"), str(home / job_id / "out" / f"{i}.mov")) for i in range(size)]
            store.create_job(db, job_id=job_id, chunks=specs, input_path="sim", source_path="sim",
                             output_path=str(home / f"{job_id}.mp4"), overwrite=True, keep_chunks=False,
                             priority=prio, options={"faces": "off"}, encoder=encoder, models={},
                             frames_total=size * 30, fps=30.0)
            jobs[job_id] = prio
        print(f"load: {sum(sizes)} chunks in {args.jobs} jobs ({min(sizes)}-{max(sizes)} chunks each), "
              f"priorities {sorted(prios)}; {args.kill} workers killed mid-chunk")
        # finalizers and the reaper, in this process
        published, fin_outcomes, reap_s, reap_counts = Counter(), Counter(), [], Counter()
        app = create_app(settings)
        main_pushes: list = []
        submit_mod.enqueue_chunk = pushes_recorded(submit_mod.enqueue_chunk, main_pushes)
        reaper_mod.enqueue_chunk = pushes_recorded(reaper_mod.enqueue_chunk, main_pushes)
        done_evt = threading.Event()

        seen: set[str] = set()

        def finalizer(k: int) -> None:
            r = transport.client(settings)
            keys = transport.queue_keys(QUEUE_CPU, transport._transport(settings))
            while not done_evt.is_set():
                got = r.brpop(keys, timeout=1)
                if not got:
                    continue
                _msg, (job_id,), _eta = decode(got[1])
                if job_id not in seen:
                    seen.add(job_id)
                    enqueue_finalize(app, job_id)          # a redelivery: must be a no-op
                owner = f"fin{k}@bench:{os.getpid()}"
                if finalizing.claim_finalize(db, job_id, owner, stale_after_s=settings.stale_heartbeat_s) is None:
                    fin_outcomes["skip"] += 1
                    continue
                beat = Heartbeat(lambda j=job_id, o=owner: finalizing.touch_finalize(db, j, o),
                                 store.beat_interval_s(settings.stale_heartbeat_s)).start()
                time.sleep(0.05)                           # join, verify, label: no-op here
                outcome = finalizing.publish_and_finish(db, job_id, owner, lambda j=job_id: published.update([j]))
                beat.stop()
                fin_outcomes[outcome] += 1

        def reaper() -> None:
            while not done_evt.wait(args.reap_s):
                t0 = time.perf_counter()
                reap_counts.update(reap(settings, db))
                reap_s.append(time.perf_counter() - t0)

        fin_threads = [threading.Thread(target=finalizer, args=(k,), daemon=True) for k in range(2)]
        fin_threads.append(threading.Thread(target=reaper, daemon=True))
        for t in fin_threads:
            t.start()
        cpu0 = {p.pid: proc_cpu_s(p.pid) for p in procs}
        busy0, all0 = machine_busy()
        main0, redis0 = sum(os.times()[:2]), proc_cpu_s(redis_proc.pid)
        start, t_start = time.monotonic(), time.time()
        for job_id in jobs:                                # submit's hand-off to the broker
            enqueue_job(settings, db, job_id)
        conn = transport.client(settings)
        samples, pg_pids = Counter(), set()
        last_db, db_waiting = 0.0, 0
        deadline = start + args.minutes * 60 * 3 + 120
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = time.monotonic()
            waiting = transport.depths(conn, settings, [QUEUE_GPU])[0][QUEUE_GPU]
            if now - last_db >= 1.0:
                last_db = now
                with db.sessions() as s:
                    db_waiting = s.execute(select(text("count(*)")).select_from(Chunk).join(Job, Job.id == Chunk.job_id)
                                           .where(*store.rendering_clause(), Chunk.state == "pending",
                                                  Chunk.queued_at.is_(None))).scalar_one()
                    samples["lock_waits"] += s.execute(text(
                        "select count(*) from pg_locks l join pg_stat_activity a using (pid) "
                        "where not l.granted and a.datname = :d"), {"d": pg_name}).scalar_one()
                    samples["lock_samples"] += 1
                    pg_pids |= set(s.execute(text("select pid from pg_stat_activity where datname = :d"),
                                             {"d": pg_name}).scalars())
                    left = s.execute(select(text("count(*)")).select_from(Job).where(Job.state != "done")).scalar_one()
                if left == 0:
                    break
            st = Counter(states)
            alive = args.workers - st[DEAD]
            key = "broker" if waiting else "db" if db_waiting else "none"
            samples[key, "n"] += 1
            samples[key, "idle"] += st[IDLE] / alive
            samples[key, "control"] += st[CONTROL] / alive
        elapsed = time.monotonic() - start
        busy1, all1 = machine_busy()
        cpu = {"workers": sum(proc_cpu_s(p.pid) - cpu0[p.pid] for p in procs),
               "main": sum(os.times()[:2]) - main0, "redis": proc_cpu_s(redis_proc.pid) - redis0,
               "postgres": sum(proc_cpu_s(pid) for pid in pg_pids)}
        done_evt.set()
        stop_evt.set()
        for p in procs:
            p.join(timeout=60)
        for t in fin_threads:
            t.join(timeout=30)
        report(args, db, jobs, sizes, home, procs_n, t_start, main_pushes, elapsed, samples, cpu, (busy1 - busy0) / (all1 - all0),
               published, fin_outcomes, reap_s, reap_counts, Chunk, Event, Job, select)
        return 0
    finally:
        stop_evt.set()
        for p in procs:
            if p.is_alive():
                p.kill()
        if db is not None:
            db.dispose()
        drop_pg_database(args.pg, pg_name)
        stop([redis_proc])
        shutil.rmtree(home, ignore_errors=True)


def report(args, db, jobs, sizes, home, procs_n, t_start, main_pushes, elapsed, samples, cpu, machine_load, published, fin_outcomes,
           reap_s, reap_counts, Chunk, Event, Job, select) -> None:
    rec, counts, worker_cpu = defaultdict(list), Counter(), []
    for k in range(procs_n):
        f = home / f"w{k}.json"
        if f.exists():
            data = json.loads(f.read_text())
            for name, values in data["rec"].items():
                rec[name] += values
            counts.update(data["counts"])
            worker_cpu.append(data["cpu_s"] / data["wall_s"])
    with db.sessions() as s:
        chunk_rows = s.execute(select(Chunk.job_id, Chunk.index, Chunk.state)).all()
        ev = s.execute(select(Event.job_id, Event.chunk_index, Event.kind, Event.at).where(
            Event.kind.in_(["chunk_done", "done"]))).all()
        job_states = Counter(s.execute(select(Job.state)).scalars())
    done_ev = Counter((j, i) for j, i, kind, _ in ev if kind == "chunk_done")
    planned = sum(sizes)
    not_done = sum(1 for r in chunk_rows if r.state != "done")
    twice = sum(1 for n in done_ev.values() if n > 1)
    job_done = Counter(j for j, _i, kind, _ in ev if kind == "done")
    fin_twice = sum(1 for n in job_done.values() if n > 1) + sum(1 for n in published.values() if n > 1)
    print(f"\nran {elapsed:.0f} s ({planned} chunks planned, {planned * args.chunk_s / args.workers:.0f} s of work "
          f"per worker); jobs {dict(job_states)}")
    print(f"claim (pop -> claim committed): {ms(rec['claim'])}  (goal p99 < 100 ms)")
    warm = [c for c, t in zip(rec["claim"], rec["claim_at"]) if t >= t_start + WARM_S]
    print(f"  after the first {WARM_S:.0f} s (connections opened): {ms(warm)}")
    for name in ("claim_txn", "heartbeat_txn", "finish_txn", "enqueue", "pool_wait"):
        print(f"  {name:14s} {ms(rec[name])}  ({len(rec[name])} calls)")
    print(f"  transactions waiting for a row lock: {samples['lock_waits'] / max(1, samples['lock_samples']):.1f} "
          f"on average (sampled each second from pg_locks)")
    print(f"  reaper pass    {ms(reap_s)}  ({len(reap_s)} passes; re-enqueued {dict(reap_counts)})")
    for key, what in (("broker", "messages wait in the gpu queue"), ("db", "the queue is empty, chunks wait in the database (window)")):
        n = samples[key, "n"] or 1
        print(f"idle while {what}: {samples[key, 'idle'] / n:.1%} of worker-time, control plane "
              f"{samples[key, 'control'] / n:.1%} ({samples[key, 'n'] / 4:.0f} s of the run)")
    print(f"chunks: {planned} planned, {not_done} not done, {twice} done twice (lost: {not_done}); "
          f"rendered {counts['rendered']} times, outcomes {dict(counts)}")
    print(f"finalize: {sum(job_done.values())} jobs done, finalized twice {fin_twice}; outcomes {dict(fin_outcomes)}")
    # priority inversions: a pop while a higher-priority job's message had waited INVERSION_S in the queue
    first_push, first_pop = {}, {}
    for j, i, t in sorted(main_pushes + [tuple(x) for x in rec["pushes"]], key=lambda x: x[2]):
        first_push.setdefault((j, i), t)
    for j, i, t in sorted((tuple(x) for x in rec["pops"]), key=lambda x: x[2]):
        first_pop.setdefault((j, i), t)
    timeline = []
    for key, popped in first_pop.items():
        p, pushed = jobs[key[0]], first_push.get(key, popped)
        timeline.append((popped, 1, p))
        if popped > pushed + INVERSION_S:
            timeline += [(pushed + INVERSION_S, 0, p), (popped, 2, p)]
    waiting, inversions, claims = Counter(), 0, 0
    for _at, kind, p in sorted(timeline):
        if kind == 0:
            waiting[p] += 1
        elif kind == 2:
            waiting[p] -= 1
        else:
            claims += 1
            inversions += any(waiting[q] > 0 for q in range(p + 1, 10))
    print(f"priorities: {inversions} of {claims} claims ({inversions / max(1, claims):.2%}) taken while a "
          f"higher-priority chunk had waited >= {INVERSION_S * 1e3:.0f} ms in the queue")
    wait = defaultdict(list)
    for key, popped in first_pop.items():
        wait[jobs[key[0]]].append(popped - first_push.get(key, popped))
    print("  mean wait in the broker by priority: " + ", ".join(
        f"{p}: {max(0, sum(w) / len(w)):.2f} s" for p, w in sorted(wait.items(), reverse=True)))
    print(f"CPU (cores busy on average): simulated workers {cpu['workers'] / elapsed:.2f} (per process "
          f"{', '.join(f'{c:.2f}' for c in worker_cpu)}), main {cpu['main'] / elapsed:.2f}, PostgreSQL "
          f"{cpu['postgres'] / elapsed:.2f}, Redis {cpu['redis'] / elapsed:.2f}; machine {machine_load:.0%} "
          f"of {os.cpu_count()} CPUs")


if __name__ == "__main__":
    raise SystemExit(main())
