"""Benchmark (issue 17.6): a long 4K film is planned and enqueued in a minute, memory flat in its length.

    .venv/bin/python bench/bench_long_film.py                  # films of 15 and 120 minutes
    .venv/bin/python bench/bench_long_film.py --minutes 30 120 --keep /tmp/films

The films are made cheaply and kept in `--keep` (default: a temporary folder): a 10 s
3840x2160 30 fps H.264 seed (a warm flat background with a moving square, 2 s GOP,
x264 ultrafast) stream-copied in a loop (`-stream_loop`) to each length. For each length,
with a private local farm up (`farm up`), `farm submit FILM --passthrough` runs as a child
process and is timed from the command to its return: by then the film is ingested,
probed, planned, split into its chunk inputs, recorded, and the job's first window of
chunks is on the broker (the window is topped up as chunks finish; the database holds
the rest, claimable). Printed per length: the wall time (goal <= 60 s for 120 minutes),
the submit process's peak RSS (ru_maxrss of the child: goal, flat in the length), the
chunks recorded and how many were handed to the broker. The job is then cancelled.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _util import FARM, ROOT, header, local_farm

GOAL_S = 60.0
SEED_SECONDS = 10


def make_seed(folder: Path) -> Path:
    seed = folder / "seed-4k-10s.mp4"
    if not seed.exists():
        picture = ("color=c=0xd9a27a:size=480x270:rate=30,"
                   "drawbox=x='mod(t*40,400)':y=100:w=60:h=60:color=0x603020:t=fill,"
                   "scale=3840:2160:flags=neighbor")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", picture, "-t", str(SEED_SECONDS),
                        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "30", "-g", "60", "-pix_fmt", "yuv420p",
                        str(seed)], check=True)
    return seed


def make_film(folder: Path, minutes: int) -> Path:
    film = folder / f"film-4k-{minutes}min.mp4"
    if not film.exists():
        loops = minutes * 60 // SEED_SECONDS - 1
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops), "-i", str(make_seed(folder)),
                        "-c", "copy", str(film)], check=True)
    return film


def timed_child(argv: list[str], env: dict[str, str], scratch: Path) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in MiB, stdout) of one child process (os.wait4's rusage)."""
    out_file, err_file = scratch / "stdout.txt", scratch / "stderr.txt"
    with out_file.open("w") as out, err_file.open("w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err_file.read_text()[-3000:]}")
    return wall, usage.ru_maxrss // 1024, out_file.read_text()


def job_counts(home: Path, job_id: str) -> tuple[int, int, int]:
    """(frames, chunks recorded, chunks handed to the broker) of the job in the farm's database."""
    from farm.config import load_settings
    from farm.state.db import Chunk, Database
    from sqlalchemy import func, select

    db = Database(load_settings({"FARM_HOME": str(home)}).database)
    try:
        with db.engine.connect() as conn:
            recorded = conn.execute(select(func.count()).select_from(Chunk).where(Chunk.job_id == job_id)).scalar_one()
            queued = conn.execute(select(func.count()).select_from(Chunk).where(
                Chunk.job_id == job_id, Chunk.queued_at.is_not(None))).scalar_one()
            frames = conn.execute(select(func.sum(Chunk.frames_planned)).where(Chunk.job_id == job_id)).scalar_one()
    finally:
        db.dispose()
    return int(frames or 0), recorded, queued


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=int, nargs="+", default=[15, 120])
    ap.add_argument("--keep", type=Path, default=None, help="folder to make (and keep) the films in")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="farm-films-"))
    folder.mkdir(parents=True, exist_ok=True)
    header("a long 4K film: farm submit --passthrough, from the command to its chunks planned and enqueued")
    rows = []
    try:
        for minutes in args.minutes:
            film = make_film(folder, minutes)
            with local_farm("bench-film") as (home, env, work):
                # the workers start on the first chunks as soon as they are enqueued, as on a real farm
                argv = [*FARM, "submit", str(film), "--passthrough", "--output", str(work / "out.mp4")]
                wall, rss, out = timed_child(argv, env, work)
                job_id = out.strip().splitlines()[-1]
                frames, recorded, queued = job_counts(home, job_id)
                subprocess.run([*FARM, "cancel", job_id], env=env, cwd=ROOT, capture_output=True)
            size = film.stat().st_size / 2**20
            rows.append((minutes, wall, rss, frames, recorded, queued))
            print(f"{minutes:4d} min ({size:.0f} MiB, {frames} frames): {wall:6.2f} s, submit peak RSS {rss} MiB, "
                  f"{recorded} chunks recorded, {queued} on the broker")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    longest = max(rows, key=lambda r: r[0])
    print(f"longest ({longest[0]} min): {longest[1]:.2f} s (goal <= {GOAL_S:.0f} s for 120 min: "
          f"{'met' if longest[1] <= GOAL_S else 'NOT met'})")
    if len(rows) > 1:
        shortest = min(rows, key=lambda r: r[0])
        print(f"peak RSS {longest[0]} min / {shortest[0]} min: {longest[2] / shortest[2]:.2f} "
              f"(length x{longest[0] / shortest[0]:.0f}; flat: close to 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
