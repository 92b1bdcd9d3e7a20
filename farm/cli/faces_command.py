"""`farm faces VIDEO [--every SECONDS] [--threshold 0..1] [--out DIR]`: who is in a video
(farm.jobs.faces_survey), as a contact sheet, one reference crop per person and a table.

Its flags come from the survey's option table (farm.jobs.faces_survey.survey_options:
every, threshold, models and the detect stage's options). Prints the table (--json: one
object); writes the folder whole (farm.jobs.faces_output). A video with no face gives an
empty table, a sheet saying so, and a warning; exit codes as farm.errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

err = Console(stderr=True, soft_wrap=True)


def faces(
    video: Path = typer.Argument(..., help="The video (a local file; never modified)."),
    out_dir: Path | None = typer.Option(None, "--out", metavar="DIR",
                                        help="The folder to write (sheet.png, person-N.png, faces.json). "
                                             "Default <video name>.faces here."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier `farm faces` folder."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (the table, paths, options, "
                                                       "models) on stdout."),
    **options: Any,
) -> None:
    """Who is in a video: faces of sampled frames grouped into people.

    Writes a contact sheet (a row per person: crops, number, time on screen),
    a reference crop per person (person-N.png) and faces.json (mean embeddings, frame ranges).
    Same detector, recogniser and providers as the workers."""
    from farm.cli.flags import given_options
    from farm.config import load_settings
    from farm.jobs.faces_output import check_out_dir, table_json, write_folder
    from farm.jobs.faces_sheet import clock, sheet_png
    from farm.jobs.faces_survey import check_survey_options, run_survey, survey_options

    settings = load_settings()
    given = check_survey_options(given_options(options, survey_options()), "the command line", cli=True)
    out = check_out_dir(out_dir, video, overwrite)   # refused before any work, and nothing written
    with err.status("sampling frames", spinner="dots") as status:
        survey = run_survey(video, given, settings,
                            on_progress=lambda done, total: status.update(f"faces in frame {done} of {total} sampled"))
        sheet, data = sheet_png(survey)
        write_folder(out, survey, data, overwrite)
    if survey.warning:
        err.print(f"[yellow]warning:[/] {survey.warning}", highlight=False)
    if as_json:
        print(json.dumps(table_json(survey, sheet, out)))
        return
    print(f"{len(survey.people)} people in {survey.video.name} ({len(survey.samples)} frames sampled every "
          f"{survey.every_s:g} s); sheet {out / 'sheet.png'}")
    for person in survey.people:
        share = 100 * person.seconds / survey.duration_s if survey.duration_s > 0 else 0.0
        print(f"  {person.name}: {person.seconds:.1f} s on screen ({share:.0f}%), first at {clock(person.first_s)}, "
              f"{len(person.sightings)} sightings -> {out / (person.name + '.png')}")


def register(app: typer.Typer, faces_options: bool = False) -> None:
    """(Re)declare `farm faces` with a flag for each option it takes. faces_options=False
    leaves the detect stage's options out (reading them imports the face pipeline); main()
    declares them all when the command is `faces`."""
    from farm.cli.flags import with_table_options

    if faces_options:
        from farm.jobs.faces_survey import survey_options

        table = survey_options()
    else:
        from farm.jobs.faces_survey import SURVEY_OPTIONS
        from farm.options import SUBMIT_OPTIONS

        table = {**SURVEY_OPTIONS, "models": SUBMIT_OPTIONS["models"]}
    app.registered_commands[:] = [c for c in app.registered_commands if c.name != "faces"]
    app.command(name="faces")(with_table_options(faces, table))
