"""A worker keeps its heap while it works (farm.memory.keep_heap_while_working): the
buffers of one image or frame are reused by the next instead of being handed back to the
system after every free and faulted in again.

Before the fix a chunk worker's glibc trim threshold stayed at 128 KiB: every 720p image
faulted in ~4 of its ~2.7 MiB buffers afresh (thousands of page faults an image, half the
worker's CPU in the kernel at 1080p). Page faults are counted, not time: the count does not
depend on the machine's load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from farm.broker.embedded import workers_running
from farm.config import load_settings
from tests.e2e.farmcli import FarmCLI

IMAGES = 24


def photos(folder: Path, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    ground = np.full((720, 1280, 3), 120, np.uint8)
    for k in range(IMAGES):
        ground[200:520, 400:880] = rng.integers(0, 256, (320, 480, 3), np.uint8)
        Image.fromarray(ground).save(folder / f"p{k:02d}.jpg", quality=90)


def chunk_worker(cli: FarmCLI) -> psutil.Process:
    """The pool child of the local farm's chunk worker (the process that renders)."""
    supervisor = psutil.Process(workers_running(load_settings(cli.env)))
    for proc in supervisor.children(recursive=True):
        if "--queues" in proc.cmdline() and "gpu" in proc.cmdline() and proc.parent().pid != supervisor.pid:
            return proc
    raise AssertionError("no chunk worker pool child found")


def minor_faults(proc: psutil.Process) -> int:
    return int(Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def test_a_chunk_worker_reuses_its_buffers_from_one_image_to_the_next(cli, tmp_path):
    photos(tmp_path / "warm", 1)
    photos(tmp_path / "batch", 2)
    cli.run("submit", str(tmp_path / "warm"), "--passthrough", "--output", str(tmp_path / "out1"), "--wait",
            check=True)
    worker = chunk_worker(cli)
    before = minor_faults(worker)
    cli.run("submit", str(tmp_path / "batch"), "--passthrough", "--output", str(tmp_path / "out2"), "--wait",
            check=True)
    assert chunk_worker(cli).pid == worker.pid   # the same process rendered both batches
    per_image = (minor_faults(worker) - before) / IMAGES
    assert len(list((tmp_path / "out2").glob("*.jpg"))) == IMAGES
    # one 720p RGB buffer is 675 pages: faulting even one of them per image means the heap
    # was given back between images (the task's own start-up and the trim after it cost
    # ~3,000 faults once, ~125 an image over 24)
    assert per_image < 400, f"{per_image:.0f} page faults an image"
