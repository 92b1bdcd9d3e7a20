"""`farm flower`: Flower on the farm's broker, with basic auth and persistent state.

The command line is built by pure functions (`flower_argv`, `flower_env`) and run with
an argument list; the credentials travel in the environment (FLOWER_BASIC_AUTH), never
in argv, so they do not show in `ps`, and Flower never logs them.

Which job and chunk a task belongs to: the chunk task is `farm.process_chunk(job_id,
index)` and the finalize task `farm.finalize_job(job_id)`, so the task arguments say it.
Flower shows them on every task page and in `/api/tasks` (`"args": "['<job>', 3]"`), and
`farm flower` adds an `args` column to the task list (`--tasks_columns`).

State (tasks and workers seen) is a shelve file under FARM_HOME/flower, saved every
`STATE_SAVE_INTERVAL_MS` and on a clean shutdown (SIGTERM), and read again at start.
`/metrics` (Prometheus) and `/healthcheck` answer without credentials (Flower's own
choice); every page and the REST API need them. With `--insecure` and no credentials
the pages are open and Flower keeps its REST API switched off.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from farm.config import Settings
from farm.errors import ConfigError

DEFAULT_PORT = 5555
DEFAULT_ADDRESS = "127.0.0.1"
STATE_SAVE_INTERVAL_MS = 60_000     # a crash loses at most this much of Flower's history
TASKS_COLUMNS = "name,uuid,state,args,received,started,runtime,worker"
AUTH_ENV = "FLOWER_BASIC_AUTH"


@dataclass(frozen=True)
class FlowerCommand:
    """What to run: argv (no secrets) and the full environment (with them)."""

    argv: list[str]
    env: dict[str, str]
    state_file: Path
    authenticated: bool


def state_file(settings: Settings) -> Path:
    """Flower's shelve file (dbm may add a suffix such as .db)."""
    return settings.home / "flower" / "flower-state"


def basic_auth(settings: Settings) -> str | None:
    """`user:password` from Settings, or None when either is missing."""
    user, password = settings.flower_user, settings.flower_password
    if not user or not password:
        return None
    if ":" in user or "," in user or "," in password:
        # Flower splits FLOWER_BASIC_AUTH on ',' and basic auth splits user from password on ':'
        raise ConfigError("the Flower user must not contain ':' or ',', nor the password ','",
                          hint="choose other FARM_FLOWER_USER / FARM_FLOWER_PASSWORD values")
    return f"{user}:{password}"


def flower_argv(settings: Settings, port: int = DEFAULT_PORT, address: str = DEFAULT_ADDRESS) -> list[str]:
    """Flower's options (tornado style); never contains a secret."""
    return [
        f"--port={port}",
        f"--address={address}",
        "--persistent=True",
        f"--db={state_file(settings)}",
        f"--state_save_interval={STATE_SAVE_INTERVAL_MS}",
        f"--tasks_columns={TASKS_COLUMNS}",
    ]


OPEN_API_ENV = "FLOWER_UNAUTHENTICATED_API"


def flower_env(settings: Settings, base: Mapping[str, str], insecure: bool = False) -> dict[str, str]:
    """The environment of the Flower process: the base without FLOWER_BASIC_AUTH, plus the credentials."""
    auth = basic_auth(settings)
    if auth is None and not insecure:
        raise ConfigError("Flower needs credentials: set FARM_FLOWER_USER and FARM_FLOWER_PASSWORD "
                          "(or flower_user/flower_password in farm.toml)",
                          hint="or pass --insecure to run it without authentication on a trusted host")
    env = {k: v for k, v in base.items() if k not in (AUTH_ENV, OPEN_API_ENV)}
    if auth is not None:
        env[AUTH_ENV] = auth
    elif insecure:
        env[OPEN_API_ENV] = "true"     # Flower keeps its REST API shut without auth unless told
    env["FARM_HOME"] = str(settings.home)
    return env


def flower_command(settings: Settings, port: int = DEFAULT_PORT, address: str = DEFAULT_ADDRESS,
                   insecure: bool = False, base_env: Mapping[str, str] | None = None) -> FlowerCommand:
    env = flower_env(settings, os.environ if base_env is None else base_env, insecure)
    argv = [sys.executable, "-m", "farm.monitor.flower", *flower_argv(settings, port, address)]
    return FlowerCommand(argv, env, state_file(settings), AUTH_ENV in env)


def exec_flower(command: FlowerCommand) -> None:
    """Replace this process with Flower (signals then reach Flower itself, which saves its state)."""
    command.state_file.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(command.state_file.parent, 0o700)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command.argv[0], command.argv, command.env)


def main(argv: list[str] | None = None) -> int:
    """Flower inside the farm's Celery app (broker URL and transport options from Settings)."""
    from farm.broker.celery_app import create_app
    from farm.config import load_settings

    settings = load_settings()
    app = create_app(settings)
    args = list(sys.argv[1:] if argv is None else argv)
    return app.start(["flower", *args]) or 0


if __name__ == "__main__":
    sys.exit(main())
