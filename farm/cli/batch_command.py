"""`farm submit PATH...` for many targets, and `farm status|cancel|retry BATCH`: the CLI's
side of a batch (farm.jobs.batch_service does the work, farm.cli.batch_view shows it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import typer
from rich.console import Console

from farm.config import Settings
from farm.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from farm.jobs.outcomes import batch_exit_code, batch_json, outcome_json
from farm.state import batches
from farm.state.db import Database
from farm.state.states import JobState


def run_batch_submit(paths: list[str], options: dict[str, Any], origins: dict[str, str], *, settings: Settings,
                     db: Database, err: Console, wait: bool, as_json: bool, force: bool,
                     start_farm: Callable[[], None]) -> None:
    """Submit every target of `paths` as one batch; print its id (or its JSON), or wait for
    it with one progress display; exit 0 when no item failed, 1 when any did (3: cancelled)."""
    from farm.broker import embedded as local
    from farm.cli.batch_view import wait_for_batch
    from farm.jobs.batch_service import submit_batch
    from farm.jobs.spec import CLI

    with err.status("submitting", spinner="dots") as status:
        batch = submit_batch(paths, options, settings, db, origins=origins, where=CLI, force=force,
                             before_store=start_farm, on_step=lambda msg: status.update(msg))
    _print_submitted(batch, err)
    if not wait:
        if as_json:
            print(json.dumps(batch_json(batch)))
        else:
            print(batch.id)
        raise typer.Exit(EXIT_FAILED if batch.count(JobState.FAILED.value) else EXIT_OK)
    try:
        batch = wait_for_batch(db, batch.id, err, broker_check=local.BrokerWatch(settings, batch.id).check)
    except KeyboardInterrupt:
        message = f"stopped waiting (interrupted); batch {batch.id} goes on"
        hint = f"`farm status {batch.id}` shows it, `farm cancel {batch.id}` stops it"
        err.print(f"{message} ({hint})", highlight=False)
        if as_json:
            print(json.dumps(outcome_json(EXIT_INTERRUPTED, message, hint, batch.id)))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        exc.job_id = batch.id   # main's --json outcome names the batch
        raise
    report(batch, err, as_json)
    raise typer.Exit(batch_exit_code(batch))


def _print_submitted(batch: batches.BatchView, err: Console) -> None:
    resumed = sum(1 for i in batch.items if i.kind == batches.RESUMED)
    refused = [i for i in batch.items if i.kind == batches.REFUSED]
    jobs = sum(1 for i in batch.items if i.kind == batches.JOB)
    images = [i for i in batch.items if i.kind == batches.IMAGE]
    if images:   # the images of a batch render in a few images jobs, in tasks of many images
        tasks = {i.job.id: i.job.chunk_count for i in images if i.job is not None}
        jobs += len(tasks)
        err.print(f"{len(images)} image(s) in {sum(tasks.values())} task(s) of images job(s) {', '.join(tasks)}",
                  highlight=False)
    err.print(f"batch [bold]{batch.id}[/]: {len(batch.items)} item(s): {jobs} job(s) submitted, {resumed} already "
              f"rendered (resumed), {len(refused)} refused, {len(batch.skipped)} file(s) skipped", highlight=False)
    for item in batch.skipped:
        err.print(f"  [dim]skipped[/] {item.input}: {item.error}", highlight=False)
    for item in refused:
        err.print(f"  [red]refused[/] {item.input}: {item.error}", highlight=False)


def report(batch: batches.BatchView, err: Console, as_json: bool) -> None:
    """The batch's end: its JSON on stdout, or a summary and its failures on stderr."""
    if as_json:
        print(json.dumps(batch_json(batch)))
        return
    from farm.cli.batch_view import items_summary

    colour = "green" if batch_exit_code(batch) == EXIT_OK else "red"
    err.print(f"[{colour}]batch {batch.id} {batch.state}[/]: {items_summary(batch)}", highlight=False)
    for item in batch.items:
        if item.state == JobState.FAILED.value:
            err.print(f"  [red]failed[/] {item.input}: {item.failure}", highlight=False)
    if batch.count(JobState.FAILED.value):
        err.print(f"  after fixing the causes, `farm retry {batch.id}` runs the failed items again", highlight=False)


def status(db: Database, batch_id: str, out: Console, as_json: bool) -> None:
    from farm.cli.batch_view import batch_view

    batch = batches.get_batch(db, batch_id)
    if as_json:
        print(json.dumps(batch_json(batch)))
    else:
        out.print(batch_view(batch, out.width))


def cancel(settings: Settings, db: Database, batch_id: str, err: Console) -> None:
    from farm.jobs.batch_service import cancel_batch

    cancelled = cancel_batch(settings, db, batch_id)
    err.print(f"batch {batch_id}: {len(cancelled)} job(s) cancelled ({', '.join(cancelled)}); workers stop between "
              "frames and nothing of them is published", highlight=False)


def retry(settings: Settings, db: Database, batch_id: str, err: Console, start_farm: Callable[[], None]) -> None:
    """Each item's line as it is run or submitted again, or not (and why); exit 0 when every
    retry went through, 1 when one was refused, 2 when nothing could be run again."""
    from farm.jobs.batch_service import retry_batch_items

    done = retry_batch_items(settings, db, batch_id, before_enqueue=start_farm,
                             on_line=lambda line: err.print(line, highlight=False))
    refusal = done.nothing_done()
    if refusal is not None:
        raise refusal
    raise typer.Exit(EXIT_FAILED if done.refused else EXIT_OK)


def as_paths(values: list[Path]) -> list[str]:
    return [str(v) for v in values]
