"""Operations commands: `farm flower`, `farm metrics`, `farm health` (added to the main app)."""

from __future__ import annotations

import math
import socket
import urllib.error
import urllib.request

import typer
from rich.console import Console

from farm.config import load_settings
from farm.errors import EXIT_OK, EXIT_UNAVAILABLE
from farm.state.db import Database, upgrade_schema

err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add the operations commands to the `farm` Typer app."""

    @app.command("flower")
    def flower_cmd(
        port: int = typer.Option(5555, "--port", help="Port to listen on."),
        address: str = typer.Option("127.0.0.1", "--address", help="Address to bind (0.0.0.0: every interface)."),
        insecure: bool = typer.Option(False, "--insecure", help="Run without credentials (pages open to anyone)."),
    ) -> None:
        """Run Flower on the farm's broker (basic auth from FARM_FLOWER_USER / FARM_FLOWER_PASSWORD)."""
        from farm.broker import embedded as local
        from farm.monitor.flower import exec_flower, flower_command

        settings = load_settings()
        command = flower_command(settings, port=port, address=address, insecure=insecure)
        if settings.embedded_broker:
            local.start_redis(settings)
        who = f"basic auth as {settings.flower_user}" if command.authenticated else "[yellow]no authentication[/]"
        err.print(f"Flower on http://{address}:{port} ({who}); state in {command.state_file}", highlight=False)
        exec_flower(command)

    @app.command("metrics")
    def metrics_cmd(
        port: int = typer.Option(9750, "--port", help="Port to listen on."),
        address: str = typer.Option("127.0.0.1", "--address", help="Address to bind (0.0.0.0: every interface)."),
    ) -> None:
        """Serve Prometheus metrics (jobs, chunks, workers, queue depth) at /metrics."""
        import uvicorn

        from farm.monitor.metrics import metrics_app

        settings = load_settings()
        db = Database(settings.database)
        upgrade_schema(db)
        err.print(f"farm metrics on http://{address}:{port}/metrics", highlight=False)
        uvicorn.run(metrics_app(settings, db), host=address, port=port, log_level="warning", access_log=False)

    @app.command("health")
    def health_cmd(
        url: str = typer.Option(None, "--url", help="An HTTP endpoint that must answer 200."),
        workers: bool = typer.Option(False, "--workers", help="A chunk worker of this host answers a Celery ping."),
        timeout_s: float = typer.Option(5.0, "--timeout", callback=_positive_seconds, help="Seconds to wait."),
    ) -> None:
        """Container health check: exit 0 when healthy, 4 when not (no shell, no curl needed)."""
        if not url and not workers:
            raise typer.BadParameter("give --url and/or --workers")
        if url and not _http_ok(url, timeout_s):
            err.print(f"unhealthy: {url} did not answer 200")
            raise typer.Exit(EXIT_UNAVAILABLE)
        if workers and not _local_workers_answer(timeout_s):
            err.print(f"unhealthy: no chunk worker of {socket.gethostname()} answered a ping")
            raise typer.Exit(EXIT_UNAVAILABLE)
        raise typer.Exit(EXIT_OK)


def _positive_seconds(value: float) -> float:
    """--timeout: a finite number of seconds above 0 (nan or 0 would never wait or never end)."""
    if not math.isfinite(value) or value <= 0:
        raise typer.BadParameter(f"{value} is not a number of seconds above 0")
    return value


def _http_ok(url: str, timeout_s: float) -> bool:
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter("--url must be http:// or https://")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - scheme checked above
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _local_workers_answer(timeout_s: float) -> bool:
    """True if a chunk worker (gpu<i>@ or cpu<i>@ this host) answers a broadcast ping."""
    from farm.broker.celery_app import create_app

    host = socket.gethostname()
    replies = create_app(load_settings()).control.ping(timeout=timeout_s) or []
    names = [name for reply in replies for name in reply]
    return any(n.endswith(f"@{host}") and n.startswith(("gpu", "cpu")) for n in names)
