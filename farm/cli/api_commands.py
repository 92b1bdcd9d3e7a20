"""`farm api` (the HTTP API for CI) and `farm tokens create|list|revoke` (its bearer tokens)."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from farm.config import Settings, load_settings
from farm.state.db import Database, upgrade_schema

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8750

tokens_app = typer.Typer(no_args_is_help=True, help="Bearer tokens of the HTTP API.")
err = Console(stderr=True)
out = Console()


def _database(settings: Settings) -> Database:
    db = Database(settings.database)
    upgrade_schema(db)
    return db


def api(host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to listen on (loopback by default)."),
        port: int = typer.Option(DEFAULT_PORT, "--port", help="TCP port."),
        max_upload_bytes: Optional[int] = typer.Option(None, "--max-upload-bytes", min=1,
                                                       help="Largest request body (default: FARM_MAX_INPUT_BYTES)."),
        log_level: str = typer.Option("info", "--log-level", help="uvicorn log level.")) -> None:
    """Serve the HTTP API for CI (jobs, uploads, downloads; bearer tokens)."""
    import uvicorn

    from farm.api import create_app
    from farm.broker import embedded as local

    settings = load_settings()
    db = _database(settings)
    if settings.embedded_broker:
        started = local.up(settings)
        if started:
            err.print(f"[dim]started the local farm: {', '.join(started)} (stop it with `farm down`)[/]")
    if host not in ("127.0.0.1", "::1", "localhost"):
        err.print(f"[yellow]serving on {host} without TLS: put a TLS proxy in front of it[/]")
    app = create_app(settings, db, max_upload_bytes=max_upload_bytes)
    uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False, proxy_headers=False)


@tokens_app.command("create")
def tokens_create(name: str = typer.Argument(..., help="A name for the token (e.g. the CI project).")) -> None:
    """Make a token; it is printed once, on stdout, and only its hash is kept."""
    from farm.state.tokens import create_token

    token = create_token(_database(load_settings()), name)
    print(token)
    err.print(f"token {name!r} created; it is shown only this once: keep it in your CI's secret store")


@tokens_app.command("list")
def tokens_list(as_json: bool = typer.Option(False, "--json", help="One JSON array on stdout.")) -> None:
    """List the tokens (names and dates; never the tokens themselves)."""
    from farm.state.tokens import list_tokens

    rows = list_tokens(_database(load_settings()))
    if as_json:
        iso = lambda t: t.isoformat() + "Z" if t else None  # noqa: E731
        print(json.dumps([{"name": r.name, "created_at": iso(r.created_at), "last_used_at": iso(r.last_used_at),
                           "revoked_at": iso(r.revoked_at), "active": r.active} for r in rows]))
        return
    table = Table(title="api tokens")
    for col in ("name", "created", "last used", "state"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.name, f"{r.created_at:%Y-%m-%d %H:%M}",
                      f"{r.last_used_at:%Y-%m-%d %H:%M}" if r.last_used_at else "-",
                      "active" if r.active else f"[red]revoked {r.revoked_at:%Y-%m-%d %H:%M}[/]")
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(name: str = typer.Argument(..., help="The token's name.")) -> None:
    """Revoke a token: the API refuses it from now on."""
    from farm.state.tokens import revoke_token

    revoke_token(_database(load_settings()), name)
    err.print(f"token {name!r} revoked")


def register(app: typer.Typer) -> None:
    """Add `farm api` and `farm tokens ...` to the farm command."""
    app.command("api")(api)
    app.add_typer(tokens_app, name="tokens")
