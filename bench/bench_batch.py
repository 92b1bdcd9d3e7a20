"""Benchmark (issue 16.4, videos): a batch of many short videos through the farm.

  farm:  farm submit DIR --passthrough --output OUT (embedded farm, started first and kept
         up), then polled in its SQLite store until no job of the batch is live
  loop:  the same re-encodes one after the other in one plain loop (ffmpeg -c:v libx264
         with the farm's preset and crf, audio copied), no farm

Prints: the time from `farm submit` to its exit (every item recorded, its first chunks
enqueued), the farm's wall time for the whole batch against the loop's (goal: <= 1.2),
how many jobs ran at once (most, and the median while any ran), and each job's wait from
its submit to its first chunk starting (median, longest, and the longest against the
batch's wall time: no job waits for all the others, none starves).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import time
from pathlib import Path

from _util import FARM, ROOT, fmt, header, local_farm, median

GOAL = 1.2


def _rows(db: Path, sql: str, *args: object) -> list[tuple]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql, args).fetchall()
    except sqlite3.Error:
        return []


def run_farm(env: dict[str, str], home: Path, folder: Path, out: Path, preset: str, crf: int) -> dict[str, float]:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    proc = subprocess.run([*FARM, "submit", str(folder), "--passthrough", "--output", str(out), "--preset", preset,
                           "--crf", str(crf)], env=env, cwd=ROOT, capture_output=True, text=True)
    submitted = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"farm submit failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    batch = proc.stdout.strip()
    db = home / "farm.db"
    in_flight: list[int] = []
    while True:
        states = _rows(db, "SELECT state FROM jobs WHERE batch_id=?", batch)
        running = sum(1 for (s,) in states if s in ("running", "finalizing"))
        if running:
            in_flight.append(running)
        if states and not any(s in ("queued", "running", "finalizing") for (s,) in states):
            break
        time.sleep(0.1)
    wall = time.perf_counter() - start
    bad = [s for (s,) in states if s != "done"]
    if bad:
        raise SystemExit(f"batch {batch}: {len(bad)} job(s) not done: {bad[:5]}")
    waits = [w for (w,) in _rows(db, "SELECT (julianday(min(c.started_at)) - julianday(j.created_at)) * 86400 "
                                     "FROM jobs j JOIN chunks c ON c.job_id = j.id WHERE j.batch_id=? GROUP BY j.id",
                                 batch)]
    return {"submit": submitted, "wall": wall, "max_in_flight": max(in_flight or [0]),
            "median_in_flight": statistics.median(in_flight) if in_flight else 0,
            "wait_median": statistics.median(waits), "wait_max": max(waits)}


def run_loop(clips: list[Path], out: Path, preset: str, crf: int) -> float:
    from tests.clips import ffmpeg_exe

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = time.perf_counter()
    for clip in clips:
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(clip), "-map", "0", "-c:v", "libx264",
                        "-preset", preset, "-crf", str(crf), "-c:a", "copy", str(out / clip.name)], check=True)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=180)
    ap.add_argument("--runs", type=int, default=1, help="farm and loop runs, alternating")
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--crf", type=int, default=18)
    args = ap.parse_args()

    from tests.clips import make_clip

    header(f"a batch of {args.videos} short videos: farm submit DIR --passthrough vs a plain ffmpeg loop")
    with local_farm("bench-batch") as (home, env, work):
        folder = work / "in"
        first = make_clip(folder / "v000.mp4", width=args.width, height=args.height, seconds=args.seconds,
                          audio_tracks=1, gop=30)
        clips = [first] + [Path(shutil.copy(first, folder / f"v{n:03d}.mp4")) for n in range(1, args.videos)]
        print(f"clips:   {args.videos} x {args.width}x{args.height}, {args.seconds:g} s, 30 fps, 1 AAC track; "
              f"libx264 {args.preset} crf {args.crf}")
        run_farm(env, home, folder, work / "warm", args.preset, args.crf)   # warm-up, not counted
        farm, loop = [], []
        for r in range(args.runs):
            order = ["farm", "loop"] if r % 2 == 0 else ["loop", "farm"]
            for which in order:
                if which == "farm":
                    farm.append(run_farm(env, home, folder, work / f"out{r}", args.preset, args.crf))
                else:
                    loop.append(run_loop(clips, work / f"loop{r}", args.preset, args.crf))
        walls = [f["wall"] for f in farm]
        print(f"submit to exit (all recorded, first chunks enqueued): {fmt([f['submit'] for f in farm])}")
        print(f"farm wall:  {fmt(walls)}")
        print(f"loop wall:  {fmt(loop)}")
        ratio = median(walls) / median(loop)
        print(f"ratio farm/loop: {ratio:.3f}  (goal <= {GOAL}: {'met' if ratio <= GOAL else 'NOT met'})")
        for f in farm:
            print(f"jobs in flight: most {f['max_in_flight']}, median {f['median_in_flight']:g}; wait to first chunk: "
                  f"median {f['wait_median']:.2f} s, longest {f['wait_max']:.2f} s "
                  f"({100 * f['wait_max'] / f['wall']:.0f}% of the batch's wall time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
