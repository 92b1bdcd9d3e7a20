"""The `farm` command end to end on the embedded default: a real private Redis, real
Celery worker processes, SQLite, real ffmpeg; outputs checked with Debian's ffprobe."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import cv2
import pytest

from tests import clips, media_checks
from tests.redis_dbs import shared_redis_db
from tests.e2e.farmcli import FARM, FarmCLI

#: Redis database of the machine's server used by the cluster-mode submit test (flushed by
#: it; tests/conftest.shared_redis_db gives each file its own).
CLUSTER_TEST_REDIS_DB = shared_redis_db(11)


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


@pytest.mark.parametrize("kind", clips.NOT_VIDEO_KINDS)
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
    # and a refused job starts no local farm (no redis-server, no workers)
    assert "started the local farm" not in proc.stderr
    assert not list((cli.home / "run").glob("*.pid")) if (cli.home / "run").exists() else True


def test_inputs_over_the_configured_limits_are_refused(cli, tmp_path):
    src = clips.make_clip(tmp_path / "a.mp4", width=320, height=180, seconds=0.5)
    for var, value, words in (("FARM_MAX_WIDTH", "256", "over the limit"), ("FARM_MAX_FRAMES", "10", "more than 10 frames"),
                              ("FARM_MAX_INPUT_BYTES", "1000", "over the limit")):
        proc = FarmCLI(cli.home, {var: value}).run("submit", str(src), "--passthrough")
        assert proc.returncode == 2 and words in proc.stderr and "a.mp4" in proc.stderr, (var, proc.stderr)
    assert job_rows(cli.home) == 0


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


def test_submit_wait_shows_progress_and_the_encoder_options_reach_the_output(cli, tmp_path):
    """--wait draws progress on stderr; --keep-chunks, --codec hevc and --preset take effect;
    `farm status` (no job) and `farm jobs` list the job."""
    src = clips.make_clip(tmp_path / "p.mp4", width=160, height=90, seconds=1.0, gop=15)
    proc = cli.run("submit", str(src), "--passthrough", "--wait", "--keep-chunks", "--codec", "hevc",
                   "--preset", "ultrafast", "--chunk-seconds", "0.5")
    assert proc.returncode == 0, proc.stderr + cli.logs()
    job_id = re.search(r"job (\w{12}) submitted", proc.stderr).group(1)
    # progress: frames done/total, frames per second, ETA, chunks done
    # (stderr is a pipe here: one plain line per change, the last one with the final figures)
    line = next((ln for ln in reversed(proc.stderr.splitlines()) if "frames" in ln and "chunks" in ln), "")
    assert re.search(r"\b30/30 frames\b", line) and re.search(r"\d+\.\d fps", line), proc.stderr
    assert re.search(r"ETA (\d+:)?\d+:\d\d\b", line) and "chunks 2/2" in line, proc.stderr
    out = tmp_path / "p.farm.mp4"
    assert f"done: {out}" in proc.stderr.replace("\n", "")
    assert media_checks.video_stream(out)["codec_name"] == "hevc"
    sei = re.search(rb"x265 \(build.*?options: ([^\x00]*)", out.read_bytes())   # x265's settings, in the stream
    assert sei and b" rc-lookahead=5 " in sei.group(1) and b" ref=1 " in sei.group(1)   # ultrafast's, not fast's
    chunks = cli.home / "storage" / "jobs" / job_id / "chunks"
    # an MP4's chunks read their segments from the ingested source by range: no split copies
    assert len(list((chunks / "out").iterdir())) == 2 and not (chunks / "in").exists()
    for args in (("status",), ("jobs",)):
        listing = cli.run(*args, check=True).stdout
        assert job_id in listing and "done" in listing, listing


def test_demo_runs_the_sample_through_the_farm(cli):
    """README's first command: `farm demo` (its shortest clip) makes a labelled output."""
    proc = cli.run("demo", "--seconds", "1", timeout_s=600)
    assert proc.returncode == 0, proc.stderr + cli.logs()
    out = cli.home / "demo" / "sample.farm.mp4"
    assert media_checks.frame_count(out) == 30
    tags = media_checks.container_tags(out)
    assert "synthetic media" in tags.get("comment", "") and "faces altered" in tags["comment"], tags
    assert "demo" in tags["comment"] and tags.get("farm_faces_altered") == "1"
    # boosted and masked (issue 14.6), and previewed first: before | after of the first frame plus a panel
    assert "by mask (box+occlusion) + swap (pixel boost 256) + enhance in " in tags["comment"], tags
    preview = cli.home / "demo" / "sample.preview.png"
    assert f"preview (before | after) {preview}" in " ".join(proc.stderr.split()), proc.stderr
    width, height = cv2.imread(str(preview)).shape[1::-1]
    assert width == 2 * 640 and height > 360


def test_cluster_mode_submit_wait_starts_no_local_workers(farm_home, tmp_path):
    """With FARM_BROKER_URL set, `submit --wait` leaves the workers to the cluster: no local
    worker starts (they would join the cluster's queue); the job waits until cancelled."""
    import redis

    url = os.environ.get("FARM_TEST_REDIS", "redis://127.0.0.1:6379")
    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            pytest.fail(f"no Redis at {url} (CI must have it)")
        pytest.skip(f"no Redis at {url}")
    broker = f"{url}/{CLUSTER_TEST_REDIS_DB}"
    cli = FarmCLI(farm_home, {"FARM_BROKER_URL": broker, "FARM_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
                              "FARM_STORAGE": str(tmp_path / "nfs")})
    src = clips.make_clip(tmp_path / "c.mp4", width=160, height=90, seconds=1.0)
    proc = subprocess.Popen([*FARM, "submit", str(src), "--passthrough", "--wait", "--json"], env=cli.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        rows: list = []
        while not rows and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.3)
            rows = json.loads(cli.run("jobs", "--json", check=True).stdout)
        assert rows, f"no job recorded: {proc.poll()} {proc.stderr.read() if proc.poll() is not None else ''}"
        time.sleep(1.0)   # a submit that starts workers has done so by now
        assert not (farm_home / "run" / "workers.pid").exists()
        assert not (farm_home / "run" / "redis.pid").exists()
        assert cli.run("cancel", rows[0]["id"]).returncode == 0
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 3, stderr
        assert json.loads(stdout)["state"] == "cancelled"
        assert "started the local farm" not in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if (farm_home / "run" / "workers.pid").exists():
            cli.down()   # stop what a regression started, before its home is removed
        redis.Redis.from_url(broker).flushdb()


def test_version_and_help():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "farm", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("farm ")
