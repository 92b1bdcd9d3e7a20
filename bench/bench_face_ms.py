"""Benchmark (b): face work on a 4K frame with one face (demo pack, CPU).

    .venv/bin/python bench/bench_face_ms.py [--runs 5] [--width 3840 --height 2160]

One yuv420p frame with the astronaut's face (~25% of the height) over a texture. The
face stages run as the farm runs them (region conversions only); model calls are timed
apart, so each step reports milliseconds per frame OUTSIDE model time:
  detect  (shrink planes to 640 px + gray/BGR conversion of the small copy)
  align   (similarity transforms + reading the face regions as BGR + warps, swap and enhance crops)
  swap    (blob packing/unpacking around inswapper)
  enhance (blob packing/unpacking and blending around GFPGAN)
  paste   (inverse warps, feather masks, BGR->YUV of the face regions, blend)
against a full-frame bgr24 round trip of the same frame (yuv420p -> bgr24 -> yuv420p,
what a pipeline converting whole frames pays). Alternating runs, median of --runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from _util import header, median

class Clock:
    """Accumulates seconds per step."""

    def __init__(self) -> None:
        self.t: dict[str, float] = {}

    def add(self, key: str, seconds: float) -> None:
        self.t[key] = self.t.get(key, 0.0) + seconds


class TimedSession:
    """Wraps a session: time spent in run() goes to clock['model']."""

    def __init__(self, session, clock: Clock) -> None:
        self.s, self.clock = session, clock

    def run(self, names, feed):
        start = time.perf_counter()
        try:
            return self.s.run(names, feed)
        finally:
            self.clock.add("model", time.perf_counter() - start)

    def get_inputs(self):
        return self.s.get_inputs()

    def get_outputs(self):
        return self.s.get_outputs()


def make_frame_arrays(width: int, height: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """(rgb image, yuv420p planes) of a textured frame with one face ~25% of the height."""
    from tests.clips import face_crop_rgb

    rng = np.random.default_rng(1)
    bg = cv2.resize(rng.integers(40, 200, (height // 16, width // 16, 3), dtype=np.uint8), (width, height),
                    interpolation=cv2.INTER_CUBIC)
    side = height // 4
    face = cv2.resize(face_crop_rgb(), (side, side), interpolation=cv2.INTER_AREA)
    y0, x0 = height // 3, width // 2 - side // 2
    bg[y0:y0 + side, x0:x0 + side] = face
    av_frame = av.VideoFrame.from_ndarray(bg, format="rgb24").reformat(format="yuv420p")
    yuv = av_frame.to_ndarray()                       # (h*3/2, w) I420
    ypl = yuv[:height].copy()
    u = yuv[height:height + height // 4].reshape(height // 2, width // 2).copy()
    v = yuv[height + height // 4:].reshape(height // 2, width // 2).copy()
    return bg, [ypl, u, v]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=3840)
    ap.add_argument("--height", type=int, default=2160)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if args.runs < 3:
        ap.error("--runs must be at least 3")

    from farm.faces.align import estimate_norm
    from farm.faces.chain import latent_for_pack
    from farm.faces.detect import DetectStage, build_detector
    from farm.faces.enhance import ENHANCE_SIZE, ENHANCE_TEMPLATE, EnhanceStage
    from farm.faces.identity import compute_identity
    from farm.faces.paste import crop_from_frame, paste_back
    from farm.faces.swap import SWAP_SIZE, SWAP_TEMPLATE, SwapStage
    from farm.models.packs import load_pack
    from farm.pipeline.frame import Frame
    from tests.clips import make_face_image

    header(f"face work on a {args.width}x{args.height} frame with one face (demo pack, CPU)")
    tmp = Path(tempfile.mkdtemp(prefix="farm-bench-b-"))
    pack = load_pack("demo", models_dir=tmp / "models", providers="cpu")
    clock = Clock()
    detector = build_detector(pack)
    raw_detect = detector.detect

    def timed_detect(image, **sizes):
        start = time.perf_counter()
        try:
            return raw_detect(image, **sizes)
        finally:
            clock.add("model", time.perf_counter() - start)

    detector.detect = timed_detect          # Haar in the demo pack: its cascade is "model time"
    identity = compute_identity([make_face_image(tmp / "src.jpg")], detector, pack.session("recognizer"))
    detect = DetectStage(detector)
    swap = SwapStage(TimedSession(pack.session("swapper"), clock), latent_for_pack(identity, pack))
    enhance = EnhanceStage(TimedSession(pack.session("enhancer"), clock), 0.8)
    _, planes = make_frame_arrays(args.width, args.height)

    def fresh() -> Frame:
        return Frame.from_arrays([p.copy() for p in planes], "yuv420p")

    def step(name: str, fn):
        before = clock.t.get("model", 0.0)
        start = time.perf_counter()
        out = fn()
        spent = time.perf_counter() - start
        model = clock.t.get("model", 0.0) - before
        clock.add(name, spent - model)
        clock.add(name + "_model", model)
        return out

    def face_work() -> None:
        frame = fresh()
        detect.setup()      # each frame the first of a chunk: a full scan, not the cheap follow
        step("detect", lambda: detect.process(frame))
        if len(frame.faces) != 1:
            raise SystemExit(f"expected one face, found {len(frame.faces)}")
        face = frame.faces[0]

        def align():
            ms = estimate_norm(face.kps, SWAP_TEMPLATE, SWAP_SIZE)
            return ms, crop_from_frame(frame, ms, SWAP_SIZE)

        ms, (crop, box) = step("align", align)
        swapped = step("swap", lambda: swap.run_crop(crop))
        step("paste", lambda: paste_back(frame, swapped, ms, box))

        def align_e():
            me = estimate_norm(face.kps, ENHANCE_TEMPLATE, ENHANCE_SIZE)
            return me, crop_from_frame(frame, me, ENHANCE_SIZE)

        me, (crop_e, box_e) = step("align", align_e)
        enhanced = step("enhance", lambda: enhance.run_crop(crop_e))
        step("paste", lambda: paste_back(frame, enhanced, me, box_e))

    def full_frame_roundtrip() -> None:
        frame = fresh()
        h, w = frame.height, frame.width
        i420 = np.concatenate([frame.planes[0].reshape(-1), frame.planes[1].reshape(-1),
                               frame.planes[2].reshape(-1)]).reshape(h * 3 // 2, w)
        bgr = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
        back = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
        frame.planes[0][:] = back[:h]

    def pyav_roundtrip() -> None:
        frame = av.VideoFrame(args.width, args.height, "yuv420p")
        frame.reformat(format="bgr24").reformat(format="yuv420p")

    face_work()       # warm-up: sessions, caches
    rounds = []
    for r in range(args.runs):
        snapshot = dict(clock.t)
        order = [("face", face_work), ("rt", full_frame_roundtrip), ("av", pyav_roundtrip)]
        if r % 2:
            order.reverse()
        got = {}
        for name, fn in order:
            start = time.perf_counter()
            fn()
            got[name] = time.perf_counter() - start
        got.update({k: clock.t.get(k, 0.0) - snapshot.get(k, 0.0) for k in clock.t})
        rounds.append(got)

    def med(key: str) -> float:
        return 1000 * median([g.get(key, 0.0) for g in rounds])

    steps = ["detect", "align", "swap", "enhance", "paste"]
    print("ms per frame, outside model time (model time in brackets), median of", args.runs)
    for s in steps:
        print(f"  {s:8s} {med(s):8.2f}   [{med(s + '_model'):8.2f}]")
    outside = 1000 * median([sum(g.get(s, 0.0) for s in steps) for g in rounds])
    rt, avrt = med("rt"), med("av")
    print(f"  total outside model time: {outside:.2f} ms  (whole frame incl. models: {med('face'):.2f} ms)")
    print(f"full-frame bgr24 round trip: OpenCV {rt:.2f} ms, PyAV/swscale {avrt:.2f} ms")
    print(f"ratio face work outside models / full-frame round trip (OpenCV): {outside / rt:.3f}")
    print(f"ratio face work outside models / full-frame round trip (PyAV):   {outside / avrt:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
