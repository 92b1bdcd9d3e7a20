"""`farm status` and `farm jobs`: what the farm is doing, as tables or one JSON value
(added to the main app; settings and database come from its own helpers)."""

from __future__ import annotations

import json
from typing import Callable, Optional

import typer
from rich.console import Console

from farm.cli.flags import finite as _finite
from farm.cli.watch import farm_not_running, job_view, jobs_table, worker_json, workers_table
from farm.config import Settings
from farm.errors import EXIT_UNAVAILABLE
from farm.jobs.outcomes import job_json
from farm.state import store
from farm.state.batches import is_batch_id
from farm.state.db import Database


def register(app: typer.Typer, _settings: Callable[[], Settings], _database: Callable[[Settings], Database],
             out: Console, err: Console) -> None:
    """Add `status` and `jobs` to the `farm` Typer app."""

    @app.command()
    def status(job_id: Optional[str] = typer.Argument(None, help="A job or batch id; none: recent jobs."),
               as_json: bool = typer.Option(False, "--json", help="A job's or a batch's JSON object on stdout (no id: "
                                                              "{'jobs': [...], 'workers': [...]})."),
               follow_: bool = typer.Option(False, "--follow", "-f", help="Live view of running jobs and workers."),
               interval_s: Optional[float] = typer.Option(None, "--interval", callback=_finite, metavar="SECONDS",
                                                          help="Refresh period of --follow (default 1 s on a terminal; "
                                                               "5 s between plain lines otherwise).")) -> None:
        """Show one job's chunks, or the recent jobs (and workers); --follow keeps it live.

        Exits 4 after the tables when the farm is not running (local farm stopped, broker down).
        """
        settings = _settings()
        db = _database(settings)
        if follow_:
            from farm.cli.follow import PLAIN_EVERY_S, follow

            every_s = interval_s if interval_s is not None else (1.0 if out.is_terminal else PLAIN_EVERY_S)
            raise typer.Exit(follow(settings, db, out, interval_s=every_s))
        if job_id and is_batch_id(job_id):
            from farm.cli import batch_command

            batch_command.status(db, job_id, out, as_json)
        elif job_id and as_json:
            print(json.dumps(job_json(store.get_job(db, job_id))))
        elif job_id:
            out.print(job_view(store.get_job(db, job_id), out.width))
        else:
            from farm.state.registry import list_workers

            recent, workers = store.list_jobs(db, limit=20), list_workers(db)
            if as_json:   # one object: the recent jobs as `farm jobs --json` gives them, and the workers
                print(json.dumps({"jobs": [job_json(j) for j in recent], "workers": [worker_json(w) for w in workers]}))
            else:
                out.print(jobs_table(recent, out.width))
                if workers:
                    out.print(workers_table(workers, out.width))
        notice = farm_not_running(settings)
        if notice:   # with --json stdout holds the one object: the notice goes to stderr
            (err if as_json else out).print(f"[bold yellow]{notice}[/]", highlight=False)
            raise typer.Exit(EXIT_UNAVAILABLE)


    @app.command()
    def jobs(as_json: bool = typer.Option(False, "--json", help="One JSON array on stdout."),
             limit: int = typer.Option(50, "--limit")) -> None:
        """List jobs."""
        rows = store.list_jobs(_database(_settings()), limit=limit)
        if as_json:
            print(json.dumps([job_json(j) for j in rows]))
        else:
            out.print(jobs_table(rows, out.width))
