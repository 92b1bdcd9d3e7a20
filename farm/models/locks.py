"""A file lock (fcntl) shared by processes on one host, so concurrent installers or builders
of a model pack do the work once; readers never take it (they see the old pack or the new)."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def lock_path_for(folder: Path) -> Path:
    """The lock file of a pack folder: a hidden file beside it (it survives the folder's swap)."""
    return folder.parent / f".{folder.name}.lock"


@contextmanager
def pack_lock(folder: str | Path) -> Iterator[None]:
    """Hold the exclusive lock of `folder`'s pack (blocks until free; released on exit, also
    when the process dies)."""
    path = lock_path_for(Path(folder))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
