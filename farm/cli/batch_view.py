"""A batch for people: one progress display while waiting (items done/failed/total, frames,
ETA), and `farm status BATCH`'s table of items (the JSON is farm.jobs.outcomes.batch_json)."""

from __future__ import annotations

import time
from typing import Any, Callable

from rich.console import Console, Group
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Column as RichColumn
from rich.text import Text

from farm.cli.tables import Column, fitted_table
from farm.cli.watch import PLAIN_PROGRESS_EVERY_S, POLL_INTERVAL_S, format_eta
from farm.state import batches
from farm.state.db import Database
from farm.state.states import JobState


def items_summary(batch: batches.BatchView) -> str:
    """'items 3/10 done, 1 failed, 2 running' (the parts that are not zero after done)."""
    parts = [f"items {batch.count(JobState.DONE.value)}/{len(batch.items)} done"]
    for label, n in (("failed", batch.count(JobState.FAILED.value)),
                     ("cancelled", batch.count(JobState.CANCELLED.value)), ("running", batch.live)):
        if n:
            parts.append(f"{n} {label}")
    return ", ".join(parts)


class BatchProgress:
    """One display for the whole batch: a live bar over its frames on a terminal, else a
    plain line whenever the items' counts change (at most every `every_s` s while only
    frames advance)."""

    def __init__(self, console: Console, batch: batches.BatchView, every_s: float = PLAIN_PROGRESS_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console, self.every_s, self.clock = console, every_s, clock
        self.started, self.first = clock(), batch.frames[0]
        self.last_key: tuple | None = None
        self.last_at = float("-inf")
        self.progress: Progress | None = None
        if console.is_terminal:
            line = lambda: RichColumn(no_wrap=True)  # noqa: E731 - one line
            self.progress = Progress(TextColumn("[bold]{task.description}", table_column=line()), BarColumn(bar_width=30),
                                     TaskProgressColumn(table_column=line()), TimeRemainingColumn(table_column=line()),
                                     TextColumn("{task.fields[items]}", table_column=line()), console=console)
            self.task = self.progress.add_task(f"batch {batch.id}", total=max(1, batch.frames[1]), items="")

    def __enter__(self) -> "BatchProgress":
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def line(self, batch: batches.BatchView) -> str:
        done, total = batch.frames
        elapsed = self.clock() - self.started
        fps = (done - self.first) / elapsed if elapsed > 0 and done > self.first else None
        left = max(0, total - done)
        eta = left / fps if fps else (0.0 if left == 0 else None)
        pct = 100.0 * done / total if total else 100.0
        return (f"batch {batch.id}: {batch.state}, {items_summary(batch)}, frames {done}/{total} ({pct:.0f}%), "
                f"ETA {format_eta(eta)}")

    def update(self, batch: batches.BatchView) -> None:
        done, total = batch.frames
        if self.progress is not None:
            self.progress.update(self.task, total=max(1, total), completed=done, items=items_summary(batch))
            return
        key = (batch.state, len(batch.items), batch.count("done"), batch.count("failed"), batch.live)
        now = self.clock()
        if key == self.last_key and now - self.last_at < self.every_s:
            return
        self.console.print(self.line(batch), highlight=False, soft_wrap=True)
        self.last_key, self.last_at = key, now


def wait_for_batch(db: Database, batch_id: str, console: Console | None, poll_s: float = POLL_INTERVAL_S,
                   broker_check: Any = None) -> batches.BatchView:
    """Block until no item of the batch is live; show one progress display on `console`."""
    batch = batches.get_batch(db, batch_id)
    check = broker_check or (lambda: None)
    if console is None:
        while batch.live:
            check()
            time.sleep(poll_s)
            batch = batches.get_batch(db, batch_id)
        return batch
    with BatchProgress(console, batch) as display:
        while True:
            display.update(batch)
            if not batch.live:
                break
            check()
            time.sleep(poll_s)
            batch = batches.get_batch(db, batch_id)
    return batch


def _state(state: str) -> str:
    colour = {"done": "green", "failed": "red", "cancelled": "yellow", "running": "cyan", "skipped": "dim"}
    return f"[{colour.get(state, 'white')}]{state}[/]"


def batch_view(batch: batches.BatchView, width: int = 80) -> Group:
    """`farm status BATCH`: a row per item (job, state, frames, output or error), then the
    skipped files and what to do about failures."""
    columns = [Column("job"), Column("state"), Column("frames", 1), Column("input", 2, fold=True),
               Column("output / error", fold=True)]
    rows = []
    for i in batch.items:
        frames = f"{i.job.frames_done}/{i.job.frames_total}" if i.job is not None and i.kind == batches.JOB else "-"
        note = i.failure or (i.output or "") + (" (resumed: already rendered)" if i.kind == batches.RESUMED else "")
        rows.append([i.job_id or "-", _state(i.state), frames, i.input, note])
    done, total = batch.frames
    title = f"batch {batch.id}: {batch.state}, {items_summary(batch)}, frames {done}/{total}"
    lines: list[Any] = [fitted_table(columns, rows, width, title=title)]
    for i in batch.skipped:
        lines.append(Text(f"skipped {i.input}: {i.error}", style="dim", overflow="fold"))
    if batch.count(JobState.FAILED.value) or batch.count(JobState.CANCELLED.value):
        lines.append(Text(f"what to do: fix the cause, then `farm retry {batch.id}` (runs again only what is not done)",
                          style="dim", overflow="fold"))
    return Group(*lines)
