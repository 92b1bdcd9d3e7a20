"""The shared-storage layout, ingest of the user's file, and atomic writes.

    <storage>/jobs/<id>/source.<ext>          the ingested input (never the user's file)
    <storage>/jobs/<id>/chunks/in/<n>.<ext>   stream-copied chunk inputs
    <storage>/jobs/<id>/chunks/out/<n>.<ext>  encoded chunk outputs
    <storage>/jobs/<id>/output.<ext>          the joined, verified result before publishing

Files are written under a temporary name in the same folder and renamed, so a
reader never sees a half-written file.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import uuid
from pathlib import Path

from farm.errors import FarmError, InputError

COPY_BLOCK_BYTES = 8 * 1024 * 1024
FICLONE = 0x40049409  # linux/fs.h: reflink a whole file


class Storage:
    """Paths of one farm's shared storage, confined under its root."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def job_dir(self, job_id: str) -> Path:
        return self.confine(self.root / "jobs" / job_id)

    def source(self, job_id: str, ext: str) -> Path:
        return self.job_dir(job_id) / f"source{ext}"

    def chunk_in(self, job_id: str, index: int, ext: str) -> Path:
        return self.job_dir(job_id) / "chunks" / "in" / f"{index:05d}{ext}"

    def chunk_out(self, job_id: str, index: int, ext: str) -> Path:
        return self.job_dir(job_id) / "chunks" / "out" / f"{index:05d}{ext}"

    def output(self, job_id: str, ext: str) -> Path:
        return self.job_dir(job_id) / f"output{ext}"

    def identity(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "identity.npz"

    def confine(self, path: Path) -> Path:
        """Resolve `path` (symlinks too) and refuse anything outside the storage root."""
        resolved = Path(os.path.realpath(path))
        root = Path(os.path.realpath(self.root))
        if resolved != root and root not in resolved.parents:
            raise InputError(f"path {path} is outside the farm's storage {root}")
        return resolved

    def remove_job(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def remove_chunks(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id) / "chunks", ignore_errors=True)


def temp_name(final: Path) -> Path:
    """A unique temporary name beside `final` (same folder, so rename is atomic)."""
    return final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")


def ingest(src: Path, dest: Path) -> str:
    """Put the user's file at `dest` without modifying it: hard link, reflink, or verified copy.

    Returns how it was done ("link", "reflink" or "copy").
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(dest)
    try:
        try:
            os.link(src, tmp)
            how = "link"
        except OSError:
            how = _reflink_or_copy(src, tmp)
        os.replace(tmp, dest)
        return how
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _storage_error(exc, f"cannot ingest {src} into {dest.parent}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _reflink_or_copy(src: Path, tmp: Path) -> str:
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
            return "reflink"
        except OSError:
            pass
        digest_in = hashlib.sha256()
        while block := fin.read(COPY_BLOCK_BYTES):
            digest_in.update(block)
            fout.write(block)
        fout.flush()
        os.fsync(fout.fileno())
    if sha256_file(tmp) != digest_in.hexdigest():
        raise OSError(errno.EIO, f"copy of {src} does not match its checksum")
    return "copy"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(COPY_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def publish(src: Path, final: Path, *, overwrite: bool) -> None:
    """Move a finished file to `final` atomically; never clobber unless `overwrite`.

    `src` may be on another filesystem: it is copied to a temporary name beside
    `final` first, so the visible rename is always atomic.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(final)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, final)
        else:
            os.link(tmp, final)  # fails with EEXIST instead of replacing
    except FileExistsError:
        raise FarmError(f"output {final} appeared while the job ran; nothing was overwritten",
                        hint="pass --overwrite, or choose another --output, then `farm retry`") from None
    except OSError as exc:
        raise _storage_error(exc, f"cannot publish the output to {final}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _storage_error(exc: OSError, what: str) -> FarmError:
    if exc.errno == errno.ENOSPC:
        return FarmError(f"{what}: no space left on device", hint="free space on the storage, then `farm retry`")
    return FarmError(f"{what}: {exc.strerror or exc}")
