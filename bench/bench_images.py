"""Benchmark (issue 16.4, images): a folder of many small images through the farm.

  farm:  farm submit DIR --output OUT (--passthrough, or --source FACE --models demo) on the
         embedded farm (started first and kept up), then polled in its SQLite store until
         the batch's images job is no longer live
  loop:  the same work in one plain loop in one process, no farm: each image read, made a
         frame, run through the same chain (pass-through, or the demo pack's face chain built
         from the same prepared faces) and written back with its label (farm.media.stills)

Prints: the time from `farm submit` to its exit (every image checked and hashed, the images
job, its tasks and every item recorded, the first window of tasks in the broker; goal < 10 s
for 10,000 files), the tasks made, and the farm's wall time for the whole batch against the
loop's (goal: <= 1.2).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

from _util import FARM, ROOT, header, local_farm

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
    return {"submit": submitted, "wall": wall, "tasks": tasks, "done": done}


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
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    mode = "the demo pack's face chain" if args.demo else "--passthrough"
    header(f"{args.images} images of {width}x{height}: farm submit DIR ({mode}) vs one plain loop")
    with local_farm("bench-images") as (home, env, work):
        folder = work / "in"
        paths = make_images(folder, args.images, width, height)
        face_args = ["--passthrough"]
        if args.demo:
            from tests.clips import make_face_image

            face_args = ["--source", str(make_face_image(work / "source.jpg")), "--models", "demo"]
            subprocess.run([*FARM, "models", "list"], env=env, cwd=ROOT, capture_output=True)   # the demo pack, built
        farm = run_farm(env, home, folder, work / "out", face_args)
        print(f"submit to exit (all checked, hashed, recorded; first tasks enqueued): {farm['submit']:.2f} s "
              f"(goal < {GOALS['submit']:g} s: {'met' if farm['submit'] < GOALS['submit'] else 'NOT met'})")
        print(f"tasks: {farm['tasks']} for {args.images} images ({farm['done']} done)")
        print(f"farm wall:  {farm['wall']:.2f} s")
        if not args.no_loop:
            loop = run_loop(paths, folder, work / "loop", home, face_args)
            ratio = farm["wall"] / loop
            print(f"loop wall:  {loop:.2f} s")
            met = "met" if ratio <= GOALS["ratio"] else "NOT met"
            print(f"ratio farm/loop: {ratio:.3f}  (goal <= {GOALS['ratio']}: {met})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
