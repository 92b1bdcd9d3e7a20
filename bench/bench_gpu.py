"""Benchmark (d): 4K frames per second per GPU through the real provider chain.

    .venv/bin/python bench/bench_gpu.py [--providers tensorrt,cuda] [--seconds 4] [--runs 3]
    .venv/bin/python bench/bench_gpu.py --cpu-smoke --seconds 0.1   # check the script without a GPU

Needs an NVIDIA GPU with onnxruntime-gpu; without one it refuses (exit 2) and says why.
What it runs, on one GPU (CUDA_VISIBLE_DEVICES picks it):
- a 4K (3840x2160, 30 fps) H.264 clip with one moving face, split into one chunk;
- farm.media.chunk_codec.transcode_chunk: decode thread (NVDEC where available) ->
  the face chain (detect -> swap -> enhance, region conversions only, faces batched
  across frames where a model allows) -> encode thread (NVENC where usable, else
  libx264 veryfast crf 18; H100/H200 have no NVENC, so x264 on the CPU there);
- models: the installed default pack (real weights) when `farm models fetch` was run;
  otherwise stand-ins of the real SIZE with random weights: the real input/output
  contracts and roughly the published compute per call (detector ~10 GFLOPs at 640,
  inswapper ~175 GFLOPs + a 512x512 latent path, GFPGAN ~400 GFLOPs at 512), built
  here as conv stacks. Random detectors find nothing meaningful, so with stand-ins the
  detector model still runs on every frame but the face box comes from a fixed
  position (one face, 25% of the height, always): the cost is the same.
Prints frames per second (median of --runs, each a whole chunk) and, over the timed
runs, the share of each chunk's wall time spent in each stage of the chain (detect,
select, swap, enhance: model runs and their CPU pre/post-processing, which the stages
time together); the rest ("decode/encode waits") is the chain waiting for the decode
thread or for room in the encode queue. bench/RESULTS.md says where this has (not) been run.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from _util import header, median

EXIT_NO_GPU = 2


def gpu_problem(providers: str) -> str | None:
    """None if a GPU session can be created on `providers`, else why not."""
    import onnxruntime as ort

    from farm.models import providers as prov

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return f"onnxruntime {ort.__version__} has no CUDA provider (install onnxruntime-gpu)"
    names = prov.parse_providers(providers)
    missing = dict.fromkeys(m for p in names if p in prov.GPU_PROVIDERS for m in prov.diagnose(p))
    return "; ".join(missing) or None


def conv_stack(name: str, inputs: list[tuple[str, list]], outputs: list[tuple[str, list]], body, path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    nodes, inits = body()
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _convs(x: str, c_in: int, width: int, layers: int, c_out: int, tag: str, rng) -> tuple[list, list, str]:
    """`layers` 3x3 convs (c_in -> width ... -> c_out) with ReLU; random weights."""
    from onnx import helper, numpy_helper

    nodes, inits, cur, c = [], [], x, c_in
    for i in range(layers):
        co = c_out if i == layers - 1 else width
        w = (rng.standard_normal((co, c, 3, 3)) * (1.0 / np.sqrt(c * 9))).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"{tag}_w{i}"))
        out = f"{tag}_c{i}"
        nodes.append(helper.make_node("Conv", [cur, f"{tag}_w{i}"], [out], pads=[1, 1, 1, 1]))
        if i < layers - 1:
            nodes.append(helper.make_node("Relu", [out], [out + "r"]))
            out += "r"
        cur, c = out, co
    return nodes, inits, cur


def build_standins(folder: Path) -> dict[str, Path]:
    """Compute-equivalent random-weight models with the real I/O contracts."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)

    def swapper():
        nodes, inits, out = _convs("target", 3, 256, 9, 3, "sw", rng)      # ~175 GFLOPs at 128x128
        emap = rng.standard_normal((512, 512)).astype(np.float32)
        inits += [numpy_helper.from_array(emap, "emap_big"),
                  numpy_helper.from_array(np.zeros((1, 3, 1, 1), np.float32), "zero_bias")]
        nodes += [helper.make_node("MatMul", ["source", "emap_big"], ["lat"]),
                  helper.make_node("ReduceMean", ["lat"], ["latm"], keepdims=1),
                  helper.make_node("Mul", ["latm", "zero_bias"], ["latb"]),
                  helper.make_node("Add", [out, "latb"], ["pre"]),
                  helper.make_node("Sigmoid", ["pre"], ["output"])]
        inits.append(numpy_helper.from_array(emap, "emap"))                 # last initializer = emap
        return nodes, inits

    def enhancer():
        nodes, inits, out = _convs("input", 3, 64, 21, 3, "gf", rng)        # ~400 GFLOPs at 512x512
        nodes.append(helper.make_node("Tanh", [out], ["output"]))
        return nodes, inits

    def detector():
        nodes, inits, out = _convs("input.1", 3, 32, 6, 32, "det", rng)     # ~10 GFLOPs at 640x640
        outs = []
        for s, stride in enumerate((8, 16, 32)):
            pooled = f"p{stride}"
            nodes.append(helper.make_node("MaxPool", [out], [pooled], kernel_shape=[stride, stride],
                                          strides=[stride, stride]))
            for width, kind in ((1, "score"), (4, "bbox"), (10, "kps")):
                w = (rng.standard_normal((2 * width, 32, 1, 1)) * 0.01).astype(np.float32)
                inits.append(numpy_helper.from_array(w, f"h{stride}{kind}"))
                conv, name = f"hc{stride}{kind}", f"{kind}_{stride}"
                nodes.append(helper.make_node("Conv", [pooled, f"h{stride}{kind}"], [conv]))
                tr = conv + "t"
                nodes.append(helper.make_node("Transpose", [conv], [tr], perm=[0, 2, 3, 1]))
                shape = f"shape{width}"
                if shape not in [i.name for i in inits]:
                    inits.append(numpy_helper.from_array(np.array([-1, width], np.int64), shape))
                raw = name + ("_raw" if kind == "score" else "")
                nodes.append(helper.make_node("Reshape", [tr, shape], [raw]))
                if kind == "score":   # scores ~0: nothing found; the box comes from FixedFaceDetector
                    nodes.append(helper.make_node("Sigmoid", [raw], [raw + "s"]))
                    inits.append(numpy_helper.from_array(np.array([0.0], np.float32), f"z{stride}"))
                    nodes.append(helper.make_node("Mul", [raw + "s", f"z{stride}"], [name]))
                outs.append((kind, stride, name, width))
        order = [o for k in ("score", "bbox", "kps") for o in outs if o[0] == k]
        return nodes, inits, [(o[2], [None, o[3]]) for o in order]

    paths = {}
    paths["swapper"] = conv_stack("swapper", [("target", [1, 3, 128, 128]), ("source", [1, 512])],
                                  [("output", [1, 3, 128, 128])], swapper, folder / "swapper.onnx")
    paths["enhancer"] = conv_stack("enhancer", [("input", [1, 3, 512, 512])], [("output", [1, 3, 512, 512])],
                                   enhancer, folder / "enhancer.onnx")
    det_nodes, det_inits, det_outs = detector()
    paths["detector"] = conv_stack("detector", [("input.1", [1, 3, 640, 640])], det_outs,
                                   lambda: (det_nodes, det_inits), folder / "detector.onnx")
    return paths


class FixedFaceDetector:
    """Runs a detector model for its cost; reports one face at a fixed box (stand-ins only)."""

    wants_gray = False

    def __init__(self, inner, frame_w: int, frame_h: int, max_side: int) -> None:
        self.inner = inner
        scale = min(1.0, max_side / max(frame_w, frame_h))
        side = frame_h * 0.25 * scale
        cx, cy = frame_w * scale / 2, frame_h * scale / 2
        self.box = np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32)

    def detect(self, image):
        from farm.faces.decode import landmarks_from_boxes
        from farm.faces.types import Face

        self.inner.detect(image)
        return [Face(self.box, 0.99, landmarks_from_boxes(self.box[None])[0])]


class StageClock:
    """Seconds spent in each stage of a chain (process and process_batch), by stage name."""

    def __init__(self, chain: Any) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._depth: dict[str, int] = defaultdict(int)   # process_batch may call process: count once
        for stage in chain.stages:
            for method in ("process", "process_batch"):
                fn = getattr(stage, method, None)
                if fn is not None:
                    setattr(stage, method, self._timed(stage.name, fn))

    def _timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            self._depth[name] += 1
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self._depth[name] -= 1
                if self._depth[name] == 0:
                    self.seconds[name] += time.perf_counter() - start
        return run

    def reset(self) -> None:
        self.seconds.clear()

    def report(self, wall_s: float) -> str:
        """One line per stage: seconds and share of `wall_s`, then the rest (decode/encode waits)."""
        lines = [f"  {name:<20} {sec:8.2f} s  {100 * sec / wall_s:5.1f} %" for name, sec in self.seconds.items()]
        rest = max(0.0, wall_s - sum(self.seconds.values()))
        lines.append(f"  {'decode/encode waits':<20} {rest:8.2f} s  {100 * rest / wall_s:5.1f} %")
        return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--providers", default="tensorrt,cuda")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--models-dir", default=None, help="where the default pack is installed (FARM_HOME/models)")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16"),
                    help="as `farm submit --precision` (issue 14.4: run fp32 and fp16 side by side)")
    ap.add_argument("--pixel-boost", default="native", help="as `farm submit --pixel-boost` (e.g. 512)")
    ap.add_argument("--cpu-smoke", action="store_true",
                    help="check this script on a machine without a GPU: CPU provider, the figure is NOT a GPU figure")
    args = ap.parse_args()
    if args.cpu_smoke:
        args.providers = "cpu"

    header("GPU: 4K frames per second per GPU, decode + faces + encode"
           + (" -- CPU SMOKE RUN, not a GPU figure" if args.cpu_smoke else ""))
    problem = None if args.cpu_smoke else gpu_problem(args.providers)
    if problem:
        print(f"REFUSED: this benchmark needs an NVIDIA GPU with onnxruntime-gpu: {problem}")
        return EXIT_NO_GPU

    from farm.faces.chain import build_chain, latent_for_pack
    from farm.faces.detect import DEFAULT_MAX_SIDE, DetectStage, ScrfdDetector
    from farm.faces.enhance import EnhanceStage
    from farm.faces.select import SelectStage
    from farm.faces.swap import SwapStage
    from farm.media.chunk_codec import choose_encoder, transcode_chunk
    from farm.media.hwaccel import encoder_problem, nvdec_hwaccel
    from farm.media.plan import plan_chunks
    from farm.media.probe import probe
    from farm.media.split import split_chunks
    from farm.models.packs import load_pack
    from farm.models.precision import plan_for
    from farm.models.providers import resolve_providers
    from farm.models.sessions import create_session
    from farm.pipeline.stage import StageChain
    from tests.clips import make_clip

    tmp = Path(tempfile.mkdtemp(prefix="farm-bench-d-"))
    width, height = 3840, 2160
    latent = np.random.default_rng(1).standard_normal(512).astype(np.float32)
    latent /= np.linalg.norm(latent)
    from farm.config import load_settings
    from farm.errors import ModelError

    settings = load_settings()
    plan = plan_for(args.precision, resolve_providers(args.providers))
    try:
        # ModelError: the default pack is not installed (or not verified) here. Any other
        # error (a provider that fails on this GPU, ...) is a real failure and is raised.
        pack = load_pack("default", models_dir=args.models_dir or settings.models_path, providers=args.providers,
                         cache_dir=settings.storage_dir / "trt-cache", precision=plan)
        options = {"faces": "all", "enhance": True, "pixel_boost": args.pixel_boost}
        chain = build_chain(options, pack, latent_for_pack(latent, pack, options))
        print(f"models:  the installed default pack (real weights): swapper {pack.entry('swapper').name}")
    except ModelError as exc:
        print(f"models:  random-weight stand-ins of the real compute, because the default pack is not usable: {exc}")
        paths = build_standins(tmp / "standins")
        sess = {r: create_session(p, args.providers, tmp / "trt-cache", tensorrt_fp16=plan.tensorrt_fp16)
                for r, p in paths.items()}
        det = FixedFaceDetector(ScrfdDetector(sess["detector"]), width, height, DEFAULT_MAX_SIDE)
        chain = StageChain([DetectStage(det), SelectStage("all"), SwapStage(sess["swapper"], latent, args.pixel_boost),
                            EnhanceStage(sess["enhancer"], 0.8)])
    print(f"providers: {args.providers}; precision {args.precision}: {plan.name}; pixel boost {args.pixel_boost}")

    clip = make_clip(tmp / "clip.mp4", width=width, height=height, fps=30, seconds=args.seconds,
                     moving_face=True, gop=60)
    info = probe(clip)
    plan = plan_chunks(info, info.video.frame_count)[0]
    seg = split_chunks(clip, info, [plan], tmp / "in")[0]
    nvenc_problem = encoder_problem("h264_nvenc", info.video.pix_fmt)   # a job asks for NVENC by name
    settings_enc = choose_encoder(info.video, codec=None if nvenc_problem else "h264_nvenc")
    print(f"encoder: {settings_enc.codec} ({nvenc_problem or 'NVENC'}); "
          f"decoder: {'NVDEC' if nvdec_hwaccel('auto', info.video.codec) else 'software'}")

    fps = []
    clock = StageClock(chain)
    wall = 0.0
    with chain:
        run_batch = chain.process_batch
        transcode_chunk(seg, tmp / "warm.mov", plan, settings_enc, chain.process, process_batch=run_batch)  # engines
        clock.reset()
        for r in range(args.runs):
            start = time.perf_counter()
            n = transcode_chunk(seg, tmp / f"o{r}.mov", plan, settings_enc, chain.process, process_batch=run_batch)
            seconds = time.perf_counter() - start
            wall += seconds
            fps.append(n / seconds)
    print("4K fps per GPU: " + ", ".join(f"{v:.2f}" for v in fps) + f" (median {median(fps):.2f})")
    print(f"time per stage over the {args.runs} timed runs (share of {wall:.2f} s wall):")
    print(clock.report(wall))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
