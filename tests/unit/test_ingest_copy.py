"""Ingest makes the farm's own copy of the user's file (never a hard link), records what
it copied, and tells when that copy changed; a full storage is "unavailable", not a job
failure. Real files on this machine's filesystem (ext4: no reflink, so a copy)."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from farm.errors import EXIT_REFUSED, EXIT_UNAVAILABLE, FarmError, InputError, UnavailableError
from farm.storage import IngestRecord, check_source, ingest


def user_file(tmp_path: Path, size: int = 300_000) -> Path:
    src = tmp_path / "talk.mp4"
    src.write_bytes(os.urandom(size))
    return src


def test_ingest_is_never_a_hard_link_and_records_size_and_sha256(tmp_path):
    src = user_file(tmp_path)
    dest = tmp_path / "store" / "jobs" / "j1" / "source.mp4"
    record = ingest(src, dest)
    assert os.stat(src).st_nlink == 1 and not os.path.samefile(src, dest)
    assert record.size_bytes == src.stat().st_size
    assert record.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert record.mtime_ns == dest.stat().st_mtime_ns
    assert IngestRecord.from_description(record.describe(src, dest)) == record


def test_rewriting_the_users_file_in_place_leaves_the_farms_copy_alone(tmp_path):
    src = user_file(tmp_path)
    original = src.read_bytes()
    dest = tmp_path / "store" / "source.mp4"
    record = ingest(src, dest)
    with open(src, "r+b") as fh:        # `cp other.mp4 talk.mp4` writes the same inode
        fh.write(os.urandom(len(original)))
    assert dest.read_bytes() == original
    check_source(dest, record)          # unchanged: no error


def test_a_changed_farm_copy_is_detected_naming_the_file_and_a_touch_is_not(tmp_path):
    src = user_file(tmp_path)
    dest = tmp_path / "store" / "source.mp4"
    record = ingest(src, dest)
    os.utime(dest, ns=(1, 1))           # only the time moved: the content is hashed and found equal
    check_source(dest, record)
    with open(dest, "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\xff" * 16)
    with pytest.raises(FarmError, match="changed after it was ingested") as changed:
        check_source(dest, record)
    assert str(dest) in changed.value.message
    dest.unlink()
    with pytest.raises(FarmError, match="cannot be read"):
        check_source(dest, record)


def test_a_file_that_is_not_the_size_probed_is_refused_and_nothing_is_stored(tmp_path):
    src = user_file(tmp_path)
    dest = tmp_path / "store" / "source.mp4"
    with pytest.raises(InputError, match="changed while it was being read") as refused:
        ingest(src, dest, expect_size=src.stat().st_size - 1)
    assert refused.value.exit_code == EXIT_REFUSED
    assert not dest.exists() and not list(dest.parent.glob(".*"))


def test_a_full_storage_is_unavailable_and_says_submit_again(tmp_path, monkeypatch):
    import farm.storage as storage

    src = user_file(tmp_path)
    dest = tmp_path / "store" / "source.mp4"

    def full(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage, "_reflink_or_copy", full)   # the real ENOSPC: tests/faults/test_source_copy.py
    with pytest.raises(UnavailableError) as unavailable:
        ingest(src, dest)
    assert unavailable.value.exit_code == EXIT_UNAVAILABLE
    assert "no space left" in unavailable.value.message and str(dest.parent) in unavailable.value.message
    assert "submit the video again" in unavailable.value.hint and "retry" not in unavailable.value.hint


def test_a_file_rewritten_while_it_is_copied_is_refused_not_blamed_on_the_storage(tmp_path, monkeypatch):
    import shutil as real_shutil

    import farm.storage as storage

    src = user_file(tmp_path)
    dest = tmp_path / "store" / "source.mp4"
    real_copyfile = real_shutil.copyfile

    def copy_then_rewrite(a, b):      # the user's program writes the file during the copy
        real_copyfile(a, b)
        with open(a, "r+b") as fh:
            fh.write(b"new")

    monkeypatch.setattr(storage.shutil, "copyfile", copy_then_rewrite)
    with pytest.raises(InputError, match="changed while it was being read"):
        ingest(src, dest)
    assert not dest.exists() and not list(dest.parent.glob(".*"))
