"""The farm's copy of the input is its own (real farm: private Redis, Celery worker
processes, SQLite, ffmpeg). Rewriting the user's file in place mid-job changes nothing
in the output; a change to the farm's own copy fails the job naming the file; a full
storage at ingest is "unavailable" (exit 4) and stores nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests import clips, media_checks
from tests.e2e.farmcli import FarmCLI
from tests.faults.farmfaults import query
from tests.faults.test_faults import FAST_FAULTS, assert_exact


@pytest.fixture
def cli(farm_home: Path):
    farm = FarmCLI(farm_home, dict(FAST_FAULTS))
    yield farm
    farm.down()


def two_clips(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(the user's file, a pristine copy of it, another clip of the same shape but other
    pictures and sound: dark frames and a click instead of a 440 Hz tone)."""
    src = clips.make_clip(tmp_path / "talk.mp4", width=320, height=180, seconds=3.0, audio_tracks=1, gop=15)
    original = tmp_path / "original.mp4"
    shutil.copyfile(src, original)
    other = clips.make_clip(tmp_path / "other.mp4", width=320, height=180, seconds=3.0, audio_tracks=1, gop=15,
                            flash_at=1.5)
    return src, original, other


def submit(cli: FarmCLI, src: Path) -> str:
    return cli.run("submit", str(src), "--passthrough", "--chunk-seconds", "0.5", "--preset", "slower",
                   check=True).stdout.strip()


def test_rewriting_the_users_file_in_place_mid_job_leaves_the_output_the_original(cli, tmp_path):
    src, original, other = two_clips(tmp_path)
    inode = src.stat().st_ino
    job_id = submit(cli, src)
    shutil.copyfile(other, src)                  # `cp other.mp4 talk.mp4`: same inode, new content
    assert src.stat().st_ino == inode
    job = cli.wait_state(job_id, {"done", "failed"})
    assert job["state"] == "done", job
    out = tmp_path / "talk.farm.mp4"
    assert_exact(original, out)
    got, rate, _ = media_checks.audio_samples(out)
    want, _, _ = media_checks.audio_samples(original)
    assert np.array_equal(got, want), "the output's audio is not the original's"
    luma_out = media_checks.frame_luma(out).mean()
    assert abs(luma_out - media_checks.frame_luma(original).mean()) < 3
    assert abs(luma_out - media_checks.frame_luma(other).mean()) > 20
    [ingested] = [m for (m,) in query(cli.home, "SELECT message FROM events WHERE job_id=? AND kind='ingested'",
                                      job_id)]
    size = original.stat().st_size
    assert f"{size} bytes" in ingested and "sha256 " in ingested


def test_a_change_to_the_farms_own_copy_fails_the_job_naming_the_file(cli, tmp_path):
    src, original, other = two_clips(tmp_path)
    job_id = submit(cli, src)
    [farm_source] = (cli.home / "storage" / "jobs" / job_id).glob("source.*")
    shutil.copyfile(other, farm_source)          # a bug or an operator writes into the farm's storage
    job = cli.wait_state(job_id, {"done", "failed"})
    assert job["state"] == "failed", job
    assert str(farm_source) in job["error"] and "changed" in job["error"], job["error"]
    assert not (tmp_path / "talk.farm.mp4").exists()
    assert media_checks.frame_count(src) == media_checks.frame_count(original)   # the user's file untouched


def test_storage_full_during_ingest_exits_4_says_submit_again_and_stores_nothing(farm_home, tmp_path):
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    cli = FarmCLI(farm_home, dict(FAST_FAULTS, FARM_STORAGE=str(mount_point)))
    try:
        src = clips.make_clip(tmp_path / "big.mp4", width=1280, height=720, seconds=2.0)
        assert src.stat().st_size > 600 * 1024, src.stat().st_size   # cannot fit on the storage
        proc = cli.run("submit", str(src), "--passthrough", "--wait", "--json")
        assert proc.returncode == 4, proc.stdout + proc.stderr
        assert "no space left" in proc.stderr and str(mount_point) in proc.stderr, proc.stderr
        assert "submit" in proc.stderr and "again" in proc.stderr and "farm retry" not in proc.stderr, proc.stderr
        assert json.loads(cli.run("jobs", "--json", check=True).stdout) == []
        assert [p for p in mount_point.rglob("*") if p.is_file()] == []
        assert not list((mount_point / "jobs").iterdir()) if (mount_point / "jobs").exists() else True
    finally:
        cli.down()
        subprocess.run(["umount", "-l", str(mount_point)])
