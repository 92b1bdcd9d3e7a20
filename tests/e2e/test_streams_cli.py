"""Files with more than one video stream, and cover art, through the real farm (embedded
default: private Redis, Celery worker processes, SQLite, ffmpeg); checked with Debian's
ffprobe/ffmpeg. The processed video is the real one; every other stream is copied
bit for bit, or the job says which one could not be kept."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests import clips, media_checks
from tests.e2e.farmcli import FarmCLI
from tests.faults.farmfaults import query


@pytest.fixture(scope="module")
def cli():
    """One local farm for the module (each job is a few seconds; starting a farm is too)."""
    home = Path("/tmp") / f"farm-test-{uuid.uuid4().hex[:8]}"
    home.mkdir()
    farm = FarmCLI(home)
    yield farm
    farm.down()
    shutil.rmtree(home, ignore_errors=True)


def render(cli: FarmCLI, src: Path) -> dict:
    proc = cli.run("submit", str(src), "--passthrough", "--wait", "--json", "--chunk-seconds", "0.8")
    assert proc.returncode == 0, proc.stderr + cli.logs()
    result = json.loads(proc.stdout)
    assert result["state"] == "done", result
    return result


def streams(path: Path) -> list[dict]:
    return media_checks.ffprobe_json(path)["streams"]


def packets(path: Path, index: int) -> list[tuple[float, str]]:
    """(pts in seconds, md5 of the data) of every packet of stream `index`, by Debian's ffmpeg."""
    argv = [media_checks.ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", f"0:{index}", "-c", "copy",
            "-f", "framemd5", "-"]
    text = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    tb = next(line.split(":")[1].strip() for line in text.splitlines() if line.startswith("#tb"))
    num, den = (int(x) for x in tb.split("/"))
    rows = [line.split(",") for line in text.splitlines() if line and not line.startswith("#")]
    return [(round(int(r[2]) * num / den, 3), r[5].strip()) for r in rows]


def frame_times(path: Path, index: int) -> list[float]:
    data = json.loads(subprocess.run(
        [media_checks.ffprobe_exe(), "-v", "error", "-select_streams", str(index), "-show_entries",
         "frame=best_effort_timestamp_time", "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=60).stdout)
    return [float(f["best_effort_timestamp_time"]) for f in data["frames"]]


def event_messages(cli: FarmCLI, job_id: str, kind: str) -> list[str]:
    return [m for (m,) in query(cli.home, "SELECT message FROM events WHERE job_id=? AND kind=? ORDER BY id",
                                job_id, kind)]


def test_the_real_video_is_processed_when_track_0_is_a_one_frame_still(cli, tmp_path):
    src = clips.make_multi_video_clip(tmp_path / "still.mkv", [(512, 512, 1), (320, 180, 50)])
    result = render(cli, src)
    out = tmp_path / "still.farm.mkv"
    assert result["frames"] == 50
    kinds = [(s["codec_type"], s.get("width")) for s in streams(out)]
    assert kinds == [("video", 512), ("video", 320), ("audio", None)]
    media_checks.assert_same_frame_times(frame_times(src, 1), frame_times(out, 1))
    assert len(frame_times(out, 1)) == 50
    assert packets(out, 0) == packets(src, 0)          # the still: copied bit for bit
    assert packets(out, 2) == packets(src, 2)          # the audio
    [chosen] = event_messages(cli, result["id"], "video_stream")
    assert chosen.startswith("stream 1") and "50 frames" in chosen


def test_a_second_video_stream_is_kept_bit_for_bit(cli, tmp_path):
    src = clips.make_multi_video_clip(tmp_path / "pip.mkv", [(320, 180, 50), (160, 90, 30)], default=0)
    render(cli, src)
    out = tmp_path / "pip.farm.mkv"
    kinds = [(s["codec_type"], s.get("width")) for s in streams(out)]
    assert kinds == [("video", 320), ("video", 160), ("audio", None)]
    assert len(frame_times(out, 0)) == 50
    assert packets(out, 1) == packets(src, 1)
    assert packets(out, 2) == packets(src, 2)


def test_mp4_cover_art_is_kept_and_the_label_is_in_the_itunes_tags(cli, tmp_path):
    src = clips.make_cover_art_clip(tmp_path / "cover.mp4")
    result = render(cli, src)
    out = tmp_path / "cover.farm.mp4"
    got = [(s["codec_type"], s["codec_name"], s["disposition"]["attached_pic"]) for s in streams(out)]
    assert got == [("video", "h264", 0), ("audio", "aac", 0), ("video", "png", 1)]
    assert packets(out, 2) == packets(src, 2)
    tags = media_checks.container_tags(out)
    for key in ("comment", "description"):
        assert "synthetic media" in tags[key] and result["id"] in tags[key], tags
    assert media_checks.frame_count(out) == 60


def test_two_equal_video_streams_are_refused_with_exit_2_and_nothing_stored(cli, tmp_path):
    src = clips.make_multi_video_clip(tmp_path / "twins.mkv", [(320, 180, 50), (320, 180, 50)])
    before = query(cli.home, "SELECT count(*) FROM jobs")[0][0] if (cli.home / "farm.db").exists() else 0
    proc = cli.run("submit", str(src), "--passthrough", "--wait", "--json")
    assert proc.returncode == 2, proc.stderr
    assert "#0" in proc.stderr and "#1" in proc.stderr and str(src) in proc.stderr
    after = query(cli.home, "SELECT count(*) FROM jobs")[0][0] if (cli.home / "farm.db").exists() else 0
    assert after == before
    assert not (tmp_path / "twins.farm.mkv").exists()


def test_cover_art_a_quicktime_file_cannot_hold_is_named_on_stderr_and_in_the_job_log(cli, tmp_path):
    src = clips.make_cover_art_clip(tmp_path / "cover.mov")
    assert [s["codec_name"] for s in streams(src)] == ["h264", "aac", "png"]
    proc = cli.run("submit", str(src), "--passthrough", "--wait", "--json", "--chunk-seconds", "0.8")
    assert proc.returncode == 0, proc.stderr + cli.logs()
    result = json.loads(proc.stdout)
    assert result["state"] == "done", result
    warning = " ".join(proc.stderr.split())
    assert "stream 2 (cover art, png) is not copied" in warning and "mov" in warning, proc.stderr
    [note] = event_messages(cli, result["id"], "stream_not_kept")
    assert note.startswith("stream 2 (cover art, png)")
    out = tmp_path / "cover.farm.mov"
    assert [s["codec_name"] for s in streams(out)] == ["h264", "aac"]
    assert media_checks.container_tags(out).get("farm_job_id") == result["id"]
