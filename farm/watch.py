"""Rendering jobs for people: live progress while waiting, status tables, JSON results."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TaskProgressColumn,
                           TextColumn, TimeRemainingColumn)
from rich.table import Table
from rich.text import Text

from farm import registry, store
from farm.db import Database
from farm.errors import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK
from farm.states import JobState

POLL_INTERVAL_S = 0.5
FINALIZING_POLL_S = 0.1
"""Once the last chunk is done the end is a second away: look more often, so `--wait`
returns as soon as the output is published (bench/bench_overhead.py)."""
QUARANTINE_CHECK_S = 5.0
"""How often `--wait` looks whether every chunk worker is quarantined (seconds)."""


def _next_poll(job: store.JobView, poll_s: float) -> float:
    return min(poll_s, FINALIZING_POLL_S) if job.state == JobState.FINALIZING.value else poll_s


def exit_code_for(state: str) -> int:
    return {JobState.DONE.value: EXIT_OK, JobState.CANCELLED.value: EXIT_CANCELLED}.get(state, EXIT_FAILED)


def job_json(job: store.JobView) -> dict[str, Any]:
    """The CI-facing result of a job (`farm submit --json`, `farm jobs --json`, the API)."""
    return {
        "id": job.id,
        "state": job.state,
        "input": job.input_path,
        "output": job.output_path,
        "frames": job.frames_total,
        "frames_done": job.frames_done,
        "chunks": job.chunk_count,
        "chunks_done": job.chunks_done,
        "priority": job.priority,
        "created_at": job.created_at.isoformat() + "Z",
        "finished_at": job.finished_at.isoformat() + "Z" if job.finished_at else None,
        "models": job.models.get("pack") if job.models else None,
        "error": job.error,
        "consent": job.consent,
        "provenance": job.provenance,
    }


class FpsColumn(ProgressColumn):
    """Frames per second: Rich's recent estimate, else frames done over the time waited so far."""

    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        if not speed and task.completed and task.elapsed:
            speed = task.completed / task.elapsed   # e.g. a short job done between two polls
        return Text(f"{speed:5.1f} fps" if speed else "  -.- fps", style="cyan")


def wait_for_job(db: Database, job_id: str, console: Console | None, poll_s: float = POLL_INTERVAL_S,
                 broker_check: Any = None) -> store.JobView:
    """Block until the job ends; show a Rich progress bar on `console` (stderr) if given.
    `broker_check()`, called while the job runs, raises (UnavailableError) to stop waiting
    on a broker that stays down."""
    job = store.get_job(db, job_id)
    check = broker_check or (lambda: None)
    if console is None:
        while not job.terminal:
            check()
            time.sleep(_next_poll(job, poll_s))
            job = store.get_job(db, job_id)
        return job
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
               TaskProgressColumn(), FpsColumn(), TimeRemainingColumn(), TextColumn("{task.fields[chunks]}")]
    stuck, checked_at = None, 0.0
    with Progress(*columns, console=console, transient=False, speed_estimate_period=10) as progress:
        task = progress.add_task(f"job {job_id}", total=job.frames_total, chunks="")
        while True:
            progress.update(task, completed=job.frames_done,
                            chunks=f"chunks {job.chunks_done}/{job.chunk_count} {job.state}"
                                   + (" (every worker quarantined)" if stuck else ""))
            if job.terminal:
                break
            if job.state != JobState.FINALIZING.value and time.monotonic() - checked_at >= QUARANTINE_CHECK_S:
                checked_at, was = time.monotonic(), stuck
                stuck = registry.all_quarantined(registry.list_workers(db))
                if stuck and stuck != was:
                    progress.console.print(f"[yellow]job {job_id} is waiting: {stuck}[/]", highlight=False)
            check()
            time.sleep(_next_poll(job, poll_s))
            job = store.get_job(db, job_id)
    return job


def jobs_table(jobs: list[store.JobView]) -> Table:
    table = Table(title="jobs", show_lines=False)
    table.add_column("id", no_wrap=True, min_width=12)   # never shortened: people copy it
    for col in ("state", "frames", "chunks", "created"):
        table.add_column(col)
    for col in ("input", "output / error"):
        table.add_column(col, overflow="fold")          # whole paths, folded on narrow terminals
    for j in jobs:
        table.add_row(j.id, _state(j.state), f"{j.frames_done}/{j.frames_total}", f"{j.chunks_done}/{j.chunk_count}",
                      f"{j.created_at:%Y-%m-%d %H:%M:%S}", j.input_path, j.error or j.output_path)
    return table


def job_table(job: store.JobView) -> Table:
    table = Table(title=f"job {job.id}: {job.state}, {job.frames_done}/{job.frames_total} frames -> {job.output_path}")
    for col in ("chunk", "state", "attempts", "worker", "frames", "time (s)", "error"):
        table.add_column(col)
    for c in job.chunks:
        secs = c.seconds
        table.add_row(str(c.index), _state(c.state), str(c.attempts), c.worker or "-",
                      f"{c.frames_planned if c.state == 'done' else c.frames_done}/{c.frames_planned}",
                      f"{secs:.1f}" if secs is not None else "-", c.error or "")
    table.caption = f"consent: {job.consent or 'none given'}" + (f"; provenance: {job.provenance}" if job.provenance else "")
    return table


def _state(state: str) -> str:
    colour = {"done": "green", "failed": "red", "cancelled": "yellow", "running": "cyan", "finalizing": "cyan"}
    return f"[{colour.get(state, 'white')}]{state}[/]"


def short_providers(providers: str | None) -> str:
    """'TensorrtExecutionProvider,CUDAExecutionProvider' -> 'Tensorrt, CUDA' ('-' if none)."""
    names = [p.strip().removesuffix("ExecutionProvider") for p in (providers or "").split(",")]
    return ", ".join(n for n in names if n and n != "-") or "-"


def workers_table(workers: list) -> Table:  # noqa: ANN001 - registry.WorkerView
    """One row per worker; names and states are never cut short, and a worker that stopped
    taking work (quarantined) says why on a line of its own."""
    table = Table(title="workers")
    for col in ("worker", "gpu", "providers", "state", "chunk", "fps", "frames", "last seen"):
        table.add_column(col, overflow="fold", min_width={"worker": 12, "state": 11}.get(col, len(col)))
    for w in workers:
        chunk = f"{w.job_id}/{w.chunk_index}" if w.job_id else "-"
        state = w.state if w.alive() else f"{w.state} (silent)"
        table.add_row(w.hostname, w.gpu or "-", short_providers(w.providers), _state(state), chunk, f"{w.fps:.1f}",
                      str(w.frames_total), f"{w.last_seen:%H:%M:%S}")
    notes = [f"{w.hostname}: {w.note}" for w in workers if w.note]
    if registry.all_quarantined(workers):
        notes.append(f"[yellow]{registry.ALL_QUARANTINED}[/]")
    if notes:
        table.caption = "\n".join(notes)
        table.caption_justify = "left"
    return table
