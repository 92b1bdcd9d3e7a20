"""The one factory for ONNX Runtime sessions (real weights and demo stand-ins alike).

Providers are tried in the order TensorRT -> CUDA -> CPU, limited to those asked for.
A GPU provider that was asked for and cannot be had raises ProviderError naming what
is missing; unless 'cpu' was asked for too, ONNX Runtime is told never to place nodes
on the CPU (`session.disable_cpu_ep_fallback`), and the providers a session really got
are checked and logged.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnxruntime as ort

from farm.errors import ModelError, ProviderError
from farm.models import providers as prov

log = logging.getLogger("farm.models")

DISABLE_CPU_FALLBACK = "session.disable_cpu_ep_fallback"
DEVICE_ID = 0
"""Workers are pinned with CUDA_VISIBLE_DEVICES, so the GPU is always device 0."""

TRT_WORKSPACE_BYTES = 4 << 30
"""TensorRT builder workspace, in bytes."""


def create_session(
    model_path: str | Path,
    providers: Sequence[str] | str | None,
    cache_dir: str | Path | None = None,
    model_sha256: str | None = None,
    *,
    gpu_arch: str | None = None,
    intra_op_threads: int | None = None,
    tensorrt_fp16: bool = True,
) -> ort.InferenceSession:
    """Build an InferenceSession for `model_path` on exactly the providers asked for.

    providers: short names ('tensorrt', 'cuda', 'cpu'), a 'tensorrt,cuda' string, or
    None/'auto'. cache_dir: shared folder for TensorRT engines and timing caches
    (default: next to the model). model_sha256 names the engine-cache prefix, since
    ONNX Runtime's own engine names do not depend on the weights. gpu_arch overrides
    the detected compute capability (e.g. 'sm90') used for the cache folder. tensorrt_fp16:
    TensorRT may build fp16 engines (farm.models.precision; off for --precision fp32).
    """
    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    names = prov.resolve_providers(providers)
    prov.require(names)
    options = session_options(names, intra_op_threads=intra_op_threads)
    plist = provider_list(
        names,
        cache_dir=Path(cache_dir) if cache_dir else path.parent / ".trt-cache",
        model_sha256=model_sha256 or "",
        model_stem=path.stem,
        gpu_arch=gpu_arch if gpu_arch or "tensorrt" not in names else detect_gpu_arch(),
        tensorrt_fp16=tensorrt_fp16,
    )
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=plist)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if any(p in prov.GPU_PROVIDERS for p in names):
            raise ProviderError(
                f"cannot create a {'+'.join(names)} session for {path.name}: {message}",
                hint="check the driver, CUDA, cuDNN and TensorRT versions against onnxruntime-gpu "
                f"{ort.__version__}, or run with --providers cpu",
            ) from None
        raise ModelError(f"cannot load model {path}: {message}") from None
    check_providers(session, names, path.name)
    return session


def session_options(names: Sequence[str], *, intra_op_threads: int | None = None) -> ort.SessionOptions:
    """SessionOptions for `names`: CPU fallback disabled unless 'cpu' is among them."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if intra_op_threads:
        options.intra_op_num_threads = intra_op_threads
    if "cpu" not in names:
        options.add_session_config_entry(DISABLE_CPU_FALLBACK, "1")
    return options


def provider_list(
    names: Sequence[str],
    *,
    cache_dir: Path,
    model_sha256: str,
    model_stem: str,
    gpu_arch: str | None,
    tensorrt_fp16: bool = True,
) -> list[Any]:
    """The `providers=` argument for InferenceSession, with each provider's options."""
    out: list[Any] = []
    for name in names:
        if name == "tensorrt":
            out.append((prov.ORT_NAMES[name], tensorrt_options(cache_dir, model_sha256, model_stem, gpu_arch,
                                                               fp16=tensorrt_fp16)))
        elif name == "cuda":
            out.append((prov.ORT_NAMES[name], {"device_id": str(DEVICE_ID)}))
        else:
            out.append(prov.ORT_NAMES[name])
    return out


def tensorrt_options(cache_dir: Path, model_sha256: str, model_stem: str, gpu_arch: str | None,
                     fp16: bool = True) -> dict[str, str]:
    """TensorRT EP options: fp16 (unless asked not to), engine + timing cache under
    <cache_dir>/tensorrt/<arch>/, per-model prefix (an fp32 engine's prefix says so: the
    two are different engines of the same model)."""
    arch = _safe(gpu_arch or "unknown-arch")
    folder = Path(cache_dir) / "tensorrt" / arch
    folder.mkdir(parents=True, exist_ok=True)
    prefix = _safe(f"{model_stem}_{model_sha256[:16]}" if model_sha256 else model_stem) + ("" if fp16 else "_fp32")
    return {
        "device_id": str(DEVICE_ID),
        "trt_fp16_enable": "True" if fp16 else "False",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(folder),
        "trt_engine_cache_prefix": prefix,
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(folder),
        "trt_max_workspace_size": str(TRT_WORKSPACE_BYTES),
    }


def check_providers(session: ort.InferenceSession, names: Sequence[str], label: str) -> list[str]:
    """Raise ProviderError if a GPU provider asked for is not in use; log the ones that are."""
    used = session.get_providers()
    lost = [n for n in names if n in prov.GPU_PROVIDERS and prov.ORT_NAMES[n] not in used]
    if lost:
        raise ProviderError(
            f"{label}: onnxruntime did not enable {', '.join(lost)} (in use: {', '.join(used)})",
            hint="the GPU libraries were found but the provider failed to start; see the onnxruntime log",
        )
    log.info("model %s runs on %s", label, ", ".join(used))
    return used


def detect_gpu_arch() -> str | None:
    """The GPU's compute capability as 'sm90', from nvidia-smi (no CUDA init here); None if unknown."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=compute_cap", "--format=csv,noheader", "-i", "0"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)\.(\d+)", out)
    return f"sm{match.group(1)}{match.group(2)}" if match else None


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)
