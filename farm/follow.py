"""`farm status --follow`: live progress of every unfinished job and of every worker.

Per job: state, frames done/total, a bar, frames per second and ETA. Per worker: GPU,
state, the chunk it runs (job/index and that chunk's frames), the ONNX Runtime
providers in use, the fps of its last chunk and when it last reported.

Frames per second of a job are measured between refreshes over the last
`RATE_WINDOW_S` seconds; before two samples exist (and with `once=True`) they are the
average since the job's first chunk was claimed.
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

from farm import store
from farm.config import Settings
from farm.db import Database, utcnow
from farm.registry import WorkerView, list_workers
from farm.states import JOB_TERMINAL, JobState
from farm.watch import short_providers

RATE_WINDOW_S = 15.0
MAX_JOBS_SHOWN = 50
LIVE_STATES = [st.value for st in JobState if st not in JOB_TERMINAL]


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


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def jobs_view(jobs: list[store.JobView], meter: RateMeter) -> Table:
    table = Table(title=f"running jobs ({len(jobs)})", expand=False)
    for col in ("job", "state", "progress", "frames", "chunks", "fps", "ETA", "input"):
        table.add_column(col, no_wrap=col != "input")
    for job in jobs:
        fps = meter.rate(job.id) or average_fps(job)
        left = max(0, job.frames_total - job.frames_done)
        eta = left / fps if fps else (0.0 if left == 0 else None)
        running = sum(1 for c in job.chunks if c.state == "running")
        table.add_row(job.id, job.state, ProgressBar(total=max(job.frames_total, 1), completed=job.frames_done, width=24),
                      f"{job.frames_done}/{job.frames_total}",
                      f"{job.chunks_done}/{job.chunk_count} ({running} running)",
                      f"{fps:.1f}" if fps else "-", format_eta(eta), job.input_path)
    if not jobs:
        table.add_row("-", "no unfinished jobs", "", "", "", "", "", "")
    return table


def workers_view(workers: list[WorkerView], jobs: dict[str, store.JobView]) -> Table:
    table = Table(title=f"workers ({sum(1 for w in workers if w.alive())} alive)")
    for col in ("worker", "gpu", "state", "chunk", "chunk frames", "providers", "fps", "seen"):
        table.add_column(col, no_wrap=col != "providers")
    for w in workers:
        chunk, chunk_frames = "-", "-"
        if w.job_id is not None and w.chunk_index is not None:
            chunk = f"{w.job_id}/{w.chunk_index}"
            job = jobs.get(w.job_id)
            view = next((c for c in job.chunks if c.index == w.chunk_index), None) if job else None
            if view is not None:
                chunk_frames = f"{view.frames_done}/{view.frames_planned}"
        state = w.state if w.alive() else f"{w.state} (silent)"
        providers = short_providers(w.providers)
        table.add_row(w.hostname, w.gpu or "-", state, chunk, chunk_frames, providers,
                      f"{w.fps:.1f}" if w.fps else "-", f"{w.last_seen:%H:%M:%S}")
    if not workers:
        table.add_row("-", "", "no worker has reported yet", "", "", "", "", "")
    return table


def snapshot(db: Database, meter: RateMeter) -> Group:
    """Read the database once and build the view (jobs, then workers)."""
    jobs = store.list_jobs(db, limit=MAX_JOBS_SHOWN, states=LIVE_STATES)
    for job in jobs:
        meter.add(job.id, job.frames_done)
    meter.forget_except({j.id for j in jobs})
    workers = list_workers(db)
    stamp = Text(f"farm status --follow   {utcnow():%Y-%m-%d %H:%M:%S} UTC   (Ctrl-C to stop)", style="dim")
    return Group(stamp, jobs_view(jobs, meter), workers_view(workers, {j.id: j for j in jobs}))


def follow(settings: Settings, db: Database, console: Console, interval_s: float = 1.0, once: bool = False) -> int:
    """Show live progress until Ctrl-C (or one snapshot with `once`); returns the exit code 0."""
    del settings  # the database holds everything shown; kept for a stable signature
    meter = RateMeter()
    if once:
        console.print(snapshot(db, meter))
        return 0
    try:
        with Live(snapshot(db, meter), console=console, refresh_per_second=4, transient=False) as live:
            while True:
                time.sleep(interval_s)
                live.update(snapshot(db, meter))
    except KeyboardInterrupt:
        pass
    return 0
