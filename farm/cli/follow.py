"""`farm status --follow`: live progress of every unfinished job and of every worker.

Per job: state, frames done/total, a bar, frames per second and ETA. Per worker: GPU,
state, the chunk it runs (job/index and that chunk's frames), the ONNX Runtime
providers in use, the fps of its last chunk and when it last reported.

Frames per second of a job are measured between refreshes over the last
`RATE_WINDOW_S` seconds; before two samples exist (and with `once=True`) they are the
average since the job's first chunk was claimed.

On a terminal the view is redrawn in place and fits its width (columns dropped by
priority, farm.cli.tables). Anywhere else (a pipe, a log file) it prints plain lines: one
per job whose progress or state changed and one per worker whose state changed, at most
once per refresh period, so a log shows the whole run without redraw codes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from farm.cli.tables import Column, fitted_table
from farm.cli.watch import ago, farm_not_running, format_eta, progress_line, short_providers, worker_state
from farm.config import Settings
from farm.state import store
from farm.state.db import Database, utcnow
from farm.state.registry import WorkerView, list_workers
from farm.state.states import ChunkState

PROGRESS_BAR_WIDTH = 20
"""Cells of each job's bar in the live view."""

PLAIN_EVERY_S = 5.0
"""--follow off a terminal: seconds between looks (so at most one line per job per this)."""

RATE_WINDOW_S = 15.0
MAX_JOBS_SHOWN = 50


class RateMeter:
    """Frames per second per job over a sliding window of (time_s, frames_done) samples."""

    def __init__(self, window_s: float = RATE_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self.samples: dict[str, deque[tuple[float, int]]] = {}

    def add(self, job_id: str, frames_done: int) -> None:
        now = self.clock()
        samples = self.samples.setdefault(job_id, deque())
        samples.append((now, frames_done))
        while len(samples) > 2 and now - samples[0][0] > self.window_s:
            samples.popleft()

    def rate(self, job_id: str) -> float | None:
        samples = self.samples.get(job_id)
        if not samples or len(samples) < 2:
            return None
        (t0, f0), (t1, f1) = samples[0], samples[-1]
        return max(0.0, (f1 - f0) / (t1 - t0)) if t1 > t0 else None

    def forget_except(self, job_ids: set[str]) -> None:
        for job_id in list(self.samples):
            if job_id not in job_ids:
                del self.samples[job_id]


def average_fps(job: store.JobView) -> float | None:
    """Frames done over the time since the job's first chunk was claimed."""
    starts = [c.started_at for c in job.chunks if c.started_at]
    if not starts or not job.frames_done:
        return None
    elapsed = (utcnow() - min(starts)).total_seconds()
    return job.frames_done / elapsed if elapsed > 0 else None


def job_fps(job: store.JobView, meter: RateMeter) -> float | None:
    return meter.rate(job.id) or average_fps(job)


def jobs_view(jobs: list[store.JobView], meter: RateMeter, width: int = 200) -> Table:
    columns = [Column("job"), Column("state"), Column("progress", 3, width=PROGRESS_BAR_WIDTH), Column("frames"),
               Column("chunks", 2), Column("fps", 1), Column("ETA", 1), Column("input", 4, fold=True)]
    rows = []
    for job in jobs:
        fps = job_fps(job, meter)
        left = max(0, job.frames_total - job.frames_done)
        eta = left / fps if fps else (0.0 if left == 0 else None)
        running = sum(1 for c in job.chunks if c.state == ChunkState.RUNNING)
        bar = ProgressBar(total=max(job.frames_total, 1), completed=job.frames_done, width=PROGRESS_BAR_WIDTH)
        rows.append([job.id, job.state, bar, f"{job.frames_done}/{job.frames_total}",
                     f"{job.chunks_done}/{job.chunk_count} ({running} running)", f"{fps:.1f}" if fps else "-",
                     format_eta(eta), job.input_path])
    if not jobs:
        rows.append(["-", "no unfinished jobs", "", "", "", "", "", ""])
    return fitted_table(columns, rows, width, title=f"running jobs ({len(jobs)})", expand=False)


def chunk_frames(w: WorkerView, jobs: dict[str, store.JobView]) -> str:
    """Frames done/planned of the chunk a worker runs ('-' if none or unknown)."""
    job = jobs.get(w.job_id) if w.job_id is not None else None
    view = next((c for c in job.chunks if c.index == w.chunk_index), None) if job else None
    return f"{view.frames_rendered}/{view.frames_planned}" if view is not None else "-"


def workers_view(workers: list[WorkerView], jobs: dict[str, store.JobView], width: int = 200) -> Table:
    columns = [Column("worker"), Column("gpu", 3), Column("state"), Column("chunk", 1), Column("chunk frames", 2),
               Column("providers", 5, fold=True), Column("fps", 4), Column("seen")]
    now = utcnow()
    rows = [[w.hostname, w.gpu or "-", worker_state(w),
             f"{w.job_id}/{w.chunk_index}" if w.job_id is not None and w.chunk_index is not None else "-",
             chunk_frames(w, jobs), short_providers(w.providers), f"{w.fps:.1f}" if w.fps else "-",
             ago((now - w.last_seen).total_seconds())] for w in workers]
    if not workers:
        rows.append(["-", "", "no worker has reported yet", "", "", "", "", ""])
    return fitted_table(columns, rows, width, title=f"workers ({sum(1 for w in workers if w.alive())} alive)")


def read_farm(db: Database, meter: RateMeter) -> tuple[list[store.JobView], list[WorkerView]]:
    """Read the database once: the unfinished jobs (their rates sampled) and the workers."""
    jobs = store.live_jobs(db, limit=MAX_JOBS_SHOWN)
    for job in jobs:
        meter.add(job.id, job.frames_done)
    meter.forget_except({j.id for j in jobs})
    return jobs, list_workers(db)


def snapshot(db: Database, meter: RateMeter, width: int = 200, notice: str | None = None) -> Group:
    """Read the database once and build the view (jobs, then workers), `width` cells wide."""
    jobs, workers = read_farm(db, meter)
    stamp = Text(f"farm status --follow   {utcnow():%Y-%m-%d %H:%M:%S} UTC   (Ctrl-C to stop)", style="dim")
    parts = [stamp] + ([Text(notice, style="bold yellow")] if notice else [])
    return Group(*parts, jobs_view(jobs, meter, width), workers_view(workers, {j.id: j for j in jobs}, width))


class PlainLines:
    """--follow off a terminal: a line per change (job progress or state, worker state,
    the farm stopping or starting), nothing when nothing changed."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.shown: dict[str, tuple] = {}

    def emit(self, key: str, value: tuple, line: str) -> None:
        if self.shown.get(key) != value:
            self.shown[key] = value
            self.console.print(line, highlight=False, soft_wrap=True, markup=False)

    def update(self, db: Database, meter: RateMeter, notice: str | None) -> None:
        jobs, workers = read_farm(db, meter)
        stamp = f"{utcnow():%H:%M:%S}"
        self.emit("farm", (notice,), f"{stamp} {notice or 'the farm is running'}")
        for job in jobs:
            self.emit(f"job {job.id}", (job.state, job.frames_done, job.chunks_done),
                      f"{stamp} {progress_line(job, job_fps(job, meter))}")
        live = {f"job {j.id}" for j in jobs}
        for key in [k for k in self.shown if k.startswith("job ") and k not in live]:
            del self.shown[key]
            self.console.print(f"{stamp} {key}: no longer running (`farm status {key[4:]}`)", highlight=False,
                               soft_wrap=True, markup=False)
        for w in workers:
            state = worker_state(w)
            chunk = f" on {w.job_id}/{w.chunk_index}" if w.job_id is not None and state == "busy" else ""
            self.emit(f"worker {w.hostname}", (state, w.job_id, w.chunk_index),
                      f"{stamp} worker {w.hostname}: {state}{chunk}")


def follow(settings: Settings, db: Database, console: Console, interval_s: float = 1.0, once: bool = False) -> int:
    """Show live progress until Ctrl-C (or one snapshot with `once`); returns the exit code 0.

    A farm that is not running (farm_not_running) is said at the top, checked at every refresh."""
    meter = RateMeter()
    notice = farm_not_running(settings)
    if once:
        console.print(snapshot(db, meter, console.width, notice))
        return 0
    try:
        if not console.is_terminal:
            lines = PlainLines(console)
            while True:
                lines.update(db, meter, farm_not_running(settings))
                time.sleep(interval_s)
        with Live(snapshot(db, meter, console.width, notice), console=console, refresh_per_second=4,
                  transient=False) as live:
            while True:
                time.sleep(interval_s)
                live.update(snapshot(db, meter, console.width, farm_not_running(settings)))
    except KeyboardInterrupt:
        pass
    return 0
