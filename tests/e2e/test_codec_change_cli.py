"""`farm submit --codec hevc` on an ordinary ffmpeg-made H.264 file (no colour tags), end to
end on the embedded farm: real private Redis, real Celery worker, SQLite, real encoders;
the output is checked with Debian's ffprobe."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests import media_checks
from tests.e2e.farmcli import FarmCLI


@pytest.fixture
def cli(farm_home):
    farm = FarmCLI(farm_home)
    yield farm
    farm.down()


def test_codec_change_of_an_untagged_h264_file_finishes(cli, tmp_path):
    # Given an H.264 file as a plain `ffmpeg -i ... out.mp4` makes it (no colour range tag)
    src = tmp_path / "source.mp4"
    subprocess.run([media_checks.ffmpeg_exe(), "-v", "error", "-nostdin", "-f", "lavfi", "-i",
                    "testsrc2=s=320x180:r=30", "-f", "lavfi", "-i", "sine=d=1", "-frames:v", "30",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(src)],
                   check=True, capture_output=True)
    assert media_checks.colour(src)["color_range"] is None
    # When it is submitted with --codec hevc
    proc = cli.run("submit", str(src), "--passthrough", "--codec", "hevc", "--wait", "--json",
                   "--chunk-seconds", "0.5")
    # Then the job is done, and the output is HEVC, frame-exact, with the audio, colour untagged
    assert proc.returncode == 0, proc.stdout + proc.stderr + cli.logs()
    result = json.loads(proc.stdout)
    assert result["state"] == "done" and result["error"] is None
    out = tmp_path / "source.farm.mp4"
    assert media_checks.video_stream(out)["codec_name"] == "hevc"
    media_checks.assert_same_frame_times(media_checks.video_frame_times(src), media_checks.video_frame_times(out))
    assert [s[0] for s in media_checks.stream_summary(out)] == ["video", "audio"]
    got = media_checks.colour(out)
    assert got["color_primaries"] is None and got["color_space"] is None and got["color_transfer"] is None
