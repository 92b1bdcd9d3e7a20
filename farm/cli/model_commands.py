"""`farm models ...`: list, fetch, verify and import model packs (plain functions in farm.models)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from farm.config import load_settings
from farm.errors import EXIT_FAILED

models_app = typer.Typer(no_args_is_help=True, help="Model packs: list, fetch, verify, import.")
out = Console()
err = Console(stderr=True, soft_wrap=True)


def _location(pack: Optional[str]):  # noqa: ANN202
    from farm.models.packs import choose_pack, locate_pack

    settings = load_settings()
    return locate_pack(choose_pack(pack or settings.models), settings.models_path)


def _show(rows: list, as_json: bool) -> None:  # noqa: ANN001
    if as_json:
        print(json.dumps([r.as_dict() for r in rows]))
        return
    table = Table()
    for col in ("model", "role", "file", "installed", "verified", "size (MB)", "status"):
        table.add_column(col)
    for r in rows:
        size = f"{(r.size or r.expected_size) / 1e6:.1f}" if (r.size or r.expected_size) else "?"
        verified = {True: "yes", False: "NO", None: "-"}[r.verified]
        table.add_row(r.name, r.role, r.file, "yes" if r.installed else "no", verified, size,
                      r.status + (f" ({r.warning})" if r.warning else ""))
    out.print(table)


PACK_OPTION = typer.Option(None, "--models", help="default | demo | a directory with a manifest.toml")


@models_app.command("list")
def list_cmd(pack: Optional[str] = PACK_OPTION, as_json: bool = typer.Option(False, "--json")) -> None:
    """Installed? verified? size, for each model of the pack."""
    from farm.models.inventory import list_models

    _show(list_models(_location(pack)), as_json)


@models_app.command("verify")
def verify_cmd(names: list[str] = typer.Argument(None), pack: Optional[str] = PACK_OPTION,
               as_json: bool = typer.Option(False, "--json")) -> None:
    """Hash every installed file and check it against the manifest (exit 1 if one is bad)."""
    from farm.models.inventory import verify_pack

    loc = _location(pack)
    rows = verify_pack(loc, names or None)
    _show(rows, as_json)
    bad = [r for r in rows if r.installed and r.verified is False]
    for r in bad:
        err.print(f"farm: model file {loc.root / r.file} ({r.name}) failed verification: {r.status}",
                  highlight=False)
    if bad:
        if loc.is_demo:
            hint = f"delete {loc.root}; the demo pack is generated again on its next use"
        else:
            where = "" if loc.name == "default" else f" --models {loc.root}"
            fix = " ".join(r.name for r in bad)
            hint = (f"replace the file(s): `farm models fetch {fix}{where}`, or "
                    f"`farm models import DIR {fix}{where}` from a folder with good copies")
        err.print(f"  what to do: {hint}", highlight=False)
        raise typer.Exit(EXIT_FAILED)


@models_app.command("fetch")
def fetch_cmd(names: list[str] = typer.Argument(None), pack: Optional[str] = PACK_OPTION,
              include_optional: bool = typer.Option(False, "--all", help="Also the optional models.")) -> None:
    """Download (with resume), check sha256, install atomically."""
    from farm.models.fetch import fetch_models

    _show(fetch_models(_location(pack), names or None, progress=True, include_optional=include_optional), False)


@models_app.command("import")
def import_cmd(src: Path, names: list[str] = typer.Argument(None), pack: Optional[str] = PACK_OPTION) -> None:
    """Copy model files from a folder (air-gapped clusters) and verify them."""
    from farm.models.install import import_models

    _show(import_models(src, _location(pack), names or None), False)
