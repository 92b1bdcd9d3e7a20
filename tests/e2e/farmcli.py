"""Run the real `farm` command as a subprocess against a private FARM_HOME."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

FARM = [sys.executable, "-m", "farm"]


def sigint_as_from_a_terminal() -> None:
    """preexec_fn for a child the test will Ctrl-C: SIGINT back to its default action. A
    shell starts background jobs (`pytest ... &`) with SIGINT ignored, children inherit
    that, and Python then installs no KeyboardInterrupt handler: the signal would be lost."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class FarmCLI:
    """`farm ...` with FARM_HOME set; `down()` stops the local farm it started."""

    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.env = dict(os.environ, FARM_HOME=str(home), PYTHONUNBUFFERED="1", **(extra_env or {}))
        self.env.pop("FARM_BROKER_URL", None) if not extra_env or "FARM_BROKER_URL" not in extra_env else None

    def run(self, *args: str, timeout_s: float = 300, check: bool = False) -> subprocess.CompletedProcess:
        proc = subprocess.run([*FARM, *args], env=self.env, capture_output=True, text=True, timeout=timeout_s)
        if check and proc.returncode != 0:
            raise AssertionError(f"farm {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def job(self, job_id: str) -> dict[str, Any]:
        rows = json.loads(self.run("jobs", "--json", check=True).stdout)
        return next(r for r in rows if r["id"] == job_id)

    def wait_state(self, job_id: str, states: set[str], timeout_s: float = 240) -> dict[str, Any]:
        """The CLI's record of the job once it is in one of `states`.

        The waiting reads the farm's SQLite file directly (a `farm jobs` process costs
        about a second of CPU, which a poll twice a second would take from the workers
        on a 2-core machine); the job returned is still the CLI's own JSON."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self._stored_state(job_id)
            if state is None or state in states:
                job = self.job(job_id)
                if job["state"] in states:
                    return job
            time.sleep(0.25 if state else 0.5)
        raise AssertionError(f"job {job_id} never reached {states}: {self.job(job_id)}\n{self.logs()}")

    def newest_job(self) -> dict[str, Any] | None:
        """{'id', 'state'} of the newest job, None while there is none (for polling loops:
        read from the store where it is the local SQLite file, else from `farm jobs`)."""
        if self._local_db() is None:
            rows = json.loads(self.run("jobs", "--json", check=True).stdout)
            return {"id": rows[0]["id"], "state": rows[0]["state"]} if rows else None
        rows = self._read("SELECT id, state FROM jobs ORDER BY created_at DESC LIMIT 1")
        return {"id": rows[0][0], "state": rows[0][1]} if rows else None

    def _stored_state(self, job_id: str) -> str | None:
        """The job's state in the local farm's SQLite store; None where the farm keeps its
        jobs elsewhere (FARM_DATABASE_URL) or the file cannot be read now."""
        rows = self._read("SELECT state FROM jobs WHERE id = ?", job_id) if self._local_db() else []
        return rows[0][0] if rows else None

    def _local_db(self) -> Path | None:
        db = self.home / "farm.db"
        return None if "FARM_DATABASE_URL" in self.env else db

    def _read(self, sql: str, *args: Any) -> list[tuple]:
        """Rows of a read-only query of the local store ([] before it exists or while locked)."""
        db = self._local_db()
        if db is None or not db.exists():
            return []
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            try:
                return conn.execute(sql, args).fetchall()
            finally:
                conn.close()
        except sqlite3.Error:
            return []

    def logs(self) -> str:
        log = self.home / "logs" / "workers.log"
        return log.read_text()[-6000:] if log.exists() else "(no worker log)"

    def down(self) -> None:
        """`farm down`, where this home has a local farm to stop (a pid file: the private
        Redis or the workers); a test that was refused before any start pays no process."""
        if any((self.home / "run").glob("*.pid")):
            self.run("down", timeout_s=120)


def hold_workers(cli: FarmCLI, tries: int = 100) -> list:
    """Suspend (SIGSTOP) the local farm's worker processes at a moment when none holds the
    job database's write lock: a worker frozen inside a write would lock every other
    process out (`farm cancel` then fails with 'database is locked'). Resume them with
    proc.resume()."""
    import psutil

    from farm.broker.embedded import workers_running
    from farm.config import load_settings

    for _ in range(tries):
        pid = workers_running(load_settings(cli.env))
        assert pid, "the local farm's workers are not running"
        held = psutil.Process(pid).children(recursive=True)
        for proc in held:
            proc.suspend()
        if not write_locked(cli.home / "farm.db"):
            return held
        for proc in held:
            proc.resume()
        time.sleep(0.02)
    raise AssertionError("a worker held the job database's write lock at every try")


def wait_signal_pending(held: list, sig: int, timeout_s: float = 60) -> None:
    """Wait until `sig` is pending on each held (suspended) process that is a direct child
    of an unheld one (the supervisor's workers): proof that a `farm down` or `kill` has
    reached them, whatever the time it took to start on a loaded machine."""
    ids = {proc.pid for proc in held}
    targets = [proc for proc in held if proc.ppid() not in ids]
    bit = 1 << (sig - 1)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(_pending(proc.pid) & bit for proc in targets):
            return
        time.sleep(0.05)
    raise AssertionError(f"signal {sig} did not reach the held workers in {timeout_s} s")


def _pending(pid: int) -> int:
    """The signals pending on a process (thread and shared masks), from /proc."""
    mask = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")):
            mask |= int(line.split()[1], 16)
    return mask


def write_locked(db: Path) -> bool:
    """True when another connection holds the SQLite file's write lock now."""
    conn = sqlite3.connect(db, timeout=0.2)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.rollback()
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()
