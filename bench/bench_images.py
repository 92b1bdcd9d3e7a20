"""Benchmark (issue 16.4, images): a folder of many small images through the farm.

  farm:  farm submit DIR --output OUT (--passthrough, or --source FACE --models demo) on the
         embedded farm (started first and kept up), then polled in its SQLite store until
         the batch's images jobs are no longer live
  loop:  the same work in one plain loop in one process, no farm: each image read, made a
         frame, run through the same chain (pass-through, or the demo pack's face chain built
         from the same prepared faces) and written back with its label (farm.media.stills)

A warm-up batch of 16 images goes through both first (not counted). `--runs N` alternates
farm and loop N times (medians); `--workers N` gives the embedded farm N chunk workers
(default 1, as `farm up`). Prints: the time from `farm submit` to its exit (every image
checked and hashed, the images jobs, their tasks and every item recorded, the first tasks
in the broker; goal < 10 s for 10,000 files), when the first task started, the tasks made,
and the farm's wall time for the whole batch against the loop's (goal: <= 1.2).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

from _util import FARM, ROOT, fmt, header, local_farm, median

GOALS = {"submit": 10.0, "ratio": 1.2}


def _rows(db: Path, sql: str, *args: object) -> list[tuple]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql, args).fetchall()
    except sqlite3.Error:
        return []


def make_images(folder: Path, n: int, width: int, height: int) -> list[Path]:
    """n JPEGs: the astronaut's face on a texture, each one a little different (its own hash)."""
    import numpy as np
    from PIL import Image

    from tests.clips import make_face_image

    folder.mkdir(parents=True, exist_ok=True)
    face = Image.open(make_face_image(folder.parent / "face-src.jpg", size=max(16, min(width, height) * 3 // 5)))
    base = np.full((height, width, 3), 90, np.uint8)
    canvas = Image.fromarray(base)
    canvas.paste(face, ((width - face.width) // 2, (height - face.height) // 2))
    pixels = np.asarray(canvas).copy()
    paths = []
    for k in range(n):
        pixels[0, 0] = (k % 256, (k // 256) % 256, 7)
        path = folder / f"d{k // 1000:02d}" / f"img{k:05d}.jpg"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(pixels).save(path, quality=92)
        paths.append(path)
    return paths


def run_farm(env: dict[str, str], home: Path, folder: Path, out: Path, face_args: list[str]) -> dict[str, float]:
    shutil.rmtree(out, ignore_errors=True)
    began = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    start = time.perf_counter()
    proc = subprocess.run([*FARM, "submit", str(folder), "--output", str(out), *face_args], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    submitted = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"farm submit failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    batch = proc.stdout.strip()
    db = home / "farm.db"
    while True:
        states = _rows(db, "SELECT state FROM jobs WHERE batch_id=?", batch)
        if states and not any(s in ("queued", "running", "finalizing") for (s,) in states):
            break
        time.sleep(0.2)
    wall = time.perf_counter() - start
    tasks = _rows(db, "SELECT count(*) FROM chunks c JOIN jobs j ON j.id = c.job_id WHERE j.batch_id=?", batch)[0][0]
    done = _rows(db, "SELECT count(*) FROM job_images i JOIN jobs j ON j.id = i.job_id WHERE j.batch_id=? "
                     "AND i.state='done'", batch)[0][0]
    times = _rows(db, "SELECT c.started_at, c.finished_at FROM chunks c JOIN jobs j ON j.id = c.job_id "
                      "WHERE j.batch_id=? AND c.started_at IS NOT NULL ORDER BY c.started_at", batch)
    spans = [(dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b)) for a, b in times if a and b]
    busy = sum((b - a).total_seconds() for a, b in spans)
    first = (spans[0][0] - began).total_seconds() if spans else float("nan")
    last = (spans[-1][1] - began).total_seconds() if spans else float("nan")
    return {"submit": submitted, "wall": wall, "tasks": tasks, "done": done, "first": first, "busy": busy,
            "last": last, "jobs": len(_rows(db, "SELECT id FROM jobs WHERE batch_id=?", batch))}


def run_loop(paths: list[Path], folder: Path, out: Path, home: Path, face_args: list[str]) -> float:
    """The farm's work on `paths` in this process: read, chain, write (the chain built once)."""
    from farm.config import load_settings
    from farm.faces.chain import build_chain
    from farm.jobs.face_prep import prepare_faces
    from farm.jobs.spec import check_options, submit_request
    from farm.media.stills import read_still, write_still
    from farm.pipeline.stage import PassThrough, StageChain
    from farm.pipeline.still_frame import copy_planes, frame_from_rgb, rgb_from_frame

    settings = load_settings({"FARM_HOME": str(home), "FARM_PROVIDERS": "cpu"})
    options = {"passthrough": True} if "--passthrough" in face_args else {
        "source": [face_args[face_args.index("--source") + 1]], "models": "demo"}
    req = submit_request(paths[0], check_options(options, "bench"))
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    faces = prepare_faces(req, settings)
    if faces.enabled:
        from farm.models.packs import load_pack

        pack = load_pack("demo", models_dir=settings.models_path, providers="cpu")
        chain = build_chain(faces.options, pack, faces.source_embedding, faces.reference_embedding, None)
    else:
        chain = StageChain([PassThrough()])
    tags = {"description": "synthetic media made by farm (loop)", "farm_job_id": "loop", "farm_version": "x"}
    for path in paths:
        dest = out / path.relative_to(folder)
        dest.parent.mkdir(parents=True, exist_ok=True)
        still = read_still(path, 8192)
        rgb = still.rgb
        if faces.enabled:   # as the worker does: a pass-through image makes no frame
            frame = frame_from_rgb(still.rgb)
            before = copy_planes(frame)
            with chain:
                done = (chain.process_batch([frame]) + chain.flush())[0] if chain.batches else chain.process(frame)
            rgb = rgb_from_frame(done, before, still.rgb)
        write_still(still, rgb, dest, tags, dest.with_name("." + dest.name))
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--size", default="64x64", help="WIDTHxHEIGHT, e.g. 1920x1080 (with --images 1000)")
    ap.add_argument("--demo", action="store_true", help="the demo pack's face chain instead of --passthrough")
    ap.add_argument("--no-loop", action="store_true", help="the farm only (submit time, wall time)")
    ap.add_argument("--runs", type=int, default=1, help="farm and loop alternately, this many times each (median)")
    ap.add_argument("--workers", type=int, default=1, help="chunk workers of the embedded farm (FARM_LOCAL_WORKERS)")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    mode = "the demo pack's face chain" if args.demo else "--passthrough"
    header(f"{args.images} images of {width}x{height}: farm submit DIR ({mode}, {args.workers} chunk worker(s)) "
           "vs one plain loop")
    with local_farm("bench-images", FARM_LOCAL_WORKERS=str(args.workers)) as (home, env, work):
        folder = work / "in"
        paths = make_images(folder, args.images, width, height)
        face_args = ["--passthrough"]
        if args.demo:
            from tests.clips import make_face_image

            face_args = ["--source", str(make_face_image(work / "source.jpg")), "--models", "demo"]
            subprocess.run([*FARM, "models", "list"], env=env, cwd=ROOT, capture_output=True)   # the demo pack, built
        warm = make_images(work / "warm", 16, width, height)   # worker and loop warm-up (imports), not counted
        run_farm(env, home, work / "warm", work / "warm-out", face_args)
        if not args.no_loop:
            run_loop(warm, work / "warm", work / "warm-loop", home, face_args)
        farms, loops = [], []
        for run in range(args.runs):
            farm = run_farm(env, home, folder, work / "out", face_args)
            farms.append(farm)
            print(f"run {run + 1}: submit to exit (all checked, hashed, recorded; first tasks enqueued): "
                  f"{farm['submit']:.2f} s (goal < {GOALS['submit']:g} s: "
                  f"{'met' if farm['submit'] < GOALS['submit'] else 'NOT met'})")
            print(f"  tasks: {farm['tasks']} in {farm['jobs']} images job(s) for {args.images} images "
                  f"({farm['done']} done)")
            print(f"  first task started {farm['first']:.2f} s after the submit began; tasks ran {farm['busy']:.2f} s "
                  f"in all; the last ended at {farm['last']:.2f} s")
            print(f"  farm wall:  {farm['wall']:.2f} s")
            if not args.no_loop:
                loops.append(run_loop(paths, folder, work / "loop", home, face_args))
                print(f"  loop wall:  {loops[-1]:.2f} s")
        walls = [f["wall"] for f in farms]
        print(f"farm wall: {fmt(walls)}; submit to exit: {fmt([f['submit'] for f in farms])}")
        if loops:
            ratio = median(walls) / median(loops)
            met = "met" if ratio <= GOALS["ratio"] else "NOT met"
            print(f"loop wall: {fmt(loops)}")
            print(f"ratio farm/loop (medians): {ratio:.3f}  (goal <= {GOALS['ratio']}: {met})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
