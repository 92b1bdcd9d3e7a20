"""Rendering for people: the fps column of `farm submit --wait`, the jobs table."""

from __future__ import annotations

import datetime as dt

from rich.console import Console
from rich.progress import Progress

from farm.cli.watch import FpsColumn, jobs_table
from farm.state.store import JobView


def test_fps_is_shown_for_a_job_done_between_two_polls():
    """Given a job whose 30 frames were all done 2 s into the wait (one progress update),
    the fps column shows frames over time waited instead of '-.-'."""
    progress = Progress(FpsColumn())
    task_id = progress.add_task("job", total=30)
    task = progress.tasks[0]
    task.start_time = progress.get_time() - 2.0
    progress.update(task_id, completed=30)
    assert FpsColumn().render(task).plain.strip() == "15.0 fps"
    progress.add_task("other", total=30)
    idle = progress.tasks[1]
    assert FpsColumn().render(idle).plain.strip() == "-.- fps"


def test_the_jobs_table_never_shortens_a_job_id():
    now = dt.datetime(2025, 1, 1, 12, 0, 0)
    job = JobView("0123456789ab", "done", now, now, now, "/very/long/path/to/the/input/video.mp4", "/s/source.mp4",
                  "/very/long/path/to/the/output/video.farm.mp4", False, False, 5, {}, {}, {}, 30, 30.0, 2, False,
                  None)
    console = Console(width=60, record=True)
    console.print(jobs_table([job]))
    text = console.export_text()
    assert "0123456789ab" in text   # whole, even on a narrow terminal
