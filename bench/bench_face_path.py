"""Face path, memory and storage (issue 17.2-17.4): farm submit with ~zero-cost stand-ins vs plain ffmpeg.

    .venv/bin/python bench/bench_face_path.py                          # 4K, 10 s, 30 fps
    .venv/bin/python bench/bench_face_path.py --width 1920 --height 1080
    options: --runs N (>= 3), --seconds, --fps, --face PX (216), --profile-frames N (60), --preset, --crf

1. Builds a pack directory of stand-ins with the real models' signatures: SCRFD det_10g reporting
   one FIXED face (farm.models.standins.scrfd_standin(fixed_face=...): a constant score at one
   anchor, decoded by the farm's own SCRFD post-processing into a --face px face at a known place),
   and multiply-add stand-ins of w600k_r50 (recogniser), inswapper_128 and GFPGAN 1.4. They are
   installed with `farm models import` (sha256 and signature checked, stamps written).
2. Makes a warm-coloured H.264 clip: a skin-toned background (skimage's coffee) panning 30 px/s behind
   the astronaut's face, which stays where the fixed detection says.
3. On a private local farm (bench/_util.local_farm), alternating, --runs times each:
     ffmpeg -i CLIP -map 0 -c:v libx264 -preset P -crf C -c:a copy OUT
     farm submit CLIP --source FACE --models PACK --wait --preset P --crf C
   and prints the medians and the ratio (goals: <= 1.5 at 4K, <= 1.3 at 1080p).
4. Runs the chain a worker builds (farm.faces.chain.build_chain, frames in batches as the chunk codec
   hands them) in this process on --profile-frames decoded frames of the clip, with a clock on each
   farm step (exclusive times: a step's time excludes the steps it calls), ms per frame.
5. While the farm runs, samples every ~100 ms the RSS of every process of the local farm (found by
   FARM_HOME in their environment: broker, supervisor, worker(s), the client) and the bytes under
   the farm's storage folder; prints per-process peaks, the peak of the sum, RSS when idle after
   the job, and peak storage / source size. Goals: <= 1.5 GiB in all at 4K, a chunk worker
   <= 600 MiB at 1080p, memory back near idle after a job; storage <= 1.5x (17.4).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import psutil

from _util import FARM, ROOT, alternate, fmt, header, local_farm, median

MIB = 1 << 20
ROLES = ("detector", "recognizer", "swapper", "enhancer")


# ---------------------------------------------------------------- the face and the pack

def face_place(width: int, height: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(box x0 y0 x1 y1, 5 landmarks) of the fixed face in frame pixels: side px, centred at (0.5 w, 0.42 h)."""
    from farm.faces.align import TEMPLATES

    cx, cy = width * 0.5, height * 0.42
    box = np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float64)
    points = np.asarray(TEMPLATES["arcface_112_v2"], np.float64) / 112.0 * side + box[:2]
    return box, points


def build_pack(pack: Path, stage: Path, env: dict, width: int, height: int, side: int) -> None:
    """Stand-ins under their real file names in `stage`, a manifest in `pack`, `farm models import`."""
    import hashlib

    from farm.faces.detect import DEFAULT_MAX_SIDE
    from farm.models.demo import default_manifest_path
    from farm.models.manifest import MANIFEST_FILE, Manifest, dump_manifest, load_manifest
    from farm.models.standins import arcface_standin, inswapper_standin, scrfd_standin
    from farm.models.standins_faces import restorer_standin

    base = load_manifest(default_manifest_path())
    box, points = face_place(width, height, side)
    scale = min(1.0, DEFAULT_MAX_SIDE / max(width, height))   # the detector's copy (regions.small_bgr)
    fixed = (tuple(box * scale), tuple(map(tuple, points * scale)))
    makers = {"detector": lambda e: scrfd_standin(e, fixed_face=fixed), "recognizer": arcface_standin,
              "swapper": inswapper_standin, "enhancer": restorer_standin}
    stage.mkdir(parents=True, exist_ok=True)
    pack.mkdir(parents=True, exist_ok=True)
    entries = []
    for role in ROLES:
        entry = base.entry(role)
        data = makers[role](entry).SerializeToString(deterministic=True)
        (stage / entry.file).write_bytes(data)
        entries.append(replace(entry, urls=(), also_sha256=(), sha256=hashlib.sha256(data).hexdigest(),
                               size=len(data), fp16="", sha256_source="bench_face_path stand-in",
                               sha256_note="", size_note="", license="stand-in (no weights)",
                               notes="multiply-add stand-in of the real signature"))
    manifest = Manifest(name="bench-face-path", models=tuple(entries), detector="onnx",
                        description="bench_face_path stand-ins: one fixed face, multiply-add models")
    (pack / MANIFEST_FILE).write_text(dump_manifest(manifest), encoding="utf-8")
    out = subprocess.run([*FARM, "models", "import", str(stage), "--models", str(pack)], env=env, cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"farm models import failed:\n{out.stdout}\n{out.stderr}")
    print(f"pack:    {pack} ({', '.join(e.name for e in entries)}), imported and verified "
          f"(sha256 + signature); fixed face {side} px at box {np.round(box).astype(int).tolist()}")


def make_media(work: Path, width: int, height: int, seconds: float, fps: int, side: int) -> tuple[Path, Path]:
    """(the clip, the source face image): a skin-toned background panning 30 px/s behind the
    astronaut's face, which stays on the fixed detection's box."""
    from tests.clips import face_crop_rgb, ffmpeg_exe
    from tests.face_scenes import background

    pan = int(30 * seconds) + 2
    wide = background("coffee", width + pan, height)
    box, _ = face_place(width, height, side)
    crop = int(round(side / 0.7))              # the face fills ~70% of face_crop_rgb
    face = cv2.resize(face_crop_rgb()[..., ::-1], (crop, crop), interpolation=cv2.INTER_CUBIC)
    x0 = int((box[0] + box[2]) / 2) - crop // 2
    y0 = int((box[1] + box[3]) / 2) - crop // 2
    cv2.imwrite(str(work / "background.png"), wide)
    cv2.imwrite(str(work / "face.png"), face)
    first = wide[:, :width].copy()
    first[y0:y0 + crop, x0:x0 + crop] = face
    source = work / "source.jpg"
    cv2.imwrite(str(source), cv2.resize(first, (1280, 720), interpolation=cv2.INTER_AREA))
    clip = work / "clip.mp4"
    graph = (f"[0:v]crop={width}:{height}:x='min({pan - 2},t*30)':y=0[bg];[bg][1:v]overlay={x0}:{y0},"
             "format=yuv420p[v]")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-loop", "1", "-framerate", str(fps),
                    "-i", str(work / "background.png"), "-loop", "1", "-framerate", str(fps), "-i", str(work / "face.png"),
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-filter_complex", graph,
                    "-map", "[v]", "-map", "2:a", "-t", str(seconds), "-r", str(fps), "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "18", "-g", str(2 * fps), "-c:a", "aac", str(clip)], check=True)
    return clip, source


# ---------------------------------------------------------------- memory and storage sampling

class Sampler(threading.Thread):
    """Every ~100 ms: RSS of each process whose FARM_HOME is the farm's, bytes under its storage."""

    def __init__(self, home: Path) -> None:
        super().__init__(daemon=True)
        self.home, self.storage = str(home), home / "storage"
        self.known: dict[int, tuple[psutil.Process, str]] = {}
        self.stop_flag = threading.Event()
        self.reset()

    def reset(self) -> None:
        """Before a job: forget the peaks; storage is counted from what is there now (earlier
        jobs' files stay: a finished job keeps its ingested source)."""
        self.base_storage = self.storage_bytes()
        self.peak: dict[str, int] = {}       # "name pid" -> peak RSS bytes
        self.peak_total = self.peak_storage = self.peak_linked = 0

    def _label(self, proc: psutil.Process) -> str:
        cmd = proc.cmdline()
        line = " ".join(cmd)
        if "celery_worker" in line:
            queues = cmd[cmd.index("--queues") + 1] if "--queues" in cmd[:-1] else "?"
            child = "celery_worker" in " ".join(proc.parent().cmdline()) if proc.parent() else False
            return f"worker {queues}" + (" (pool child)" if child else "")
        for key, name in (("redis-server", "broker redis-server"), ("supervisor", "supervisor"),
                          (" submit ", "client farm submit"), ("ffmpeg", "ffmpeg (farm)")):
            if key in line or proc.name().startswith(key.strip()):
                return name
        return proc.name()

    def discover(self) -> None:
        for pid_file in Path(self.home).rglob("redis.pid"):   # redis rewrites its environment: by pid file
            try:
                pid = int(pid_file.read_text().strip())
                if pid not in self.known:
                    self.known[pid] = (psutil.Process(pid), "broker redis-server")
            except (ValueError, OSError, psutil.Error):
                pass
        for proc in psutil.process_iter(["pid"]):
            if proc.pid in self.known or proc.pid == os.getpid():
                continue
            try:
                if proc.environ().get("FARM_HOME") == self.home:
                    self.known[proc.pid] = (proc, self._label(proc))
            except (psutil.Error, OSError):
                continue

    def rss(self) -> dict[str, int]:
        out = {}
        for pid, (proc, label) in list(self.known.items()):
            try:
                out[f"{label} {pid}"] = proc.memory_info().rss
            except psutil.Error:
                self.known.pop(pid, None)
        return out

    def storage_bytes(self) -> int:
        """Bytes under storage (blocks, each inode once), less inodes also linked outside it (self.linked)."""
        seen: dict[tuple[int, int], list] = {}
        for dirpath, _, files in os.walk(self.storage):
            for f in files:
                try:
                    st = os.lstat(os.path.join(dirpath, f))
                except OSError:
                    continue
                seen.setdefault((st.st_dev, st.st_ino), [st, 0])[1] += 1
        self.linked = sum(st.st_blocks * 512 for st, n in seen.values() if st.st_nlink > n)
        return sum(st.st_blocks * 512 for st, n in seen.values() if st.st_nlink <= n)

    def run(self) -> None:
        last_scan = 0.0
        while not self.stop_flag.is_set():
            if time.monotonic() - last_scan > 1.0:
                self.discover()
                last_scan = time.monotonic()
            now = self.rss()
            for key, value in now.items():
                self.peak[key] = max(self.peak.get(key, 0), value)
            self.peak_total = max(self.peak_total, sum(now.values()))
            self.peak_storage = max(self.peak_storage, self.storage_bytes() - self.base_storage)
            self.peak_linked = max(self.peak_linked, self.linked)
            time.sleep(0.1)


# ---------------------------------------------------------------- per-step profile in this process

class StepClock:
    """Exclusive seconds per 'stage.step' (a nested step's time is not counted in its caller's)."""

    def __init__(self) -> None:
        self.t: dict[str, float] = {}
        self.stack: list[list] = []
        self.stage = "-"

    def wrap(self, fn, step: str):
        def timed(*a, **kw):
            frame = [time.perf_counter(), 0.0]
            self.stack.append(frame)
            try:
                return fn(*a, **kw)
            finally:
                self.stack.pop()
                spent = time.perf_counter() - frame[0]
                key = f"{self.stage}.{step}" if not step.startswith(("model", "colour")) else step
                self.t[key] = self.t.get(key, 0.0) + spent - frame[1]
                if self.stack:
                    self.stack[-1][1] += spent
        return timed


class TimedSession:
    def __init__(self, session, run) -> None:
        self._s, self.run = session, run

    def __getattr__(self, name):
        return getattr(self._s, name)


def profile(clip: Path, pack_dir: Path, source: Path, frames: int) -> None:
    import av

    import farm.faces.detect as detect_mod
    import farm.faces.model_stage as model_stage
    from farm.faces import decode
    from farm.faces.chain import build_chain, latent_for_pack
    from farm.faces.detect import build_detector
    from farm.faces.identity import compute_identity
    from farm.media.chunk_codec import BATCH_FRAMES
    from farm.models.packs import load_pack
    from farm.pipeline import regions
    from farm.pipeline.frame import Frame

    pack = load_pack(str(pack_dir), models_dir=pack_dir.parent, providers="cpu")
    identity = compute_identity([source], build_detector(pack), pack.session("recognizer"))
    clock = StepClock()
    for role in ROLES:
        s = pack.session(role)
        pack._sessions[role] = TimedSession(s, clock.wrap(s.run, f"model {role}"))
    patches = [(regions, "small_bgr", "detector input: shrink planes"),
               (decode, "letterbox_blob", "detector input: letterbox + blob"), (detect_mod.ScrfdDetector, "_decode", "decode+nms"),
               (model_stage, "crop_from_frame", "crop (warp)"), (model_stage, "paste_back", "paste (warp+mask)"),
               (regions, "_to_bgr", "colour YUV->BGR"), (regions, "write_bgr", "colour BGR->YUV + blend")]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    for obj, name, step in patches:
        setattr(obj, name, clock.wrap(getattr(obj, name), step))
    chain = build_chain({}, pack, latent_for_pack(identity, pack))
    for stage in chain.stages:
        if hasattr(stage, "run_crop"):
            stage.run_crop = clock.wrap(stage.run_crop, "blob pack/unpack + blend (run_crop)")
        raw = stage.process

        def staged(frame, raw=raw, name=stage.name):
            clock.stage = name
            try:
                return raw(frame)
            finally:
                clock.stage = "-"
        stage.process = staged
    decoded = []
    with av.open(str(clip)) as src:
        for i, f in enumerate(src.decode(video=0)):
            if i >= frames:
                break
            decoded.append(f)
    chain.setup()
    run_chain = (lambda fs: chain.process_batch(fs)) if chain.batches else (lambda fs: [chain.process(f) for f in fs])
    run_chain([Frame.from_av(f, k) for k, f in enumerate(decoded[:BATCH_FRAMES])])   # warm-up, not counted
    clock.t.clear()
    chain.setup()
    wall, faces = 0.0, 0
    for i in range(0, len(decoded), BATCH_FRAMES):
        batch = [Frame.from_av(f, i + k) for k, f in enumerate(decoded[i:i + BATCH_FRAMES])]
        start = time.perf_counter()
        done = run_chain(batch)
        wall += time.perf_counter() - start
        faces += sum(f.faces_changed for f in done)
    for obj, name, fn in saved:
        setattr(obj, name, fn)
    n = len(decoded)
    print(f"\nper step, ms per frame, {n} decoded frames through the worker's chain ({' -> '.join(chain.names)}), "
          f"{faces} faces changed:")
    model = 0.0
    for key, value in sorted(clock.t.items(), key=lambda kv: -kv[1]):
        print(f"  {key:44s} {1000 * value / n:8.2f}")
        model += value if key.startswith("model") else 0.0
    rest = wall - sum(clock.t.values())
    print(f"  {'other (stage code between the steps)':44s} {1000 * rest / n:8.2f}")
    print(f"  chain total {1000 * wall / n:.2f} ms/frame; outside model time {1000 * (wall - model) / n:.2f}")


# ---------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=3840)
    ap.add_argument("--height", type=int, default=2160)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--face", type=int, default=216, help="side of the fixed face, frame pixels")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--profile-frames", type=int, default=60)
    args = ap.parse_args()
    if args.runs < 3:
        ap.error("--runs must be at least 3")
    goal = 1.5 if args.height >= 2160 else 1.3

    from tests.clips import ffmpeg_exe

    header(f"face path: farm submit with zero-cost stand-ins vs plain ffmpeg, {args.width}x{args.height}")
    print("uptime before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    with local_farm("bench-fp") as (home, env, work):
        pack = work / "pack"
        build_pack(pack, work / "stage", env, args.width, args.height, args.face)
        clip, source = make_media(work, args.width, args.height, args.seconds, args.fps, args.face)
        source_size = clip.stat().st_size
        print(f"clip:    {args.width}x{args.height}, {args.seconds:g} s, {args.fps} fps, H.264 yuv420p, 2 s GOP, "
              f"1 AAC track, {source_size / MIB:.1f} MiB; encoder libx264 {args.preset} crf {args.crf}")
        out_farm, out_ff = work / "clip.farm.mp4", work / "clip.ffmpeg.mp4"
        submit = [*FARM, "submit", str(clip), "--source", str(source), "--models", str(pack), "--wait",
                  "--overwrite", "--output", str(out_farm), "--preset", args.preset, "--crf", str(args.crf)]
        plain = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(clip), "-map", "0", "-c:v", "libx264",
                 "-preset", args.preset, "-crf", str(args.crf), "-c:a", "copy", str(out_ff)]
        sampler = Sampler(home)
        sampler.start()
        sampler.discover()
        farm_peaks: list[tuple[dict, int, int, int]] = []

        def run_farm() -> None:
            sampler.reset()
            proc = subprocess.run(submit, env=env, cwd=ROOT, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"farm submit failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
            time.sleep(0.3)
            left = sampler.storage_bytes() - sampler.base_storage
            farm_peaks.append((dict(sampler.peak), sampler.peak_total, sampler.peak_storage, left))

        run_farm()     # warm-up (worker start, sessions) - not counted
        farm_peaks.clear()
        t_farm, t_ff = alternate(run_farm, lambda: subprocess.run(plain, check=True), args.runs)
        time.sleep(5)
        idle = sampler.rss()
        sampler.stop_flag.set()
        sampler.join()
        ratio = median(t_farm) / median(t_ff)
        print(f"farm:    {fmt(t_farm)}")
        print(f"ffmpeg:  {fmt(t_ff)}")
        print(f"ratio farm/ffmpeg: {ratio:.3f}  (goal <= {goal}: {'met' if ratio <= goal else 'NOT met'})")

        peaks, total, storage, left = max(farm_peaks, key=lambda p: p[1])   # the run with the highest total
        print("\npeak RSS during a job (sampled every ~100 ms; the timed run with the highest total), "
              "and RSS 5 s after the last job:")
        for key in sorted(peaks, key=lambda k: -peaks[k]):
            after = idle.get(key)
            print(f"  {key:32s} peak {peaks[key] / MIB:8.1f} MiB   idle after {'-' if after is None else f'{after / MIB:8.1f} MiB'}")
        print(f"  {'total at one moment':32s} peak {total / MIB:8.1f} MiB   idle after {sum(idle.values()) / MIB:8.1f} MiB"
              f"   (goal <= 1536 MiB at 4K: {'met' if total <= 1536 * MIB else 'NOT met'})")
        workers = [v for k, v in peaks.items() if k.startswith("worker")]
        if workers:
            print(f"  largest worker process peak {max(workers) / MIB:.1f} MiB (goal <= 600 MiB at 1080p)")
        print(f"\npeak bytes on storage during a job: {storage / MIB:.1f} MiB = {storage / source_size:.2f}x "
              f"the source ({source_size / MIB:.1f} MiB; goal 17.4: <= 1.5x); left on storage after the job: "
              f"{left / MIB:.1f} MiB")
        profile(clip, pack, source, args.profile_frames)
    print("\nuptime after: ", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
