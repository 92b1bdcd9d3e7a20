"""The `farm` command end to end on the embedded default: a real private Redis, real
Celery worker processes, SQLite, real ffmpeg; outputs checked with Debian's ffprobe."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests import clips, media_checks
from tests.e2e.farmcli import FarmCLI


@pytest.fixture
def cli(farm_home: Path):
    farm = FarmCLI(farm_home)
    yield farm
    farm.down()
    assert not list((farm_home / "run").glob("*.pid")), "farm down left pid files behind"


def job_rows(home: Path) -> int:
    db = home / "farm.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def test_submit_wait_json_gives_a_frame_exact_labelled_output(cli, tmp_path):
    src = clips.make_clip(tmp_path / "talk.mp4", seconds=2.0, audio_tracks=1, gop=15)
    proc = cli.run("submit", str(src), "--passthrough", "--wait", "--json", "--chunk-seconds", "0.5")
    assert proc.returncode == 0, proc.stderr + cli.logs()
    result = json.loads(proc.stdout)
    out = tmp_path / "talk.farm.mp4"
    assert result["state"] == "done" and result["error"] is None
    assert result["output"] == str(out) and result["frames"] == 60
    media_checks.assert_same_frame_times(media_checks.video_frame_times(src), media_checks.video_frame_times(out))
    tags = media_checks.container_tags(out)
    assert result["id"] in tags.get("comment", "") and "synthetic" in tags.get("comment", "")
    assert tags.get("farm_job_id") == result["id"]
    assert [s[0] for s in media_checks.stream_summary(out)] == ["video", "audio"]
    status = cli.run("status", result["id"], check=True).stdout
    assert "done" in status and "attempts" in status
    # chunk files are removed after publishing (no --keep-chunks)
    assert not (cli.home / "storage" / "jobs" / result["id"] / "chunks").exists()


def test_submit_without_wait_prints_the_id_and_the_job_finishes(cli, tmp_path):
    src = clips.make_clip(tmp_path / "clip.mkv", seconds=1.0)
    proc = cli.run("submit", str(src), "--passthrough", "--output", str(tmp_path / "out.mkv"))
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.strip()
    assert len(job_id) == 12
    job = cli.wait_state(job_id, {"done", "failed"})
    assert job["state"] == "done", job
    assert media_checks.frame_count(tmp_path / "out.mkv") == media_checks.frame_count(src)


@pytest.mark.parametrize("kind", ["text", "truncated", "audio_only", "m3u8", "png"])
def test_bad_input_is_refused_with_exit_2_and_nothing_stored(cli, tmp_path, kind):
    bad = clips.make_not_video(tmp_path / f"bad-{kind}.mp4", kind=kind)
    before = bad.read_bytes()
    proc = cli.run("submit", str(bad), "--passthrough", "--wait")
    assert proc.returncode == 2, proc.stderr
    assert str(bad.name) in proc.stderr
    assert job_rows(cli.home) == 0
    assert not list((cli.home / "storage").glob("jobs/*")) if (cli.home / "storage").exists() else True
    assert bad.read_bytes() == before
    assert not (tmp_path / f"bad-{kind}.farm.mp4").exists()


def test_usage_errors_exit_2(cli, tmp_path):
    src = clips.make_clip(tmp_path / "a.mp4", seconds=0.5)
    assert cli.run("submit", str(src)).returncode == 2                       # no --source
    assert cli.run("submit", str(src), "--passthrough", "--crf", "x").returncode == 2
    assert cli.run("submit", str(src), "--passthrough", "--priority", "12").returncode == 2
    assert cli.run("submit", str(tmp_path / "missing.mp4"), "--passthrough").returncode == 2
    assert cli.run("status", "nosuchjob").returncode == 2
    assert job_rows(cli.home) == 0


def test_existing_output_is_never_overwritten_without_overwrite(cli, tmp_path):
    src = clips.make_clip(tmp_path / "a.mp4", seconds=0.5)
    out = tmp_path / "a.farm.mp4"
    out.write_bytes(b"precious")
    proc = cli.run("submit", str(src), "--passthrough", "--wait")
    assert proc.returncode == 2 and "already exists" in proc.stderr and "--overwrite" in proc.stderr
    assert out.read_bytes() == b"precious"
    proc = cli.run("submit", str(src), "--passthrough", "--wait", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert media_checks.frame_count(out) == 15


def test_version_and_help():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "farm", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("farm ")
