"""Benchmark: the demo pack's face detector on 4K frames (ms per frame, CPU).

    .venv/bin/python bench/bench_demo_detect.py [--runs 3] [--frames 48] [--background coffee]

A 4K yuv420p sequence of a person at a desk (the astronaut's face, 200 px tall, moving
a little; tests/face_scenes.py) on a warm, skin-toned background (the skin gate cannot
narrow the scan there: the issue's worst case), built before timing. Three ways to find
its faces, in alternating runs, each over the whole sequence as one chunk:

  follow   what the farm runs: DetectStage(HaarDetector()) (full scans at 720 px on the
           chunk's first frame and every SCAN_EVERY frames, the face followed in between)
  scan720  a full scan of every frame at the same 720-px copy (finding these faces without
           following)
  old480   the previous demo detector: a full scan of every frame at 480 px (cheaper, but it
           misses faces under ~100 px in 1080p / ~200 px in 4K)

Prints wall-clock and CPU (process time: both OpenCV threads) ms per frame, median of
--runs, the share of frames where each found the face, and the ratios follow / scan720
and follow / old480. Goal: follow <= 10 ms per 4K frame.
"""

from __future__ import annotations

import argparse
import time

from _util import header, median


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--face", type=int, default=200, help="face height in pixels")
    ap.add_argument("--background", default="coffee", help="a tests/face_scenes.py background")
    args = ap.parse_args()
    if args.runs < 3:
        ap.error("--runs must be at least 3")

    from farm.faces import haar
    from farm.faces.detect import DetectStage, HaarDetector
    from farm.pipeline.frame import Frame
    from tests import face_scenes as scenes

    width, height = 3840, 2160
    header(f"demo face detector on {args.frames} {width}x{height} frames, face {args.face} px, "
           f"background {args.background}")
    bg = scenes.background(args.background, width, height)
    frames, boxes = [], []
    for k in range(args.frames):
        cx, cy, grow = scenes.drift(k, width, height, (0.4, 0.45))
        img, box = scenes.paste(bg, scenes.astronaut_head(args.face * grow), cx, cy)
        frames.append(Frame.from_arrays(scenes.to_i420(img), "yuv420p", index=k, colorspace="bt601"))
        boxes.append(box)
    detector = HaarDetector()
    stage = DetectStage(detector)

    def follow() -> list:
        stage.setup()
        return [stage.follower.next(f) for f in frames]

    def scan(side: int):
        return lambda: [haar.scan_frame(detector, f, side) for f in frames]

    ways = {"follow": follow, "scan720": scan(haar.SCAN_SIDE), "old480": scan(480)}
    wall: dict[str, list[float]] = {k: [] for k in ways}
    cpu: dict[str, list[float]] = {k: [] for k in ways}
    found: dict[str, float] = {}
    for r in range(args.runs):
        order = list(ways.items())
        if r % 2:
            order.reverse()
        for name, fn in order:
            w0, c0 = time.perf_counter(), time.process_time()
            faces = fn()
            wall[name].append(1000 * (time.perf_counter() - w0) / len(frames))
            cpu[name].append(1000 * (time.process_time() - c0) / len(frames))
            hits = [any(scenes.iou(f.bbox, b) > 0.4 for f in fs) for fs, b in zip(faces, boxes)]
            found[name] = sum(hits) / len(hits)
    print("ms per frame (wall | CPU), median of", args.runs, "runs; share of frames with the face found")
    for name in ways:
        runs = ", ".join(f"{v:.1f}" for v in wall[name])
        print(f"  {name:8s} wall {median(wall[name]):7.2f} ({runs})  CPU {median(cpu[name]):7.2f}  "
              f"found {found[name]:.0%}")
    for base in ("scan720", "old480"):
        print(f"ratio follow / {base}: wall {median(wall['follow']) / median(wall[base]):.3f}, "
              f"CPU {median(cpu['follow']) / median(cpu[base]):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
