"""The batch's progress display and status table (farm.cli.batch_view): no process."""

from __future__ import annotations

import io

from rich.console import Console

from farm.cli.batch_view import BatchProgress, batch_view, items_summary
from farm.state.batches import JOB, REFUSED, SKIPPED
from tests.unit.test_batch_targets import FakeJob, view


def test_plain_progress_prints_a_line_when_the_items_change_and_says_done_failed_total_frames_and_eta():
    batch = view((JOB, "running"), (JOB, "done"), (REFUSED, None))
    buf = io.StringIO()
    clock = iter([0.0, 1.0, 2.0, 3.0, 4.0, 5.0]).__next__
    display = BatchProgress(Console(file=buf, width=200), batch, every_s=60, clock=clock)
    display.update(batch)
    display.update(batch)   # nothing changed, within every_s: no second line
    batch.items[0].job = FakeJob("done")
    display.update(batch)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"batch {batch.id}: running, items 1/3 done, 1 failed, 1 running, frames 10/20")
    assert lines[1].startswith(f"batch {batch.id}: done, items 2/3 done, 1 failed, frames 20/20 (100%)")
    assert "ETA 0:00" in lines[1]


def test_the_status_table_lists_items_failures_and_skipped_files():
    batch = view((JOB, "done"), (REFUSED, None), (SKIPPED, None))
    buf = io.StringIO()
    Console(file=buf, width=120).print(batch_view(batch, 120))
    text = buf.getvalue()
    assert f"batch {batch.id}: done" in text and "bad file" in text and "skipped /in/2.mp4" in text
    assert f"farm retry {batch.id}" in text
    assert items_summary(batch) == "items 1/2 done, 1 failed"
