"""`farm verify FILE`: read and validate a file's C2PA manifest (farm.provenance.check).

Exit 0 valid (nothing changed after signing), 1 invalid or tampered, 2 no manifest.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from farm.errors import InputError


def register(app: typer.Typer) -> None:
    @app.command()
    def verify(file: Path = typer.Argument(..., help="A video the farm made (or any MP4/MOV/AVI)."),
               as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object.")) -> None:
        """Check a file's signed C2PA manifest (exit 0 valid, 1 tampered, 2 none).

        Prints who made the file, with which models, from which job, and whether anything
        changed after signing (exit 1 also for an invalid manifest)."""
        from farm.config import load_settings
        from farm.provenance.check import report_lines, verify_file

        if not file.is_file():
            raise InputError(f"{file}: no such file" if not file.exists() else f"{file}: not a regular file",
                             hint="name the video file to verify")
        report = verify_file(file, farm_root(load_settings()))
        if as_json:
            print(json.dumps(report.as_json()))
        else:
            print("\n".join(report_lines(report)))
        raise typer.Exit(report.exit_code)


def farm_root(settings: object) -> bytes | None:
    """This farm's self-signed root certificate (a trust anchor for its own outputs), if it has one."""
    from farm.provenance.keys import ROOT_FILE, self_signed_dir

    try:
        return (self_signed_dir(settings) / ROOT_FILE).read_bytes()
    except OSError:
        return None
