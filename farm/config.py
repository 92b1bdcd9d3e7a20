"""One Settings object, read once (defaults < TOML file < environment) and passed explicitly.

With nothing configured the farm is "embedded": everything lives under FARM_HOME
(default ~/.farm): a SQLite job database, a storage folder, and a private Redis on a
unix socket that the farm starts itself.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

from farm.errors import ConfigError

DEFAULT_HOME = Path("~/.farm")
CONFIG_FILE_NAME = "farm.toml"

# setting name -> environment variable
ENV_VARS = {
    "home": "FARM_HOME",
    "broker_url": "FARM_BROKER_URL",
    "database_url": "FARM_DATABASE_URL",
    "storage": "FARM_STORAGE",
    "models_dir": "FARM_MODELS_DIR",
    "models": "FARM_MODELS",
    "providers": "FARM_PROVIDERS",
    "chunk_seconds": "FARM_CHUNK_SECONDS",
    "max_attempts": "FARM_MAX_ATTEMPTS",
    "chunk_time_limit_s": "FARM_CHUNK_TIME_LIMIT_S",
    "local_workers": "FARM_LOCAL_WORKERS",
    "job_window": "FARM_JOB_WINDOW",
    "stale_heartbeat_s": "FARM_STALE_HEARTBEAT_S",
    "reap_interval_s": "FARM_REAP_INTERVAL_S",
    "max_worker_failures": "FARM_MAX_WORKER_FAILURES",
    "broker_down_s": "FARM_BROKER_DOWN_S",
    "disabled_encoders": "FARM_DISABLED_ENCODERS",
    "orphan_grace_s": "FARM_ORPHAN_GRACE_S",
    "flower_user": "FARM_FLOWER_USER",
    "flower_password": "FARM_FLOWER_PASSWORD",
    "max_width": "FARM_MAX_WIDTH",
    "max_height": "FARM_MAX_HEIGHT",
    "max_frames": "FARM_MAX_FRAMES",
    "max_input_bytes": "FARM_MAX_INPUT_BYTES",
    "max_image_side": "FARM_MAX_IMAGE_SIDE",
    "max_image_bytes": "FARM_MAX_IMAGE_BYTES",
    "require_consent": "FARM_REQUIRE_CONSENT",
    "c2pa_key": "FARM_C2PA_KEY",
    "c2pa_cert": "FARM_C2PA_CERT",
}


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Paths are absolute once loaded."""

    home: Path = DEFAULT_HOME
    broker_url: str | None = field(default=None, repr=False)    # None: the embedded Redis under home/run
    database_url: str | None = field(default=None, repr=False)  # None: sqlite under home
    storage: Path | None = None            # None: home/storage
    models_dir: Path | None = None         # None: home/models
    models: str = "default"                # model pack: default | demo | a directory
    providers: str = "auto"                # auto | comma list of tensorrt,cuda,cpu
    chunk_seconds: float | None = None     # target chunk length (s); None: from resolution and fps
    max_attempts: int = 3                  # per chunk, counted in the database
    chunk_time_limit_s: int = 1800         # hard time limit of one chunk task
    local_workers: int = 1                 # worker processes of the embedded farm
    job_window: int = 16                   # chunks of one job waiting in the broker at once (fair sharing)
    stale_heartbeat_s: float = 120.0       # a running chunk silent this long goes to another worker
    reap_interval_s: float = 30.0          # how often each node looks for work the broker lost
    max_worker_failures: int = 5           # chunks failed in a row before a worker stops taking work
    broker_down_s: float = 30.0            # `--wait` gives up (exit 4) on a broker silent this long
    disabled_encoders: str = ""            # video encoders this worker must not use, e.g. "h264_nvenc,hevc_nvenc"
    orphan_grace_s: float = 3600.0         # a job folder no job owns, untouched this long, is swept (farm.jobs.sweep)
    flower_user: str | None = None
    flower_password: str | None = field(default=None, repr=False)
    max_width: int = 8192                  # input limits (pixels, frames, bytes)
    max_height: int = 8192
    max_frames: int = 500_000
    max_input_bytes: int = 200 * 1024**3
    max_image_side: int = 8192             # source/reference images: pixels a side, read from the header
    max_image_bytes: int = 50 * 1024**2    # ...and bytes, checked before decoding (and per uploaded image)
    require_consent: bool = False          # submit refuses a job without --consent (exit 2)
    c2pa_key: Path | None = None           # PEM private key signing outputs' C2PA manifests; None: self-signed
    c2pa_cert: Path | None = None          # its PEM certificate chain (leaf first); both or neither
    config_file: Path | None = None

    # ---- derived -------------------------------------------------------------
    @property
    def embedded_broker(self) -> bool:
        return self.broker_url is None

    @property
    def run_dir(self) -> Path:
        """Pid files, the embedded Redis socket and its data (home/run)."""
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def redis_socket(self) -> Path:
        return self.run_dir / "redis.sock"

    @property
    def broker(self) -> str:
        """The broker URL workers and clients use."""
        return self.broker_url or f"redis+socket://{self.redis_socket}"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'farm.db'}"

    @property
    def storage_dir(self) -> Path:
        return self.storage or self.home / "storage"

    @property
    def models_path(self) -> Path:
        return self.models_dir or self.home / "models"

    @property
    def visibility_timeout_s(self) -> int:
        """Redis redelivers an unacked task after this; must exceed the chunk time limit."""
        return self.chunk_time_limit_s * 2 + 600

    @property
    def broker_shown(self) -> str:
        """The broker URL with its password masked, for messages and logs."""
        return redact_url(self.broker)

    @property
    def database_shown(self) -> str:
        """The database URL with its password masked, for messages and logs."""
        return redact_url(self.database)


def redact_url(url: str) -> str:
    """`scheme://user:***@host/...`: the URL without its password (secrets never reach a log)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _origin(name: str, config_path: Path | None) -> str:
    """Where a setting came from, for messages: 'FARM_X' or 'x in /path/farm.toml'."""
    return f"{name} in {config_path}" if config_path else ENV_VARS[name]


def _coerce(name: str, raw: Any, origin: str | None = None) -> Any:
    """`raw` as the setting's type; ConfigError naming `origin` (the variable or the file's
    key) when it is not one: floats must be finite (nan and inf are refused)."""
    kind = str({f.name: f.type for f in fields(Settings)}[name])
    what = "a finite number (nan and inf are refused)" if "float" in kind else "a whole number"
    bad = ConfigError(f"{origin or name} = {raw!r} is invalid: {name} must be {what}",
                      hint=f"fix {origin or name}, or remove it to use the default")
    if kind == "bool":
        text = str(raw).strip().lower()
        if isinstance(raw, bool) or text in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return raw if isinstance(raw, bool) else text in ("1", "true", "yes", "on")
        raise ConfigError(f"{origin or name} = {raw!r} is invalid: {name} must be true or false",
                          hint=f"fix {origin or name}, or remove it to use the default")
    try:
        if "Path" in kind:
            return Path(str(raw)).expanduser().absolute() if raw not in (None, "") else None
        if "int" in kind and "float" not in kind:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise bad
            return int(raw)
        if "float" in kind:
            if isinstance(raw, bool) or not math.isfinite(value := float(raw)):
                raise bad
            return value
    except (TypeError, ValueError, OverflowError):
        raise bad from None
    return None if raw == "" else str(raw)


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read defaults, then the TOML file (FARM_CONFIG or FARM_HOME/farm.toml), then env."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}   # setting -> where its value came from, for messages
    home = Path(env.get("FARM_HOME") or DEFAULT_HOME).expanduser().absolute()
    config_path = Path(env["FARM_CONFIG"]).expanduser() if env.get("FARM_CONFIG") else home / CONFIG_FILE_NAME
    if env.get("FARM_CONFIG") and not config_path.is_file():
        raise ConfigError(f"config file {config_path} (FARM_CONFIG) does not exist")
    if config_path.is_file():
        try:
            data = tomllib.loads(config_path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {config_path}: {exc}") from None
        section = data.get("farm", data)
        for key, raw in section.items():
            if key not in ENV_VARS:
                raise ConfigError(f"unknown setting {key!r} in {config_path}",
                                  hint=f"known settings: {', '.join(sorted(ENV_VARS))}")
            values[key] = _coerce(key, raw, _origin(key, config_path))
            origins[key] = _origin(key, config_path)
        values["config_file"] = config_path
    for key, var in ENV_VARS.items():
        if var in env and env[var] != "":
            values[key] = _coerce(key, env[var], var)
            origins[key] = var
    values.update({k: v for k, v in overrides.items() if v is not None})
    values.setdefault("home", home)
    settings = Settings(**values)
    _check_ranges(settings, origins)
    return settings


def _check_ranges(settings: Settings, origins: Mapping[str, str]) -> None:
    """ConfigError naming where a value out of its range came from (variable or file key)."""
    from farm.options import SUBMIT_OPTIONS  # the one declaration of the chunk length's range

    lo_s, hi_s = SUBMIT_OPTIONS["chunk_seconds"].minimum, SUBMIT_OPTIONS["chunk_seconds"].maximum
    checks = [("max_attempts", settings.max_attempts >= 1, "at least 1"),
              ("job_window", settings.job_window >= 1, "at least 1"),
              ("max_image_side", settings.max_image_side >= 1, "at least 1 (pixels)"),
              ("max_image_bytes", settings.max_image_bytes >= 1, "at least 1 (bytes)"),
              ("chunk_seconds", settings.chunk_seconds is None or lo_s <= settings.chunk_seconds <= hi_s,
               f"between {lo_s} and {hi_s} (seconds)")]
    for name, ok, rule in checks:
        if not ok:
            where = origins.get(name, name)
            raise ConfigError(f"{where} = {getattr(settings, name)!r} is invalid: {name} must be {rule}",
                              hint=f"fix {where}, or remove it to use the default")
