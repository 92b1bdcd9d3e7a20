"""Storage: confinement, ingest without touching the input, atomic no-clobber publish."""

import os

import pytest

from farm.errors import FarmError, InputError
from farm.storage import Storage, ingest, publish, sha256_file, temp_name


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
    how = ingest(src, dest)
    assert how in ("link", "reflink", "copy")
    assert sha256_file(dest) == before[0]
    assert (sha256_file(src), src.stat().st_mtime_ns, src.stat().st_mode) == before
    assert not list(dest.parent.glob(".*.tmp"))


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
