"""Run the real `farm` command as a subprocess against a private FARM_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

FARM = [sys.executable, "-m", "farm"]


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
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["state"] in states:
                return job
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} never reached {states}: {self.job(job_id)}\n{self.logs()}")

    def logs(self) -> str:
        log = self.home / "logs" / "workers.log"
        return log.read_text()[-6000:] if log.exists() else "(no worker log)"

    def down(self) -> None:
        self.run("down", timeout_s=120)
