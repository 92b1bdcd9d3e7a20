"""Benchmark (a): farm overhead against plain ffmpeg on a clip with no faces.

    .venv/bin/python bench/bench_overhead.py                 # spec: 4K, 10 s, 30 fps
    .venv/bin/python bench/bench_overhead.py --width 1920 --height 1080 --seconds 4

The clip (testsrc2, no faces, 2 s GOP, one AAC track) is made once. The local farm is
started first (`farm up`, embedded default, private FARM_HOME) and stays up; then, in
alternating order, `--runs` times each:
  farm:   farm submit CLIP --source FACE --models demo --wait --preset P --crf C
  ffmpeg: ffmpeg -i CLIP -map 0 -c:v libx264 -preset P -crf C -c:a copy OUT
Prints each time, the medians and the ratio farm / ffmpeg (goal: <= 1.15; issue 17.1, with
--passthrough: <= 1.05), where each farm run's time went (bench/_job_steps.py: the submit's and the
finalizer's step times from the job's log, the gaps between its events) and the peak bytes on
storage during a job / the source's size (issue 17.4: <= 1.5x; bench_face_path.Sampler).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import time

from _job_steps import job_steps, print_steps
from _util import FARM, ROOT, alternate, fmt, header, local_farm, median

GOAL = 1.15
GOAL_PASSTHROUGH = 1.05   # issue 17.1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=3840)
    ap.add_argument("--height", type=int, default=2160)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--chunk-seconds", type=float, default=None, help="default: the farm's own choice")
    ap.add_argument("--passthrough", action="store_true",
                    help="farm submit --passthrough instead of --models demo: the farm's own machinery "
                         "(probe, ingest, split, broker, database, join, remux, verify) without face work")
    args = ap.parse_args()
    if args.runs < 3:
        ap.error("--runs must be at least 3")

    from tests.clips import ffmpeg_exe, make_clip, make_face_image

    header(f"farm overhead: farm submit --wait {'--passthrough' if args.passthrough else '--models demo'} "
           "vs plain ffmpeg")
    with local_farm("bench-a") as (home, env, work):
        clip = make_clip(work / "clip.mp4", width=args.width, height=args.height, fps=args.fps,
                         seconds=args.seconds, gop=2 * args.fps, audio_tracks=1)
        face = make_face_image(work / "face.jpg")
        print(f"clip:    {args.width}x{args.height}, {args.seconds:g} s, {args.fps} fps, H.264 yuv420p, "
              f"2 s GOP, 1 AAC track, no faces; encoder libx264 {args.preset} crf {args.crf}")
        out_farm, out_ff = work / "clip.farm.mp4", work / "clip.ffmpeg.mp4"
        work_args = ["--passthrough"] if args.passthrough else ["--source", str(face), "--models", "demo"]
        submit = [*FARM, "submit", str(clip), *work_args, "--wait", "--overwrite", "--output", str(out_farm),
                  "--preset", args.preset, "--crf", str(args.crf)]
        if args.chunk_seconds:
            submit += ["--chunk-seconds", str(args.chunk_seconds)]
        plain = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(clip), "-map", "0", "-c:v", "libx264",
                 "-preset", args.preset, "-crf", str(args.crf), "-c:a", "copy", str(out_ff)]

        from bench_face_path import MIB, Sampler

        sampler = Sampler(home)
        sampler.start()
        steps: list[dict[str, float]] = []
        storage: list[tuple[int, int, int]] = []   # (peak added bytes, of them hard links to the input, left)

        def run_farm() -> None:
            sampler.reset()
            started = time.time()
            proc = subprocess.run(submit, env=env, cwd=ROOT, capture_output=True, text=True)
            ended = time.time()
            if proc.returncode != 0:
                raise SystemExit(f"farm submit failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
            steps.append(job_steps(home, re.search(r"job (\w{12}) submitted", proc.stderr)[1], started, ended))
            time.sleep(0.3)
            storage.append((sampler.peak_storage, sampler.peak_linked, sampler.storage_bytes() - sampler.base_storage))

        def run_ffmpeg() -> None:
            subprocess.run(plain, check=True)

        run_farm()     # warm-up (demo pack generation, worker model load) - not counted
        steps.clear()
        storage.clear()
        t_farm, t_ff = alternate(run_farm, run_ffmpeg, args.runs)
        sampler.stop_flag.set()
        sampler.join()
        goal = GOAL_PASSTHROUGH if args.passthrough else GOAL
        ratio = median(t_farm) / median(t_ff)
        print(f"farm:    {fmt(t_farm)}")
        print(f"ffmpeg:  {fmt(t_ff)}")
        print(f"ratio farm/ffmpeg: {ratio:.3f}  (goal <= {goal}: {'met' if ratio <= goal else 'NOT met'})")
        print(f"farm - ffmpeg (medians): {median(t_farm) - median(t_ff):.3f} s")
        print_steps(steps)
        size = clip.stat().st_size
        peak, linked, left = max(storage)
        print(f"peak bytes added to storage during a job: {peak / MIB:.1f} MiB = {peak / size:.2f}x the source "
              f"({size / MIB:.1f} MiB; goal 17.4: <= 1.5x); not counted: {linked / MIB:.1f} MiB of hard links to "
              f"the input; left after the job: {left / MIB:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
