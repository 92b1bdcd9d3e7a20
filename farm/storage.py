"""The shared-storage layout, ingest of the user's file, and atomic writes.

    <storage>/jobs/<id>/source.<ext>          the ingested input (never the user's file)
    <storage>/jobs/<id>/chunks/in/<n>.<ext>   stream-copied chunk inputs (only for containers
                                              not read by range: farm.media.source_range)
    <storage>/jobs/<id>/chunks/out/<n>.<ext>  encoded chunk outputs

Files are written under a temporary name in the same folder and renamed, so a
reader never sees a half-written file. The job's output is written by finalize under a
hidden temporary name beside its destination (the joined video of several chunks, before
the remux, in the job's folder), and published by a rename or a link.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import hashlib
import os
import re
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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


def check_writable_folder(path: Path, flag: str) -> None:
    """InputError unless the folder that is to hold `path` exists and is writable (`flag`:
    the option that named `path`, for the hint)."""
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        raise InputError(f"the folder {path.parent} does not exist or is not writable",
                         hint=f"choose another {flag}")


def temp_name(final: Path, job_id: str | None = None) -> Path:
    """A unique temporary name beside `final` (same folder, so rename is atomic); with
    `job_id` it names the job, so that remove_leftovers finds what a killed writer left."""
    tag = f"{job_id}-" if job_id else ""
    return final.with_name(f".{final.name}.{tag}{uuid.uuid4().hex[:8]}.tmp")


def remove_leftovers(final: Path, job_id: str, older_than_s: float | None = None) -> list[Path]:
    """Remove job `job_id`'s temporaries beside `final` (temp_name(final, job_id)): what a
    finalizer killed mid-write left in the user's folder. older_than_s: only those not
    written to for that long (seconds), so a slow writer that is still alive keeps its own."""
    now = time.time()
    removed = []
    mine = f".{glob.escape(final.name)}.{job_id}-*.tmp"
    for path in [*final.parent.glob(mine), *final.parent.glob(f".{mine}.c2pa.*.tmp")]:   # and its signed copy
        try:
            if older_than_s is None or now - path.stat().st_mtime >= older_than_s:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            pass
    return removed


@dataclass(frozen=True)
class IngestRecord:
    """What was ingested: the farm's own copy of the user's file, and how to tell it changed.

    size_bytes and sha256: the copy's content (the sha256 computed while copying);
    mtime_ns: the copy's modification time right after ingest (nanoseconds), so a
    later check is a stat, and the file is read again only when the stat differs.
    """

    how: str            # "reflink" or "copy"
    size_bytes: int
    sha256: str
    mtime_ns: int

    def describe(self, src: Path, dest: Path) -> str:
        """One line for the job's log; `from_description` reads it back."""
        return (f"{dest.name}: {self.size_bytes} bytes, sha256 {self.sha256}, mtime_ns {self.mtime_ns} "
                f"({self.how} of {src})")

    @classmethod
    def from_description(cls, text: str) -> IngestRecord | None:
        found = _INGEST_LINE.search(text)
        if found is None:
            return None
        return cls(how=found["how"], size_bytes=int(found["size"]), sha256=found["sha"],
                   mtime_ns=int(found["mtime"]))


_INGEST_LINE = re.compile(r": (?P<size>\d+) bytes, sha256 (?P<sha>[0-9a-f]{64}), mtime_ns (?P<mtime>\d+) "
                          r"\((?P<how>reflink|copy) of ")


def ingest(src: Path, dest: Path, expect_size: int | None = None) -> IngestRecord:
    """Put a copy of the user's file at `dest` that is the farm's own; never modify `src`.

    Never a hard link: the user may rewrite their file in place while the job runs. A
    reflink (FICLONE: copy-on-write, instant) where the filesystem can, else a copy
    whose sha256 is compared with the original's (a mismatch raises UnavailableError).
    If `src` changes while it is copied (size or mtime), or its size is not
    `expect_size` (what was probed), InputError: nothing is stored. A full or failing
    storage raises UnavailableError (exit 4): no job exists yet, so the hint is to
    submit again. Cost here (ext4, no reflink): ~0.4 s for a 97 MB 4K 10 s clip.
    """
    tmp = temp_name(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        before = os.stat(src)
        if expect_size is not None and before.st_size != expect_size:
            raise _changed(src)
        try:
            how, digest = _reflink_or_copy(src, tmp)
        except UnavailableError:
            _check_unchanged(src, before)   # checksums that differ because the file moved: say that
            raise
        after = _check_unchanged(src, before)
        os.replace(tmp, dest)
        return IngestRecord(how=how, size_bytes=after.st_size, sha256=digest, mtime_ns=os.stat(dest).st_mtime_ns)
    except OSError as exc:
        raise _ingest_error(exc, src, dest.parent) from None
    finally:
        tmp.unlink(missing_ok=True)


def check_source(path: Path, record: IngestRecord) -> None:
    """Raise FarmError naming `path` if the farm's copy is no longer what was ingested.

    A stat first (size, mtime); only when it differs is the file hashed again, so a
    mere `touch` does not fail the job.
    """
    try:
        st = os.stat(path)
        if (st.st_size, st.st_mtime_ns) == (record.size_bytes, record.mtime_ns):
            return
        if st.st_size == record.size_bytes and sha256_file(path) == record.sha256:
            return
    except OSError as exc:
        raise FarmError(f"the farm's copy of the input, {path}, cannot be read: {exc.strerror or exc}",
                        hint="the storage lost it; submit the video again") from None
    raise FarmError(f"the farm's copy of the input, {path}, changed after it was ingested "
                    f"({st.st_size} bytes now, {record.size_bytes} bytes with sha256 {record.sha256} then); "
                    "nothing was published",
                    hint="something wrote into the farm's storage; submit the video again")


def _check_unchanged(src: Path, before: os.stat_result) -> os.stat_result:
    after = os.stat(src)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise _changed(src)
    return after


def _changed(src: Path) -> InputError:
    return InputError(f"{src} changed while it was being read (its size or modification time moved); "
                      "nothing was stored", hint="wait until the file is completely written, then submit it again")


def _reflink_or_copy(src: Path, tmp: Path) -> tuple[str, str]:
    """Clone or copy `src` to `tmp`; return (how, sha256 of the data).

    The copy is made by the kernel (shutil.copyfile: sendfile), then the source and the
    copy are hashed at the same time (hashlib releases the GIL): about one sha256 pass
    of wall time (~0.15 s per 100 MB here) on top of the copy itself.
    """
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
            return "reflink", sha256_file(tmp)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
                raise
    shutil.copyfile(src, tmp)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="farm-ingest-hash") as pool:
        want, got = pool.map(sha256_file, (src, tmp))
    if got != want:
        raise UnavailableError(f"the copy of {src} on the storage ({tmp.parent}) does not match the original's "
                               f"sha256 checksum; nothing was stored and {src} was not modified",
                               hint="the storage may be failing: check it (free space, disk errors), then submit again")
    return "copy", want


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(COPY_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def commit_publish(staged: Path, final: Path, *, overwrite: bool) -> None:
    """Make a file finalize wrote beside `final` (temp_name) visible at `final` in one atomic step.

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


def _ingest_error(exc: OSError, src: Path, folder: Path) -> UnavailableError:
    """Ingest runs before any job exists: a storage failure means "submit again", not `farm retry`."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return UnavailableError(f"cannot ingest {src}: no space left on the storage {folder}; nothing was stored "
                                "and no job was created", hint="free space on the storage, then submit the video again")
    return UnavailableError(f"cannot ingest {src} into {folder}: {exc.strerror or exc}; nothing was stored and no job "
                            "was created", hint="check the storage (mounted, writable), then submit the video again")


def _storage_error(exc: OSError, what: str) -> FarmError:
    if exc.errno == errno.ENOSPC:
        return FarmError(f"{what}: no space left on device", hint="free space on the storage, then `farm retry`")
    return FarmError(f"{what}: {exc.strerror or exc}")
