"""Sweep job folders that no job owns: what a submit killed mid-split left on storage.

`farm submit` writes storage/jobs/<id>/ (the ingested source, chunk inputs) before it
records the job; a submit killed in between (SIGKILL, a crashed node) leaves the folder
with no job row, and nothing else would ever remove it. A folder is swept only when
no job row has its name and nothing in it was written for `grace_s` seconds
(settings.orphan_grace_s), so the folder of a submit still running is never touched:
its files are being written. The reaper loop (every `farm worker`) and `farm up` run it.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from farm.config import Settings
from farm.state.db import Database, Job
from farm.storage import Storage

log = logging.getLogger("farm.jobs.sweep")


@dataclass
class SweptFolder:
    """A job folder removed by the sweep: where, its size (bytes) and its age (seconds)."""

    path: Path
    size_bytes: int
    idle_s: float

    def describe(self) -> str:
        return (f"removed {self.path} ({self.size_bytes / 1e6:.1f} MB): no job owns it and nothing in it "
                f"was written for {self.idle_s / 60:.0f} min (a submit that was killed?)")


def sweep(settings: Settings, db: Database) -> list[SweptFolder]:
    """sweep_orphans over the farm's storage/jobs with the configured grace time."""
    return sweep_orphans(Storage(settings.storage_dir).root / "jobs", db, settings.orphan_grace_s)


def sweep_orphans(jobs_dir: Path, db: Database, grace_s: float) -> list[SweptFolder]:
    """Remove the folders under `jobs_dir` (storage/jobs) that no job owns, idle for `grace_s` s.

    The folders are listed before the database is asked, so a job recorded meanwhile
    is either found there or has just written its files (too young to sweep).
    """
    try:
        folders = [p for p in jobs_dir.iterdir() if p.is_dir() and not p.is_symlink()]
    except FileNotFoundError:
        return []
    if not folders:
        return []
    names = [p.name for p in folders]
    with db.transaction() as s:
        owned = set(s.execute(select(Job.id).where(Job.id.in_(names))).scalars())
    swept = []
    now = time.time()
    for folder in folders:
        if folder.name in owned:
            continue
        newest, size = newest_write(folder)
        if now - newest < grace_s:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if folder.exists():
            log.warning("could not remove orphan job folder %s", folder)
            continue
        done = SweptFolder(folder, size, now - newest)
        log.warning("sweep: %s", done.describe())
        swept.append(done)
    return swept


def newest_write(folder: Path) -> tuple[float, int]:
    """(latest mtime of the folder and everything under it, in epoch seconds; total bytes of its files)."""
    newest = folder.lstat().st_mtime
    size = 0
    for root, dirs, files in os.walk(folder):
        for name, is_file in [(d, False) for d in dirs] + [(f, True) for f in files]:
            try:
                info = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            newest = max(newest, info.st_mtime)
            size += info.st_size if is_file else 0
    return newest, size
