"""Execution providers: parse the user's choice and diagnose what a GPU provider lacks.

Nothing here initialises CUDA (no cuInit, no context): diagnosis only looks for
device nodes and loads shared libraries by name, so it is safe in the parent of a
prefork pool. onnxruntime (and numpy with it, ~30 MiB of RSS) is imported only when a
GPU provider is diagnosed: a CPU worker's Celery parent checks its providers without it.
"""

from __future__ import annotations

import functools
import contextlib
import ctypes
import glob
import io
import logging
import os
import site
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from farm.errors import InputError, ProviderError

log = logging.getLogger("farm.models")

ORT_NAMES: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
"""Short name (as on the command line) -> ONNX Runtime provider name, in preference order."""

ALIASES = {"trt": "tensorrt", "gpu": "cuda"}
GPU_PROVIDERS = frozenset({"tensorrt", "cuda"})
AUTO = "auto"
"""`--providers auto` (the default): TensorRT+CUDA where a GPU is usable, otherwise CPU (logged)."""

CUDNN_MAJOR = 9
TENSORRT_MAJOR = 10


def parse_providers(spec: str | Sequence[str] | None) -> list[str]:
    """'tensorrt,cuda,cpu' -> ['tensorrt', 'cuda', 'cpu'], put in preference order.

    Returns ['auto'] for None, '' or 'auto'. Raises InputError for unknown names.
    """
    if spec is None:
        return [AUTO]
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [ALIASES.get(s.strip().lower(), s.strip().lower()) for s in items if s.strip()]
    if not names or names == [AUTO]:
        return [AUTO]
    unknown = [n for n in names if n not in ORT_NAMES]
    if unknown:
        raise InputError(
            f"unknown execution provider {', '.join(map(repr, unknown))}",
            hint="use a comma-separated list of tensorrt, cuda, cpu (or 'auto')",
        )
    order = list(ORT_NAMES)
    return sorted(dict.fromkeys(names), key=order.index)


def resolve_providers(spec: str | Sequence[str] | None) -> list[str]:
    """Parse `spec`; 'auto' becomes the best set this machine can run (logged)."""
    names = parse_providers(spec)
    if names != [AUTO]:
        return names
    return list(_auto_providers())


@functools.lru_cache(maxsize=1)
def _auto_providers() -> tuple[str, ...]:
    """What 'auto' means on this machine: found once per process (the GPU libraries do not
    come and go), so its warning is logged once, not at every pack a process loads."""
    if not diagnose("cuda"):
        chosen = ["tensorrt", "cuda"] if not diagnose("tensorrt") else ["cuda"]
    else:
        chosen = ["cpu"]
        log.warning("providers=auto: no usable GPU (%s); running on the CPU", "; ".join(diagnose("cuda")))
    log.info("providers=auto resolved to %s", ",".join(chosen))
    return tuple(chosen)


def ort_cuda_major() -> int | None:
    """The CUDA major version this onnxruntime build targets (None for CPU builds)."""
    try:
        from onnxruntime.capi import build_and_package_info as info  # noqa: PLC0415
    except ImportError:
        return None
    version = getattr(info, "cuda_version", "") or ""
    try:
        return int(version.split(".")[0])
    except ValueError:
        return None


def diagnose(provider: str) -> list[str]:
    """What `provider` lacks on this machine, one readable item each; [] when it looks usable."""
    if provider == "cpu":
        return []
    if provider not in GPU_PROVIDERS:
        raise InputError(f"unknown execution provider {provider!r}")
    import onnxruntime as ort

    missing: list[str] = []
    ort_name = ORT_NAMES[provider]
    if ort_name not in ort.get_available_providers():
        missing.append(
            f"onnxruntime build with {ort_name} (installed: {', '.join(ort.get_available_providers())};"
            " install onnxruntime-gpu, never together with onnxruntime)"
        )
        return missing
    missing += _driver_problems()
    cuda = ort_cuda_major() or 12
    _preload_nvidia_wheels()
    libs = [f"libcudart.so.{cuda}", f"libcublas.so.{cuda}", f"libcublasLt.so.{cuda}"]
    absent = [lib for lib in libs if not _loadable(lib)]
    if absent:
        missing.append(f"CUDA {cuda} runtime ({', '.join(absent)} not found; pip install 'onnxruntime-gpu[cuda,cudnn]')")
    if not _loadable(f"libcudnn.so.{CUDNN_MAJOR}"):
        missing.append(f"cuDNN {CUDNN_MAJOR} (libcudnn.so.{CUDNN_MAJOR} not found)")
    if provider == "tensorrt":
        trt = [f"libnvinfer.so.{TENSORRT_MAJOR}", f"libnvonnxparser.so.{TENSORRT_MAJOR}"]
        absent = [lib for lib in trt if not _loadable(lib, extra_dirs=_tensorrt_dirs())]
        if absent:
            missing.append(
                f"TensorRT {TENSORRT_MAJOR} ({', '.join(absent)} not found; pip install 'tensorrt-cu{cuda}<{TENSORRT_MAJOR + 1}')"
            )
    return missing


def require(providers: Iterable[str]) -> None:
    """Raise ProviderError naming everything missing for the GPU providers in `providers`."""
    wanted = [p for p in providers if p in GPU_PROVIDERS]
    missing: dict[str, None] = {}
    for p in wanted:
        missing.update(dict.fromkeys(diagnose(p)))
    if missing:
        raise ProviderError(
            f"execution provider {'+'.join(wanted)} requested but not available; missing: {'; '.join(missing)}",
            hint="fix the GPU setup, or choose what this machine can run with --providers cpu "
            "(FARM_PROVIDERS=cpu); the farm never falls back to the CPU on its own",
        )


# ---------------------------------------------------------------- probes


def _driver_problems() -> list[str]:
    problems = []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1", "none", "NoDevFiles"):
        problems.append(f"a visible GPU (CUDA_VISIBLE_DEVICES={visible!r} hides every device)")
    if sys.platform.startswith("linux") and not glob.glob("/dev/nvidia[0-9]*"):
        problems.append("an NVIDIA GPU device (/dev/nvidia0 absent: no GPU, or not passed to this container)")
    if not _loadable("libcuda.so.1"):
        problems.append("the NVIDIA driver (libcuda.so.1 cannot be loaded)")
    return problems


def _loadable(name: str, extra_dirs: Iterable[Path] = ()) -> bool:
    for d in extra_dirs:
        candidate = d / name
        if candidate.exists():
            name = str(candidate)
            break
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def _site_dirs() -> list[Path]:
    dirs = [Path(p) for p in site.getsitepackages()]
    with contextlib.suppress(Exception):
        dirs.append(Path(site.getusersitepackages()))
    return dirs


def _tensorrt_dirs() -> list[Path]:
    return [d / "tensorrt_libs" for d in _site_dirs() if (d / "tensorrt_libs").is_dir()]


_preloaded = False


def _preload_nvidia_wheels() -> None:
    """Let onnxruntime load CUDA/cuDNN from the nvidia-* pip wheels (quietly; once)."""
    global _preloaded
    if _preloaded:
        return
    _preloaded = True
    import onnxruntime as ort

    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    out = io.StringIO()
    with contextlib.suppress(Exception), contextlib.redirect_stdout(out):
        preload()
    if out.getvalue().strip():
        log.debug("onnxruntime.preload_dlls: %s", out.getvalue().strip())
