"""The `farm` command: parsing and dispatch only; the work lives in plain modules.

Exit codes: 0 done, 1 job failed, 2 refused (bad input or usage; nothing stored),
3 cancelled, 4 the farm is unavailable (broker, database, storage, GPU provider), 130
interrupted (Ctrl-C). With --json each of them is one JSON object on stdout.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import logging
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from farm import __version__
from farm.broker import embedded as local
from farm.broker.reaper import reap
from farm.cli.flags import finite as _finite
from farm.cli.help_format import plain_help
from farm.cli.model_commands import models_app
from farm.cli.watch import report_job, wait_for_job
from farm.config import Settings, load_settings
from farm.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED, FarmError
from farm.jobs.outcomes import exit_code_for, job_json, outcome_json
from farm.memory import release_memory
from farm.state.batches import is_batch_id
from farm.state.db import Database, upgrade_schema

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="farm: a render farm for face-swapped video.")
db_app = typer.Typer(no_args_is_help=True, help="The job database.")
app.add_typer(db_app, name="db")
app.add_typer(models_app, name="models")
err = Console(stderr=True, soft_wrap=True)
out = Console()


def _settings() -> Settings:
    return load_settings()


def _database(settings: Settings) -> Database:
    db = Database(settings.database)
    upgrade_schema(db)
    return db


def _version(value: bool) -> None:
    if value:
        print(f"farm {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """farm: a render farm for face-swapped video."""


def submit(
    paths: list[Path] = typer.Argument(..., metavar="PATH", help="Videos, folders (walked recursively) or quoted "
                                       "globs to process (never modified); several make one batch."),
    wait: bool = typer.Option(False, "--wait", help="Show progress and block until the job (or batch) ends."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout at the end."),
    spec: Optional[Path] = typer.Option(None, "--spec", metavar="FILE", help="A TOML job spec; options given here override it."),
    force: bool = typer.Option(False, "--force", help="A batch: render every item again, even one already rendered "
                                                      "from the same input and options."),
    **options: Any,
) -> None:
    """Submit a video, or images and many videos as one batch; prints the job (or batch) id, or waits with --wait."""
    # every other option is a row of the job option table (farm.options): register_submit
    from farm.cli.flags import given_options
    from farm.jobs.batch import is_batch
    from farm.options import job_options

    given = given_options(options, job_options())
    raw = [str(p) for p in paths]
    if is_batch(raw, given.get("output")) or force:
        run_submit(None, given, spec=spec, wait=wait, as_json=as_json, batch=raw, force=force)
    else:
        run_submit(paths[0], given, spec=spec, wait=wait, as_json=as_json)


def register_submit(faces: bool = True) -> None:
    """(Re)declare `farm submit` with a flag for every row of the option table as it is now.

    faces=False leaves the face stages' options out: reading them imports the face
    pipeline (OpenCV, ~0.5 s), which `farm cancel` or `farm jobs` should not wait for;
    main() declares the whole table when the command is `submit`."""
    from farm.cli.flags import with_table_options
    from farm.options import SUBMIT_OPTIONS, job_options

    app.registered_commands[:] = [c for c in app.registered_commands if c.name != "submit"]
    app.command(name="submit")(with_table_options(submit, job_options() if faces else dict(SUBMIT_OPTIONS)))


register_submit(faces=False)


def run_submit(video: Path | None, given: dict[str, Any], *, spec: Path | None, wait: bool, as_json: bool,
               batch: list[str] | None = None, force: bool = False) -> None:
    """Submit `video` (or the targets of `batch`, farm.cli.batch_command) with the options
    `given` on the command line over those of `spec`."""
    from farm.jobs.service import submit_job
    from farm.jobs.spec import CLI, check_options, load_spec, option_origins, submit_request, with_overrides

    settings = _settings()
    given = check_options(given, "the command line", names=CLI)
    from_spec = load_spec(spec) if spec else {}
    options = with_overrides(from_spec, given)
    if batch is not None:
        from farm.cli.batch_command import run_batch_submit

        submit_request(Path("batch"), options, option_origins(from_spec, given), where=CLI, spec=spec)  # checks once
        run_batch_submit(batch, options, option_origins(from_spec, given), settings=settings, db=_database(settings),
                         err=err, wait=wait, as_json=as_json, force=force, start_farm=lambda: _start_local_farm(settings))
        return
    from farm.jobs.output_places import into_folder, made_folder

    into = into_folder(video.expanduser(), options.get("output"))   # --output DIR/: the output goes in DIR
    if into is not None:
        options["output"] = str(into)
    req = submit_request(video, options, option_origins(from_spec, given), where=CLI, spec=spec)
    db = _database(settings)

    folder = made_folder(into.parent, req.option("output")) if into else contextlib.nullcontext()
    with err.status("submitting", spinner="dots") as status, folder:
        submitted = submit_job(req, settings, db, on_step=lambda msg: status.update(msg),
                               before_store=lambda: _start_local_farm(settings))
    job_id = submitted.job.id
    if submitted.warning:   # recorded, so submitted: the farm hands it to the broker later
        err.print(f"[yellow]warning:[/] {submitted.warning}", highlight=False)
    if not wait:
        if as_json:
            print(json.dumps({**job_json(submitted.job), "warning": submitted.warning}))
        else:
            print(job_id)
        return
    err.print(f"job [bold]{job_id}[/] submitted")
    release_memory(drop_model_packs=True)   # the face prep's pack: the wait needs none of it
    try:
        job = wait_for_job(db, job_id, err, broker_check=local.BrokerWatch(settings, job_id).check)
    except KeyboardInterrupt:
        message = f"stopped waiting (interrupted); job {job_id} goes on"
        hint = f"`farm status {job_id}` shows it, `farm cancel {job_id}` stops it"
        err.print(f"{message} ({hint})", highlight=False)
        if as_json:
            print(json.dumps(outcome_json(EXIT_INTERRUPTED, message, hint, job_id)))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        exc.job_id = job_id   # the job exists: main's --json outcome names it
        raise
    report_job(job, as_json, err)
    raise typer.Exit(exit_code_for(job.state))


def _start_local_farm(settings: Settings) -> None:
    """Start the embedded farm (once a job or a retry has passed every check): on a cluster
    (FARM_BROKER_URL set) its own workers run the job, and local workers would join its queue."""
    started = local.up(settings) if settings.embedded_broker else []
    if started:
        err.print(f"[dim]started the local farm: {', '.join(started)} (stop it with `farm down`)[/]")


@app.command()
def demo(seconds: float = typer.Option(4.0, "--seconds", callback=_finite, help="Length of the sample clip (s).")) -> None:
    """Make a sample clip with a real face, preview its first frame, and run it through the farm
    with the demo models (pixel boost 256, box + occlusion mask)."""
    from farm.cli.demo_command import DEMO_FACE_OPTIONS, write_face_image, write_preview, write_sample_video

    settings = _settings()
    folder = settings.home / "demo"
    video = write_sample_video(folder / "sample.mp4", seconds)
    face = write_face_image(folder / "face.jpg")
    err.print(f"sample clip {video}, source face {face}")
    with err.status("rendering a preview of the first frame", spinner="dots"):
        shown = write_preview(video, face, folder / "sample.preview.png", settings)
    err.print(f"preview (before | after) {shown}")
    run_submit(video, {"source": [str(face)], "output": str(folder / "sample.farm.mp4"), "overwrite": True,
                       "chunk_seconds": 1.0, "consent": "farm demo: the public-domain sample face",
                       **DEMO_FACE_OPTIONS}, spec=None, wait=True, as_json=False)


from farm.cli.status_command import register as _register_status

_register_status(app, _settings, _database, out, err)


@app.command()
def cancel(job_id: str) -> None:
    """Cancel a job (or every live job of a batch): workers stop between frames; nothing is published.

    Refused (exit 2) once the job is done, including when its output was being
    published as the cancel came: publishing and finishing happen under the job's lock.
    """
    from farm.jobs.service import cancel_job

    settings = _settings()
    if is_batch_id(job_id):
        from farm.cli import batch_command

        return batch_command.cancel(settings, _database(settings), job_id, err)
    job = cancel_job(settings, _database(settings), job_id)
    err.print(f"job {job.id} cancelled: workers stop between frames and nothing will be published")


@app.command()
def retry(job_id: str) -> None:
    """Run a job (or a batch's unfinished items) again from what is left (a done job is refused).

    A failed or cancelled job runs its unfinished chunks (or its finalize) again; a queued or
    running job left by a stopped farm gets what the broker lost queued again."""
    from farm.jobs.service import retry_job

    settings = _settings()
    if is_batch_id(job_id):
        from farm.cli import batch_command

        return batch_command.retry(settings, _database(settings), job_id, err, lambda: _start_local_farm(settings))
    retried = retry_job(settings, _database(settings), job_id, before_enqueue=lambda: _start_local_farm(settings))
    err.print(retried.message, highlight=False)
    if retried.warning:
        err.print(f"[yellow]warning:[/] {retried.warning}", highlight=False)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(ctx: typer.Context) -> None:
    """Run workers on this machine: farm worker [--gpus all|0,2] [--cpu N] [--providers LIST]."""
    from farm.workers.supervisor import main as supervisor_main

    _database(_settings())
    raise typer.Exit(supervisor_main(list(ctx.args)))


@app.command()
def up(workers: Optional[int] = typer.Option(None, "--workers", help="Local CPU workers (default from settings).")) -> None:
    """Start the local farm (private Redis + workers) and keep it running."""
    settings = _settings()
    db = _database(settings)
    started = local.up(settings, workers)
    counts = reap(settings, db, stale_after_s=settings.stale_heartbeat_s)
    from farm.jobs.sweep import sweep

    for folder in sweep(settings, db):   # what killed submits left behind
        err.print(f"swept: {folder.describe()}", highlight=False)
    requeued = sum(counts.values())
    err.print(f"local farm up ({', '.join(started) or 'already running'}); home {settings.home}"
              + (f"; {requeued} unfinished task(s) queued again" if requeued else ""))


@app.command()
def down() -> None:
    """Stop the local farm cleanly (workers, then the private Redis)."""
    stopped = local.down(_settings())
    err.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to the job database."""
    settings = _settings()
    rev = upgrade_schema(Database(settings.database))
    err.print(f"job database at revision {rev}")


from farm.cli.ops_commands import register as _register_ops

_register_ops(app)


from farm.cli.api_commands import register as _register_api

_register_api(app)


from farm.cli.verify_command import register as _register_verify

_register_verify(app)


from farm.cli.preview_command import register as _register_preview

_register_preview(app)


from farm.cli.faces_command import register as _register_faces

_register_faces(app)


def _command_path(root: Any, args: list[str]) -> str:
    """The command the arguments name ("farm submit", "farm models list"), for a usage error
    that click raised without its context."""
    path, command = ["farm"], root
    for arg in args:
        sub = getattr(command, "commands", {}).get(arg)
        if sub is None:
            if not arg.startswith("-"):
                break
            continue
        path.append(arg)
        command = sub
    return " ".join(path)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: map every FarmError to its message and exit code.

    With --json every outcome, not only a job's result, is one JSON object on stdout
    (farm.jobs.outcomes.outcome_json): CI parses stdout.
    """
    # Skip the interpreter's final garbage collection over everything SQLAlchemy, Redis,
    # Celery and PyAV imported (~0.4 s at every exit, e.g. after `submit --wait`): the
    # process is ending and the OS frees its memory; atexit handlers still run first.
    atexit.register(gc.freeze)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args[:args.index("--")] if "--" in args else "--json" in args

    def outcome(exit_code: int, error: str, hint: str | None, job_id: str | None = None) -> None:
        if as_json:
            print(json.dumps(outcome_json(exit_code, error, hint, job_id)))

    if "submit" in args:
        register_submit()
    if "preview" in args:
        _register_preview(app, faces=True)
    if "faces" in args:
        _register_faces(app, faces_options=True)
    root = plain_help(typer.main.get_command(app))
    try:
        rc = root(args=args, prog_name="farm", standalone_mode=False)
    except FarmError as exc:
        err.print(f"[red]farm: error:[/] {exc.message}", highlight=False)
        if exc.hint:
            err.print(f"  [dim]what to do:[/] {exc.hint}", highlight=False)
        outcome(exc.exit_code, exc.message, exc.hint, getattr(exc, "job_id", None))
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("farm: interrupted", highlight=False)
        outcome(EXIT_INTERRUPTED, "interrupted", None)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # click's usage errors (typer vendors click): exit 2
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            command = getattr(getattr(exc, "ctx", None), "command_path", None) or _command_path(root, args)
            outcome(EXIT_REFUSED, exc.format_message(), f"see `{command} --help`")
            sys.exit(EXIT_REFUSED)
        outcome(EXIT_FAILED, f"internal error: {type(exc).__name__}: {exc}",
                "this is a bug in farm: please report it with the traceback on stderr", getattr(exc, "job_id", None))
        raise
    sys.exit(rc if isinstance(rc, int) else 0)
