"""Soak: many jobs at once on a local farm while its workers are killed at random.

    .venv/bin/python bench/soak.py                       # 20 jobs, 4 workers (issue: nothing lost)
    .venv/bin/python bench/soak.py --jobs 6 --workers 2  # a quick look

A private local farm (embedded Redis, SQLite, `FARM_LOCAL_WORKERS` Celery workers) gets
`--jobs` pass-through jobs submitted at the same moment (one `farm submit` process each,
started together; the kills start at once). Clips are 640x360, 3-5 s, with one audio track and a flash frame
that coincides with an audio click. While jobs run, every 2-5 s (seeded) a busy worker
is killed with SIGKILL: usually its pool process (the chunk being worked on dies with
it), every fourth time the Celery worker itself (the supervisor restarts it).

At the end every job must be done and its output must have the source's frame count
and frame times, with audio and video in sync (flash vs click within one frame). Prints
each job, the kills, the chunk attempts and the makespan; exits 1 if anything is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from _util import FARM, ROOT, header, local_farm

TERMINAL = {"done", "failed", "cancelled"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout-s", type=float, default=1500)
    args = ap.parse_args()

    from tests import clips, media_checks
    from tests.faults.farmfaults import query

    header(f"soak: {args.jobs} jobs at once on {args.workers} local workers, workers killed at random")
    rng = random.Random(args.seed)
    with local_farm("soak", FARM_LOCAL_WORKERS=str(args.workers), FARM_STALE_HEARTBEAT_S="8",
                    FARM_REAP_INTERVAL_S="1", FARM_MAX_ATTEMPTS="8") as (home, env, work):
        sources = []
        for i in range(args.jobs):
            seconds = 3.0 + (i % 3)
            sources.append(clips.make_clip(work / f"clip{i:02d}.mp4", width=640, height=360, seconds=seconds,
                                           audio_tracks=1, flash_at=seconds / 2 + 0.1 * (i % 5), gop=15))
        print(f"clips:   {args.jobs} x 640x360, 3-5 s, 30 fps, 1 AAC track, flash frame + click; "
              f"max attempts 8, stale heartbeat 8 s")

        def submit(src: Path) -> str:
            proc = subprocess.run([*FARM, "submit", str(src), "--passthrough", "--chunk-seconds", "1",
                                   "--preset", "slower"], env=env, cwd=ROOT, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"submit {src} failed ({proc.returncode}): {proc.stderr}")
            return proc.stdout.strip()

        start = time.monotonic()
        pool = ThreadPoolExecutor(max_workers=args.jobs)
        futures = [pool.submit(submit, src) for src in sources]      # all at once; kills start now
        kills = {"pool process": 0, "celery worker": 0}
        next_kill = time.monotonic() + rng.uniform(2, 5)
        deadline = start + args.timeout_s
        job_ids: list[str] = []
        while time.monotonic() < deadline:
            if not job_ids and all(f.done() for f in futures):
                job_ids = [f.result() for f in futures]
                print(f"submitted {len(job_ids)} jobs in {time.monotonic() - start:.1f} s")
            states = dict(query(home, "SELECT id, state FROM jobs")) if (home / "farm.db").exists() else {}
            if job_ids and all(states.get(j) in TERMINAL for j in job_ids):
                break
            if time.monotonic() >= next_kill:
                busy = query(home, "SELECT pid, hostname FROM workers WHERE state='busy' AND pid IS NOT NULL")
                if busy:
                    pid, host = rng.choice(busy)
                    total = sum(kills.values())
                    try:
                        target = psutil.Process(pid).parent().pid if total % 4 == 3 else pid
                        os.kill(target, signal.SIGKILL)
                        kills["celery worker" if total % 4 == 3 else "pool process"] += 1
                        print(f"  {time.monotonic() - start:6.1f} s  killed {host} pid {target}")
                    except (psutil.Error, ProcessLookupError):
                        pass
                next_kill = time.monotonic() + rng.uniform(2, 5)
            time.sleep(0.2)
        pool.shutdown()
        makespan = time.monotonic() - start

        ok = 0
        for job_id, src in zip(job_ids, sources):
            state, error, output = query(home, "SELECT state, error, output_path FROM jobs WHERE id=?", job_id)[0]
            problem = None
            if state != "done":
                problem = f"{state}: {error}"
            else:
                try:
                    media_checks.assert_same_frame_times(src, output)
                    media_checks.assert_av_sync(output, flash=True)
                except AssertionError as exc:
                    problem = str(exc)
            ok += problem is None
            attempts = query(home, "SELECT sum(attempts), count(*) FROM chunks WHERE job_id=?", job_id)[0]
            frames = media_checks.frame_count(src)
            print(f"job {job_id}  {src.name}  {frames:3d} frames  chunks {attempts[1]}  attempts {attempts[0]}  "
                  f"{'ok' if problem is None else 'WRONG: ' + problem}")
        attempts, chunks = query(home, "SELECT sum(attempts), count(*) FROM chunks")[0]
        print(f"kills:   {json.dumps(kills)}")
        print(f"chunks:  {chunks}, attempts {attempts} ({attempts - chunks} re-runs)")
        print(f"makespan {makespan:.1f} s")
        print(f"result:  {ok}/{len(job_ids)} jobs done with exact frames, frame times and A/V sync")
        return 0 if ok == len(job_ids) else 1


if __name__ == "__main__":
    raise SystemExit(main())
