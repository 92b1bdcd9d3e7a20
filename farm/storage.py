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

from farm.errors import FarmError, InputError, UnavailableError

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

    The copy (when `src` is on another filesystem and cannot be reflinked) streams in
    COPY_BLOCK_BYTES blocks and is read back and compared by sha256; a mismatch raises
    UnavailableError and leaves nothing at `dest`. Returns "link", "reflink" or "copy".
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
        raise UnavailableError(f"the copy of {src} on the storage ({tmp.parent}) does not match the original's "
                               f"sha256 checksum; nothing was stored and {src} was not modified",
                               hint="the storage may be failing: check it (free space, disk errors), then submit again")
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
    staged = stage_for_publish(src, final)
    try:
        commit_publish(staged, final, overwrite=overwrite)
    finally:
        staged.unlink(missing_ok=True)


def stage_for_publish(src: Path, final: Path) -> Path:
    """Put `src` under a hidden temporary name beside `final` and return that name.

    The slow half of publishing: a hard link, or a copy (fsynced) when `src` is on
    another filesystem. The caller removes the returned file if it does not commit it.
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
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _storage_error(exc, f"cannot copy the output to {final.parent}") from None
    return tmp


def commit_publish(staged: Path, final: Path, *, overwrite: bool) -> None:
    """Make a staged file (stage_for_publish) visible at `final` in one atomic step.

    With `overwrite` it is renamed over `final`; without, it is linked to `final`, which
    fails if `final` exists (FarmError; nothing is overwritten). Quick: no data is copied.
    """
    try:
        if overwrite:
            os.replace(staged, final)
        else:
            os.link(staged, final)  # fails with EEXIST instead of replacing
    except FileExistsError:
        raise FarmError(f"output {final} appeared while the job ran; nothing was overwritten",
                        hint="pass --overwrite, or choose another --output, then `farm retry`") from None
    except OSError as exc:
        raise _storage_error(exc, f"cannot publish the output to {final}") from None


def _storage_error(exc: OSError, what: str) -> FarmError:
    if exc.errno == errno.ENOSPC:
        return FarmError(f"{what}: no space left on device", hint="free space on the storage, then `farm retry`")
    return FarmError(f"{what}: {exc.strerror or exc}")
