"""Fetching model files over HTTP: download with resume, then install each checked file.

`fetch_models` tries every address a manifest entry lists, resuming a partial download
with an HTTP Range request and showing a rich progress bar; each file is then checked
and renamed into place by `farm.models.install`.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from farm import __version__
from farm.errors import ModelError
from farm.models.checks import CHUNK_BYTES, FileCheck
from farm.models.install import already_installed, install_file, partial_path, refuse_demo
from farm.models.inventory import ModelRow, model_row
from farm.models.manifest import ModelEntry
from farm.models.packs import PackLocation

log = logging.getLogger("farm.models")

DOWNLOAD_TIMEOUT_S = 60.0


def fetch_models(
    loc: PackLocation,
    names: Sequence[str] | None = None,
    *,
    progress: bool = True,
    include_optional: bool = False,
    timeout_s: float = DOWNLOAD_TIMEOUT_S,
) -> list[ModelRow]:
    """Download the named models (default: every required one) into the pack folder.

    Resumes a partial download (HTTP Range), shows a rich progress bar when `progress`,
    checks sha256 (or size + signature), then renames into place. Raises ModelError
    listing every model that failed, after trying all of them.
    """
    refuse_demo(loc, "fetch")
    loc.root.mkdir(parents=True, exist_ok=True)
    rows, failures = [], []
    with _progress_bar(progress) as bar:
        for entry in loc.manifest.select(names, include_optional=include_optional):
            try:
                check = already_installed(loc, entry) or _fetch_one(loc, entry, bar, timeout_s)
            except ModelError as exc:
                failures.append(str(exc))
                rows.append(model_row(entry, installed=False, verified=False, size=None,
                                      status=f"failed: {exc.message}"))
                continue
            rows.append(model_row(entry, installed=True, verified=True, size=(loc.root / entry.file).stat().st_size,
                                  status=check.status, warning=check.warning))
    if failures:
        raise ModelError("could not fetch every model: " + " | ".join(failures),
                         hint="run `farm models fetch` again to resume, or `farm models import DIR` from a folder")
    return rows


def _fetch_one(loc: PackLocation, entry: ModelEntry, bar: Any, timeout_s: float) -> FileCheck:
    if not entry.urls:
        raise ModelError(f"{entry.name} has no download address", hint="import it with `farm models import DIR`")
    part = partial_path(loc, entry)
    errors = []
    for url in entry.urls:
        try:
            download(url, part, expected_size=entry.size, bar=bar, label=entry.name, timeout_s=timeout_s)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url}: {exc}")
            log.warning("download of %s from %s failed: %s", entry.name, url, exc)
            continue
        return install_file(loc, entry, part)
    raise ModelError(f"{entry.name}: every address failed ({'; '.join(errors)})")


def download(url: str, part: Path, *, expected_size: int = 0, bar: Any = None, label: str = "",
             timeout_s: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Download `url` into `part`, resuming from its current length with an HTTP Range request."""
    have = part.stat().st_size if part.exists() else 0
    if expected_size and have > expected_size:
        part.unlink()
        have = 0
    if expected_size and have == expected_size:
        return
    headers = {"User-Agent": f"farm/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the partial file is already complete
            return
        raise
    with response:
        resumed = have > 0 and response.status == 206 and _range_start(response) == have
        if not resumed:
            have = 0
        length = int(response.headers.get("Content-Length") or 0)
        total = have + length if length else (expected_size or None)
        task = bar.add_task(label or part.name, total=total, completed=have) if bar is not None else None
        with open(part, "ab" if resumed else "wb") as out:
            for block in iter(lambda: response.read(CHUNK_BYTES), b""):
                out.write(block)
                if task is not None:
                    bar.advance(task, len(block))
            out.flush()
            os.fsync(out.fileno())
    if length and part.stat().st_size != have + length:
        raise OSError(f"connection closed early ({part.stat().st_size} of {have + length} bytes); fetch again to resume")


def _range_start(response: Any) -> int | None:
    value = response.headers.get("Content-Range", "")  # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn()) as bar:
        yield bar
