"""GPU discovery through NVML, without initialising CUDA in this process.

The supervisor must never touch CUDA (a CUDA context does not survive fork), and
NVML does not create one. No NVML library (no driver) means no GPUs.
"""

from __future__ import annotations

import ctypes
import os

from farm.errors import ConfigError


def count_gpus() -> int:
    """Number of NVIDIA GPUs NVML sees; 0 when there is no driver."""
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return 0
    if nvml.nvmlInit_v2() != 0:
        return 0
    try:
        count = ctypes.c_uint(0)
        if nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
            return 0
        return int(count.value)
    finally:
        nvml.nvmlShutdown()


def parse_gpus(spec: str | None, available: int) -> list[int]:
    """'all' -> every GPU NVML sees; '0,2' -> those indexes; None or '' -> none."""
    if not spec:
        return []
    if spec == "all":
        return list(range(available))
    try:
        ids = [int(x) for x in spec.split(",") if x.strip() != ""]
    except ValueError:
        raise ConfigError(f"--gpus takes 'all' or indexes like 0,2; got {spec!r}") from None
    if len(set(ids)) != len(ids) or any(i < 0 for i in ids):
        raise ConfigError(f"--gpus has a repeated or negative index: {spec!r}")
    return ids


def pinned_env(gpu: int | None, providers: str) -> dict[str, str]:
    """The environment of one worker child: its GPU only, in PCI bus order."""
    env = dict(os.environ)
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    env["CUDA_VISIBLE_DEVICES"] = "" if gpu is None else str(gpu)
    env["FARM_PROVIDERS"] = providers
    return env
