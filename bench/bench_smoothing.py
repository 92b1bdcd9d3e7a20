"""Benchmark: faces that hold still (issue 15.3), on stand-ins (demo pack's swapper, CPU).

    .venv/bin/python bench/bench_smoothing.py [--runs 3] [--frames 120] [--chunk 30] [--fps 30]

The astronaut photo (512x512, yuv420p) as a still video; a detector stand-in reports the
face's true landmarks and box plus +-2 px uniform noise (seeded by the frame's index, so a
frame gets the same noise in whichever chunk sees it) and nothing in two frames inside the
second chunk and in its last. The chain is detect stand-in -> [track] -> swap (the demo
swapper paints stripes fixed to the aligned face), run as the chunk codec runs it: chunks
of --chunk frames, each fed the 0.5 s of frames before it and the 2 (fill_gaps) after it
as context frames, batches of 4, flushed at the end. Baseline: the same chain without the track stage, in the same run.

Figures: the face region's frame-to-frame change (mean absolute luma difference) without
and with smoothing, and their ratio (goal >= 3); the same at chunk seams vs inside chunks
(goal: about equal); the lag of a face moving at a constant --speed (px/s) through the track
stage (goal < 1 px); whether the missed frames are swapped; the track stage's cost in ms
per frame (the detect stand-in with and without it, alternating runs, median of --runs).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from _util import header, median

KPS = np.array([[203, 102], [247, 102], [224, 125], [207, 143], [240, 143]], np.float32)
BOX = np.array([178, 62, 272, 172], np.float32)
REGION = (slice(40, 220), slice(140, 310))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--chunk", type=int, default=30)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--speed", type=float, default=120.0, help="px/s of the moving face")
    args = ap.parse_args()
    if args.runs < 3:
        ap.error("--runs must be at least 3")

    from farm.faces.chain import latent_for_pack
    from farm.faces.swap import SwapStage
    from farm.faces.tracking import TrackStage, WARM_SECONDS
    from farm.faces.types import Face
    from farm.models.packs import load_pack
    from farm.pipeline.frame import Frame
    from farm.pipeline.stage import Stage, StageChain
    from tests.unit.test_faces_standins import astronaut_frame

    header("faces that hold still: One Euro smoothing, gap filling, warm chunk seams (stand-ins, CPU)")
    pack = load_pack("demo", models_dir=Path(tempfile.mkdtemp(prefix="farm-bench-smooth-")) / "models",
                     providers="cpu")
    latent = latent_for_pack(np.ones(512, np.float32) / np.sqrt(512), pack)
    still = astronaut_frame()
    missed = {args.chunk + 5, args.chunk + 6, 2 * args.chunk - 1}    # two inside a chunk, one at its end
    warm, tail = int(np.ceil(WARM_SECONDS * args.fps)), 2        # context frames, as the planner adds them

    class NoisyDetect(Stage):
        name = "detect"

        def __init__(self, speed: float = 0.0) -> None:
            self.speed = speed

        def process(self, frame: Frame) -> Frame:
            i = frame.pts
            rng = np.random.default_rng(i)
            shift = np.array([self.speed * i / args.fps, 0], np.float32)
            frame.faces = [] if i in missed else [
                Face(BOX + np.tile(shift, 2) + rng.uniform(-2, 2, 4), 0.9, KPS + shift + rng.uniform(-2, 2, (5, 2)))]
            return frame

    def make(i: int, index: int) -> Frame:
        frame = Frame.from_arrays([p.copy() for p in still.planes], "yuv420p", index=index, colorspace="bt601")
        frame.av_frame = SimpleNamespace(pts=i, time_base=Fraction(1, args.fps))
        return frame

    def render(chain: StageChain) -> list[Frame]:
        """Every frame of the clip through the chain, chunk by chunk, as the chunk codec feeds it."""
        out: list[Frame] = []
        for first in range(0, args.frames, args.chunk):
            chain.setup()
            lead, end = min(first, warm), min(first + args.chunk, args.frames)
            frames = [make(i, i - first if i < end else -lead - 1 - (i - end))   # tail: negative too
                      for i in range(first - lead, min(end + tail, args.frames))]
            for k in range(0, len(frames), 4):
                out += chain.process_batch(frames[k : k + 4])
            out += chain.flush()
        assert [f.pts for f in out] == list(range(args.frames))
        return out

    def swap() -> SwapStage:
        return SwapStage(pack.session("swapper"), latent)

    plain = StageChain([NoisyDetect(), swap()])
    steady = StageChain([NoisyDetect(), TrackStage(), swap()])
    moving = StageChain([NoisyDetect(args.speed), TrackStage()])

    def change(frames: list[Frame]) -> np.ndarray:
        luma = [f.planes[0][REGION].astype(np.float64) for f in frames]
        return np.array([0.0] + [float(np.abs(b - a).mean()) for a, b in zip(luma, luma[1:])])

    seams = [i for i in range(args.chunk, args.frames, args.chunk)]
    near_gap = {i for m in missed for i in (m, m + 1)}      # pairs touching a missed frame

    def inside(values: np.ndarray) -> np.ndarray:
        return np.array([v for i, v in enumerate(values) if i >= 10 and i not in seams and i not in near_gap])

    def timed_render(chain: StageChain) -> tuple[list[Frame], float]:
        start = time.perf_counter()
        frames = render(chain)
        return frames, (time.perf_counter() - start) / args.frames * 1000

    frames = render(plain)
    jitter, unswapped = change(frames), [f.faces_changed for f in frames]
    frames = render(steady)
    smoothed, swapped = change(frames), [f.faces_changed for f in frames]
    # the track stage's own cost: detect stand-in alone vs detect stand-in + track, alternating
    bare = StageChain([NoisyDetect(args.speed)])
    render(bare), render(moving)   # warm-up (not counted)
    times_bare, times_track = [], []
    for r in range(args.runs):
        order = [(bare, times_bare), (moving, times_track)]
        for chain, times in order if r % 2 == 0 else order[::-1]:
            times.append(timed_render(chain)[1])
    tracked = render(moving)
    truth = KPS[:, 0][None] + args.speed * np.arange(args.frames)[:, None] / args.fps
    lag = truth[warm:] - np.array([f.faces[0].kps[:, 0] for f in tracked[warm:]])
    clean_seams = [i for i in seams if i not in near_gap]

    print(f"clip: {args.frames} frames of 512x512 at {args.fps} fps, chunks of {args.chunk}, "
          f"{warm} warm + {tail} tail frames, +-2 px landmark noise, frames {sorted(missed)} missed by the detector")
    print(f"ms/frame, detect stand-in alone {median(times_bare):.3f}, with the track stage "
          f"{median(times_track):.3f}: tracking costs {median(times_track) - median(times_bare):.3f} ms a frame "
          f"(median of {args.runs} alternating runs)")
    print(f"face region change inside chunks: without smoothing {inside(jitter).mean():.3f}, "
          f"with {inside(smoothed).mean():.3f}; ratio {inside(jitter).mean() / inside(smoothed).mean():.2f} (goal >= 3)")
    print(f"at chunk seams {clean_seams}: without {jitter[clean_seams].mean():.3f}, with "
          f"{smoothed[clean_seams].mean():.3f} (inside, with: mean {inside(smoothed).mean():.3f}, "
          f"max {inside(smoothed).max():.3f})")
    print(f"frames the detector missed, swapped: with tracking {sum(bool(swapped[i]) for i in missed)} of "
          f"{len(missed)}, without {sum(bool(unswapped[i]) for i in missed)} of {len(missed)}; change into and "
          f"out of them with tracking: max {smoothed[sorted(near_gap)].max():.3f}")
    print(f"face moving at {args.speed:g} px/s: lag after the first {warm} frames {lag.mean():.3f} px "
          f"(goal < 1), residual jitter {lag.std():.3f} px (raw: {2 / np.sqrt(3):.3f})")


if __name__ == "__main__":
    main()
