"""`farm preview VIDEO --source IMAGE [--frame N | --at SECONDS] [face options]`: one frame
rendered as a job would render it, without a job, written as a PNG (farm.jobs.preview).

Its flags are derived from the option table like `farm submit`'s (farm.cli.flags): every
face option, --source, --models and --consent; the job's encoder, queue and output
flags are not offered (a usage error, exit 2). Prints the PNG's path (--json: one object).
A frame with no face still gives the picture, with a warning; exit codes as farm.errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from farm.cli.flags import finite

err = Console(stderr=True, soft_wrap=True)


def preview(
    video: Path = typer.Argument(..., help="The video (a local file; never modified)."),
    frame: int | None = typer.Option(None, "--frame", metavar="N",
                                     help="The frame to preview, by index (0 is the first; default 0)."),
    at: float | None = typer.Option(None, "--at", metavar="SECONDS", callback=finite,
                                    help="The frame on screen at this time (s from the first frame)."),
    out_path: Path | None = typer.Option(None, "--out", metavar="PATH",
                                         help="The PNG to write. Default <video name>.preview.png here."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing PNG."),
    spec: Path | None = typer.Option(None, "--spec", metavar="FILE",
                                     help="A TOML job spec; flags given here override it, its job-only "
                                          "options (codec, priority, ...) are ignored."),
    open_: bool = typer.Option(False, "--open", help="Open the PNG in the desktop's image viewer too."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (path, frame, time, faces, "
                                                       "options, models) on stdout."),
    **options: Any,
) -> None:
    """One frame as a job renders it, without a job: before | after, as a PNG.

    Faces boxed and numbered on both halves, the options and models under them.
    Same stages, models, options and source identity as `farm submit`: what you preview is what you render.
    A frame with no face still writes the picture (a warning says so)."""
    from farm.cli.flags import given_options
    from farm.config import load_settings
    from farm.jobs.preview import (
        check_out,
        ignored_options,
        preview_options,
        render_preview,
        write_png,
    )
    from farm.jobs.preview_sheet import preview_json, render_sheet
    from farm.jobs.spec import (
        CLI,
        check_options,
        load_spec,
        option_origins,
        with_overrides,
    )

    settings = load_settings()
    given = check_options(given_options(options, preview_options()), "the command line", names=CLI)
    from_spec = load_spec(spec) if spec else {}
    ignored = ignored_options(from_spec)
    merged = with_overrides({k: v for k, v in from_spec.items() if k not in ignored}, given)
    out = check_out(out_path, video, overwrite)   # refused before any work, and nothing written
    with err.status("rendering the preview", spinner="dots"):
        result = render_preview(video, merged, settings, frame=frame, at=at, origins=option_origins(from_spec, given),
                                where=CLI, spec=spec, ignored=ignored)
        sheet, data = render_sheet(result)
        write_png(out, data, overwrite)
    if result.warning:
        err.print(f"[yellow]warning:[/] {result.warning}", highlight=False)
    if ignored:
        err.print(f"[dim]ignored from spec file {spec} (job-only): {', '.join(ignored)}[/]", highlight=False)
    if as_json:
        print(json.dumps(preview_json(result, sheet, str(out))))
    else:
        print(out)
    if open_:
        typer.launch(str(out))


def register(app: typer.Typer, faces: bool = False) -> None:
    """(Re)declare `farm preview` with a flag for each option it takes. faces=False leaves
    the face options out (reading them imports the face pipeline, ~0.5 s, which other
    commands should not wait for); main() declares them all when the command is `preview`."""
    from farm.cli.flags import with_table_options
    from farm.options import PREVIEW_JOB_OPTIONS, SUBMIT_OPTIONS

    if faces:
        from farm.jobs.preview import preview_options   # numpy and the face pipeline

        table = preview_options()
    else:
        table = {name: SUBMIT_OPTIONS[name] for name in PREVIEW_JOB_OPTIONS}
    app.registered_commands[:] = [c for c in app.registered_commands if c.name != "preview"]
    app.command(name="preview")(with_table_options(preview, table))
