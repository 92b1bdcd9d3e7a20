"""Storage: confinement, ingest without touching the input, atomic no-clobber publish."""

import os

import pytest

from farm.errors import FarmError, InputError
from farm.storage import Storage, commit_publish, ingest, sha256_file, temp_name


def test_layout_and_confinement(tmp_path):
    st = Storage(tmp_path / "store")
    assert st.chunk_in("abc", 3, ".mp4") == (tmp_path / "store/jobs/abc/chunks/in/00003.mp4").resolve()
    with pytest.raises(InputError, match="outside the farm's storage"):
        st.job_dir("../../etc")


def test_symlink_out_of_storage_is_refused(tmp_path):
    root = tmp_path / "store"
    (root / "jobs").mkdir(parents=True)
    (root / "jobs" / "evil").symlink_to(tmp_path)
    with pytest.raises(InputError):
        Storage(root).job_dir("evil")


def test_ingest_leaves_the_input_unchanged(tmp_path):
    src = tmp_path / "in.mp4"
    src.write_bytes(os.urandom(100_000))
    before = (sha256_file(src), src.stat().st_mtime_ns, src.stat().st_mode)
    dest = tmp_path / "store" / "jobs" / "x" / "source.mp4"
    how = ingest(src, dest).how
    assert how in ("reflink", "copy")
    assert sha256_file(dest) == before[0]
    assert (sha256_file(src), src.stat().st_mtime_ns, src.stat().st_mode) == before
    assert not list(dest.parent.glob(".*.tmp"))


def publish(src, final, *, overwrite):
    """Publish as finalize does: the output written under a temporary name beside the target, then committed."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staged = temp_name(final, "job1")
    staged.write_bytes(src.read_bytes())
    try:
        commit_publish(staged, final, overwrite=overwrite)
    finally:
        staged.unlink(missing_ok=True)


def test_publish_never_clobbers_without_overwrite(tmp_path):
    src = tmp_path / "result.mp4"
    src.write_bytes(b"new")
    final = tmp_path / "out" / "video.farm.mp4"
    publish(src, final, overwrite=False)
    assert final.read_bytes() == b"new"
    src = tmp_path / "result2.mp4"
    src.write_bytes(b"newer")
    with pytest.raises(FarmError, match="appeared while the job ran"):
        publish(src, final, overwrite=False)
    assert final.read_bytes() == b"new"
    publish(src, final, overwrite=True)
    assert final.read_bytes() == b"newer"
    assert not list(final.parent.glob(".*.tmp"))


def test_temp_names_are_hidden_unique_and_beside_the_target(tmp_path):
    a, b = temp_name(tmp_path / "x.mp4"), temp_name(tmp_path / "x.mp4")
    assert a != b and a.parent == tmp_path and a.name.startswith(".x.mp4.")


def _no_link_no_reflink(monkeypatch):
    """Given storage on another filesystem: hard links fail with EXDEV, reflinks are not supported."""
    import errno

    import farm.storage as storage

    def cross_device(src, dst, *args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def no_reflink(fd, request, *args):
        if request == storage.FICLONE:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        raise AssertionError(f"unexpected ioctl {request:#x}")

    monkeypatch.setattr(storage.os, "link", cross_device)
    monkeypatch.setattr(storage.fcntl, "ioctl", no_reflink)
    monkeypatch.setattr(storage, "COPY_BLOCK_BYTES", 4096)   # several blocks for a small file


def test_ingest_copies_and_verifies_when_link_and_reflink_are_impossible(tmp_path, monkeypatch):
    _no_link_no_reflink(monkeypatch)
    src = tmp_path / "in.mp4"
    src.write_bytes(os.urandom(50_000))
    before = (sha256_file(src), src.stat().st_mtime_ns, src.stat().st_ino)
    dest = tmp_path / "store" / "jobs" / "x" / "source.mp4"
    assert ingest(src, dest).how == "copy"
    assert sha256_file(dest) == before[0] and dest.stat().st_ino != before[2]
    assert (sha256_file(src), src.stat().st_mtime_ns, src.stat().st_ino) == before
    assert not list(dest.parent.glob(".*.tmp"))


def test_ingest_refuses_a_copy_whose_checksum_differs_and_leaves_the_input_alone(tmp_path, monkeypatch):
    import farm.storage as storage
    from farm.errors import UnavailableError

    _no_link_no_reflink(monkeypatch)
    real_sha256 = storage.sha256_file
    # Given the storage hands back other bytes than were written (a failing disk)
    monkeypatch.setattr(storage, "sha256_file",
                        lambda path: "0" * 64 if path.name.endswith(".tmp") else real_sha256(path))
    src = tmp_path / "in.mp4"
    src.write_bytes(os.urandom(50_000))
    before = (real_sha256(src), src.stat().st_mtime_ns)
    dest = tmp_path / "store" / "jobs" / "x" / "source.mp4"
    with pytest.raises(UnavailableError, match="does not match") as info:
        ingest(src, dest)
    assert str(src) in info.value.message and info.value.hint
    assert not dest.exists() and not list(dest.parent.glob(".*"))
    assert (real_sha256(src), src.stat().st_mtime_ns) == before


def test_remove_leftovers_takes_a_killed_writers_temporaries_of_that_job_only(tmp_path):
    """A finalizer killed mid-write leaves its hidden temporary (and the signed copy) beside
    the user's output; the next finalize of that job removes the ones untouched for the
    stale time, and never another job's or a live writer's."""
    import os
    import time

    from farm.storage import remove_leftovers, temp_name

    final = tmp_path / "take [1].mp4"     # glob characters in the name are taken literally
    killed = temp_name(final, "job1")
    signed = killed.with_name(f".{killed.name}.c2pa.4242.tmp")
    live, other = temp_name(final, "job1"), temp_name(final, "job2")
    for path in (killed, signed, live, other):
        path.write_bytes(b"half-written")
    long_ago = time.time() - 600
    for path in (killed, signed):
        os.utime(path, (long_ago, long_ago))
    assert sorted(remove_leftovers(final, "job1", older_than_s=60)) == sorted([killed, signed])
    assert sorted(tmp_path.iterdir()) == sorted([live, other])
    assert remove_leftovers(final, "job1") == [live] and list(tmp_path.iterdir()) == [other]
