"""Rendering jobs for people: live progress while waiting, status tables (the JSON a
machine reads is farm.jobs.outcomes)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column as RichColumn
from rich.table import Table
from rich.text import Text

from farm.broker import transport as broker
from farm.cli.tables import Column, fitted_table
from farm.config import Settings
from farm.jobs.outcomes import no_face_warning
from farm.state import registry, store
from farm.state.db import Database, utcnow
from farm.state.states import JobState
from farm.state.store import face_job

POLL_INTERVAL_S = 0.5
FINALIZING_POLL_S = 0.1
"""Once the last chunk is done the end is a second away: look more often, so `--wait`
returns as soon as the output is published (bench/bench_overhead.py)."""
QUARANTINE_CHECK_S = 5.0
"""How often `--wait` looks whether every chunk worker is quarantined (seconds)."""


def _next_poll(job: store.JobView, poll_s: float) -> float:
    return min(poll_s, FINALIZING_POLL_S) if job.state == JobState.FINALIZING.value else poll_s


def farm_not_running(settings: Settings) -> str | None:
    """A sentence saying why the farm cannot run jobs now, or None when it can: the local
    farm (private Redis and workers under FARM_HOME) is down, or a cluster's broker does
    not answer. Cheap: a pid check and one ping without retries."""
    from farm.broker import embedded as local
    if not settings.embedded_broker:
        if broker.alive(settings):
            return None
        return (f"the broker {settings.broker_shown} does not answer: no work reaches the workers "
                f"(check FARM_BROKER_URL and that Redis runs)")
    redis_up, workers_up = broker.alive(settings), local.workers_running(settings) is not None
    if redis_up and workers_up:
        return None
    if not redis_up and not workers_up:
        return "the local farm is not running: jobs wait until `farm up` (or the next `farm submit`) starts it"
    missing = "workers are" if redis_up else "broker (private Redis) is"
    return f"the local farm's {missing} not running: `farm down`, then `farm up` starts it again"


def format_eta(seconds: float | None) -> str:
    """Seconds left as 'M:SS' or 'H:MM:SS' ('-' when unknown)."""
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_line(job: store.JobView, fps: float | None) -> str:
    """One plain line of a job's progress (logs, CI, any output that is not a terminal)."""
    pct = 100.0 * job.frames_done / job.frames_total if job.frames_total else 100.0
    left = max(0, job.frames_total - job.frames_done)
    eta = left / fps if fps else (0.0 if left == 0 else None)
    return (f"job {job.id}: {job.state}, {job.frames_done}/{job.frames_total} frames ({pct:.0f}%), "
            f"chunks {job.chunks_done}/{job.chunk_count}, {f'{fps:.1f}' if fps else '-'} fps, ETA {format_eta(eta)}")


class PlainProgress:
    """Progress as plain lines, one per update: a line whenever the job's state or chunks
    change, else at most one per `every_s` seconds while frames advance."""

    def __init__(self, console: Console, every_s: float, clock: Any = time.monotonic) -> None:
        self.console, self.every_s, self.clock = console, every_s, clock
        self.started = clock()
        self.last_key: tuple | None = None
        self.last_at = float("-inf")
        self.first_frames: int | None = None
        self.last_frames = -1

    def update(self, job: store.JobView, note: str = "") -> None:
        now = self.clock()
        if self.first_frames is None:
            self.first_frames = job.frames_done
        key = (job.state, job.chunks_done, note)
        moved = job.frames_done != self.last_frames
        if key == self.last_key and not (moved and now - self.last_at >= self.every_s):
            return
        elapsed = now - self.started
        done = job.frames_done - self.first_frames
        fps = done / elapsed if elapsed > 0 and done > 0 else None
        self.console.print(progress_line(job, fps) + (f" ({note})" if note else ""), highlight=False, soft_wrap=True)
        self.last_key, self.last_at, self.last_frames = key, now, job.frames_done


    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class TerminalProgress:
    """`--wait` on a terminal: one live line that fits its width (the bar takes what is left)."""

    def __init__(self, console: Console, job: store.JobView) -> None:
        line = lambda: RichColumn(no_wrap=True)  # noqa: E731 - one line: never wrapped
        self.columns = [TextColumn("[bold]{task.description}", table_column=line()), BarColumn(),
                        MofNCompleteColumn(table_column=line()), TextColumn("frames", table_column=line()),
                        TaskProgressColumn(table_column=line()), FpsColumn(table_column=line()),
                        TimeRemainingColumn(table_column=line()), TextColumn("{task.fields[chunks]}", table_column=line())]
        self.progress = Progress(*self.columns, console=console, transient=False, speed_estimate_period=10)
        self.task = self.progress.add_task(f"job {job.id}", total=job.frames_total, chunks="")
        self.console = console
        self.update(job)   # sized before the first refresh

    def __enter__(self) -> "TerminalProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, job: store.JobView, note: str = "") -> None:
        chunks = f"chunks {job.chunks_done}/{job.chunk_count} {job.state}" + (f" ({note})" if note else "")
        label = f"job {job.id}"
        bar = bar_width(self.console.width, label, job, chunks)
        if bar < BAR_MIN_WIDTH:   # narrow: the id is on the line above ("job ... submitted")
            label = ""
            bar = bar_width(self.console.width, label, job, chunks)
        self.columns[1].bar_width = bar
        self.progress.update(self.task, description=label, completed=job.frames_done, chunks=chunks)


BAR_MAX_WIDTH = 40
"""Widest progress bar of `--wait` (terminal cells); narrower when the line needs the room."""


BAR_MIN_WIDTH = 10
"""Narrower than this, `--wait` leaves the job id out of its line to give the bar room."""


def bar_width(width: int, label: str, job: store.JobView, chunks: str) -> int:
    """Cells left for the bar on a `width`-cell line once the other columns have theirs
    (one space between columns, one cell spare); at least 1, at most BAR_MAX_WIDTH."""
    total = len(str(job.frames_total))
    others = [len(label), 2 * total + 1, len("frames"), len("100%"), len("999.9 fps"), len("-:--:--"),
              len(chunks)]
    return max(1, min(BAR_MAX_WIDTH, width - sum(others) - len(others) - 1))


PLAIN_PROGRESS_EVERY_S = 5.0
"""`--wait` off a terminal (a CI log): at most one progress line per this many seconds
while only frames advance; a change of state or of chunks done prints at once."""


class FpsColumn(ProgressColumn):
    """Frames per second: Rich's recent estimate, else frames done over the time waited so far."""

    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        if not speed and task.completed and task.elapsed:
            speed = task.completed / task.elapsed   # e.g. a short job done between two polls
        return Text(f"{speed:5.1f} fps" if speed else "  -.- fps", style="cyan")


def wait_for_job(db: Database, job_id: str, console: Console | None, poll_s: float = POLL_INTERVAL_S,
                 broker_check: Any = None) -> store.JobView:
    """Block until the job ends; show its progress on `console` (stderr) if given: a live bar
    on a terminal, plain lines (PlainProgress) otherwise. `broker_check()`, called while the
    job runs, raises (UnavailableError) to stop waiting on a broker that stays down."""
    job = store.get_job(db, job_id)
    check = broker_check or (lambda: None)
    if console is None:
        while not job.terminal:
            check()
            time.sleep(_next_poll(job, poll_s))
            job = store.get_job(db, job_id)
        return job
    stuck, checked_at = None, 0.0
    display = TerminalProgress(console, job) if console.is_terminal else PlainProgress(console, PLAIN_PROGRESS_EVERY_S)
    with display:
        while True:
            display.update(job, "every worker quarantined" if stuck else "")
            if job.terminal:
                break
            if job.state != JobState.FINALIZING.value and time.monotonic() - checked_at >= QUARANTINE_CHECK_S:
                checked_at, was = time.monotonic(), stuck
                stuck = registry.all_quarantined(registry.list_workers(db))
                if stuck and stuck != was:
                    console.print(f"[yellow]job {job_id} is waiting: {stuck}[/]", highlight=False)
            check()
            time.sleep(_next_poll(job, poll_s))
            job = store.get_job(db, job_id)
    warning = no_face_warning(job)
    if warning:   # at the end, where a person sees it: usually a wrong reference or threshold
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    return job


def report_job(job: store.JobView, as_json: bool, console: Console) -> None:
    """A waited-for job's end: its outcome JSON on stdout, or one line (and what to do) on `console`."""
    if as_json:
        import json

        from farm.jobs.outcomes import job_outcome_json

        print(json.dumps(job_outcome_json(job)))
    elif job.state == "done":
        console.print(f"[green]done[/]: {job.output_path}")
    else:
        console.print(f"[red]{job.state}[/]: job {job.id}: {job.error or ''}")
        if job.state == "failed":
            console.print(f"  see `farm status {job.id}`; after fixing the cause, `farm retry {job.id}`")


def jobs_table(jobs: list[store.JobView], width: int = 80) -> Table:
    """Recent jobs, fitted to `width` columns: id, state, frames and output (or error)
    always; the created time, chunks, input and frames with a face changed as room allows."""
    columns = [Column("id"), Column("state"), Column("frames", 1), Column("created", 2), Column("chunks", 3),
               Column("changed", 5), Column("output / error", fold=True), Column("input", 4, fold=True)]
    rows = [[j.id, _state(j.state), f"{j.frames_done}/{j.frames_total}", f"{j.created_at:%m-%d %H:%M}",
             f"{j.chunks_done}/{j.chunk_count}", changed_cell(j), j.error or j.output_path, j.input_path]
            for j in jobs]
    return fitted_table(columns, rows, width, title="jobs")


def job_table(job: store.JobView, width: int = 80) -> Table:
    """One job's chunks, fitted to `width` columns (the error column only when a chunk has one)."""
    columns = [Column("chunk"), Column("state"), Column("frames", 1), Column("changed", 1), Column("attempts", 2),
               Column("worker", 3), Column("time (s)", 4)]
    rows = []
    for c in job.chunks:
        secs = c.seconds
        counted = c.state == "done" and c.frames_changed is not None and face_job(job)
        faced = str(c.frames_changed) if counted else "-"
        rows.append([str(c.index), _state(c.state), f"{c.frames_rendered}/{c.frames_planned}", faced, str(c.attempts),
                     c.worker or "-", f"{secs:.1f}" if secs is not None else "-", c.error or ""])
    if any(c.error for c in job.chunks):
        columns.append(Column("error", fold=True))
    changed = job.changed
    faced = (f", {changed[0]} with a face changed ({changed[1]} faces)" if changed is not None and face_job(job)
             else "")
    people = job.people_changed
    if people is not None:   # --map: per person
        from farm.faces.mapping import people_counts   # numpy: not for every `farm` command's start

        faced += "; " + ", ".join(f"{name}: {n}" for name, n in people_counts(job.options, people))
    return fitted_table(columns, rows, width,
                        title=f"job {job.id}: {job.state}, {job.frames_done}/{job.frames_total} frames{faced} -> "
                              f"{job.output_path}")


def changed_cell(job: store.JobView) -> str:
    """Frames with a face changed, for the jobs table: '-' for a pass-through job or one
    not counted."""
    changed = job.changed
    return str(changed[0]) if changed is not None and face_job(job) else "-"


def job_notes(job: store.JobView) -> list[Text]:
    """Why a job failed or stopped, and what to do, as lines to print under its table: the
    job's error, each failed chunk's own error (when the job's does not already say it)."""
    lines = []
    warning = no_face_warning(job)
    if warning:
        lines.append(Text.assemble(("warning: ", "bold yellow"), warning, overflow="fold"))
    if job.error:
        lines.append(Text.assemble(("error: ", "bold red"), job.error, overflow="fold"))
    for c in job.chunks:
        if c.state == "failed" and c.error and c.error not in (job.error or ""):
            lines.append(Text(f"chunk {c.index} failed after {c.attempts} attempt(s) on {c.worker or '-'}: {c.error}",
                              overflow="fold"))
    if job.state == JobState.FAILED.value:
        lines.append(Text(f"what to do: fix the cause, then `farm retry {job.id}` (runs again only what is not done)",
                          style="dim", overflow="fold"))
    elif job.state == JobState.CANCELLED.value:
        lines.append(Text(f"cancelled: nothing was published; `farm retry {job.id}` runs what is left",
                          style="dim", overflow="fold"))
    elif job.state == JobState.DONE.value:
        from farm.jobs.published import changed_since   # a later job may have replaced its output

        replaced = changed_since(job)
        if replaced:
            lines.append(Text.assemble(("note: ", "bold yellow"), replaced, overflow="fold"))
    return lines


def job_view(job: store.JobView, width: int = 80) -> Group:
    """`farm status JOB`: the chunks table, the consent and provenance record, then why the job
    failed (if it did)."""
    record = [Text(f"consent: {job.consent or 'none given'}", overflow="fold")]
    if job.provenance:
        record.append(Text(f"provenance: {job.provenance}", overflow="fold"))
    return Group(job_table(job, width), *record, *job_notes(job))


def _state(state: str) -> str:
    colour = {"done": "green", "failed": "red", "cancelled": "yellow", "running": "cyan", "finalizing": "cyan",
              "offline": "red", "quarantined": "red"}
    return f"[{colour.get(state, 'white')}]{state}[/]"


def short_providers(providers: str | None) -> str:
    """'TensorrtExecutionProvider,CUDAExecutionProvider' -> 'Tensorrt, CUDA' ('-' if none)."""
    names = [p.strip().removesuffix("ExecutionProvider") for p in (providers or "").split(",")]
    return ", ".join(n for n in names if n and n != "-") or "-"


def ago(seconds: float) -> str:
    """A duration in the past, short: '5 s ago', '12 min ago', '3 h ago', '2 d ago'."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def worker_state(w: registry.WorkerView) -> str:
    """The state to show: 'offline' once a worker stopped or its heartbeat stopped."""
    return "offline" if w.offline() else w.state


def worker_json(w: registry.WorkerView) -> dict[str, Any]:
    """One worker as `farm status --json` gives it: the table's facts, times in ISO 8601 UTC."""
    return {"worker": w.hostname, "pid": w.pid, "state": worker_state(w), "last_seen": w.last_seen.isoformat() + "Z",
            "job_id": w.job_id, "chunk": w.chunk_index, "gpu": w.gpu, "fps": round(w.fps, 2),
            "frames": w.frames_total, "providers": w.providers, "note": w.note}


def workers_table(workers: list[registry.WorkerView], width: int = 80) -> Table:
    """One row per worker, fitted to `width` columns; names and states are never cut short,
    a worker whose heartbeat stopped is 'offline' (last seen so long ago), and one that
    stopped taking work (quarantined) says why on a line of its own."""
    columns = [Column("worker"), Column("state"), Column("last seen"), Column("chunk", 1), Column("gpu", 2),
               Column("fps", 4), Column("frames", 5), Column("providers", 3, fold=True)]
    now = utcnow()
    rows = [[w.hostname, _state(worker_state(w)), ago((now - w.last_seen).total_seconds()),
             f"{w.job_id}/{w.chunk_index}" if w.job_id else "-", w.gpu or "-", f"{w.fps:.1f}", str(w.frames_total),
             short_providers(w.providers)] for w in workers]
    table = fitted_table(columns, rows, width, title="workers")
    notes = [f"{w.hostname}: {w.note}" for w in workers if w.note]
    if registry.all_quarantined(workers):
        notes.append(f"[yellow]{registry.ALL_QUARANTINED}[/]")
    if notes:
        table.caption = "\n".join(notes)
        table.caption_justify = "left"
    return table
