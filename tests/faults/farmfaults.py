"""Helpers for fault-injection tests: find the process running a chunk, read the job store."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any


def query(home: Path, sql: str, *args: Any) -> list[tuple]:
    conn = sqlite3.connect(home / "farm.db", timeout=30)   # `with conn` would not close it
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def chunks(home: Path, job_id: str) -> list[tuple[int, str, int, int, str | None]]:
    """(index, state, attempts, frames_done, worker) per chunk."""
    return query(home, 'SELECT "index", state, attempts, frames_done, worker FROM chunks WHERE job_id=? '
                       'ORDER BY "index"', job_id)


def busy_worker(home: Path, job_id: str, index: int | None = None, min_frames: int = 1,
                timeout_s: float = 120) -> tuple[int, int, str]:
    """Wait until a chunk of the job is being worked on; return (chunk index, pool pid, hostname)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = query(home, 'SELECT c."index", w.pid, w.hostname FROM chunks c JOIN workers w '
                           'ON w.job_id = c.job_id AND w.chunk_index = c."index" '
                           "WHERE c.job_id=? AND c.state='running' AND c.frames_done >= ? AND w.state='busy'",
                     job_id, min_frames)
        rows = [r for r in rows if index is None or r[0] == index]
        if rows:
            return rows[0]
        time.sleep(0.05)
    raise AssertionError(f"no chunk of job {job_id} started: {chunks(home, job_id)}")


def events(home: Path, job_id: str, kind: str) -> int:
    return query(home, "SELECT count(*) FROM events WHERE job_id=? AND kind=?", job_id, kind)[0][0]


def first_job(cli: Any, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        newest = cli.newest_job()
        if newest:
            return newest["id"]
        time.sleep(0.2)
    raise AssertionError("no job appeared")
