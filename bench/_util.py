"""Shared helpers of the benchmarks: machine description, medians, alternating runs."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:          # run as `python bench/x.py` from the checkout
    sys.path.insert(0, str(ROOT))


def machine() -> str:
    """'<cpu model>, <n> CPUs, <os>' for the results table."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"


def header(title: str) -> None:
    print(f"# {title}")
    print(f"machine: {machine()}")
    print(f"date:    {dt.date.today().isoformat()}")


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(a: Callable[[], object], b: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Run a, b, a, b, ... `runs` times each (b first on odd rounds); seconds of each."""
    ta, tb = [], []
    for r in range(runs):
        order = [(a, ta), (b, tb)] if r % 2 == 0 else [(b, tb), (a, ta)]
        for fn, out in order:
            out.append(timed(fn))
    return ta, tb


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt(values: list[float], unit: str = "s") -> str:
    return ", ".join(f"{v:.3f}" for v in values) + f" {unit} (median {median(values):.3f})"


FARM = [sys.executable, "-m", "farm"]


@contextlib.contextmanager
def local_farm(name: str, **env_vars: str) -> Iterator[tuple[Path, dict[str, str], Path]]:
    """A private embedded farm, started (`farm up`) and stopped (`farm down`) around the block.

    Yields (farm home, environment for `farm` commands, a scratch folder for clips and
    outputs); both folders are removed at the end.
    """
    work = Path(tempfile.mkdtemp(prefix=f"farm-{name}-"))
    home = Path("/tmp") / f"farm-{name}-{uuid.uuid4().hex[:8]}"   # short: unix socket path
    home.mkdir()
    env = dict(os.environ, FARM_HOME=str(home), PYTHONUNBUFFERED="1", **env_vars)
    env.pop("FARM_BROKER_URL", None)
    try:
        subprocess.run([*FARM, "up"], env=env, check=True, cwd=ROOT, capture_output=True)
        yield home, env, work
    finally:
        subprocess.run([*FARM, "down"], env=env, cwd=ROOT, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
