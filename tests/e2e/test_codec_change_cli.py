"""`farm submit --codec hevc` on an ordinary ffmpeg-made H.264 file (no colour tags), end to
end on the embedded farm: real private Redis, real Celery worker, SQLite, real encoders;
the output is checked with Debian's ffprobe."""

from __future__ import annotations

import json
import subprocess


from tests import media_checks


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


def test_a_webm_comes_out_as_the_matroska_it_is_named_mkv(cli, tmp_path):
    """farm encodes H.264 or HEVC, which WebM cannot hold: a VP9 WebM's output is Matroska,
    so it is named .mkv (by default, and mirrored in a batch), and an output named .webm is
    refused with why (before, a Matroska file of H.264 came out named .webm)."""
    src = tmp_path / "in" / "clip.webm"
    src.parent.mkdir()
    subprocess.run([media_checks.ffmpeg_exe(), "-v", "error", "-nostdin", "-f", "lavfi", "-i",
                    "testsrc2=s=320x180:r=30", "-f", "lavfi", "-i", "sine=d=1", "-frames:v", "30",
                    "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus",
                    "-shortest", str(src)], check=True, capture_output=True)
    refused = cli.run("submit", str(src), "--passthrough", "--output", str(tmp_path / "named.webm"))
    assert refused.returncode == 2 and "WebM holds VP8/VP9/AV1 only" in refused.stderr, refused.stderr
    assert "ending in .mkv" in refused.stderr and not (tmp_path / "named.webm").exists()
    proc = cli.run("submit", str(src), "--passthrough", "--wait", "--json", "--chunk-seconds", "0.5")
    assert proc.returncode == 0, proc.stdout + proc.stderr + cli.logs()
    out = src.with_name("clip.farm.mkv")
    assert json.loads(proc.stdout)["output"] == str(out) and not src.with_name("clip.farm.webm").exists()
    assert media_checks.video_stream(out)["codec_name"] == "h264"
    media_checks.assert_same_frame_times(media_checks.video_frame_times(src), media_checks.video_frame_times(out))
    batch = cli.run("submit", str(src.parent), "--passthrough", "--output", str(tmp_path / "out"), "--wait", "--json")
    assert batch.returncode == 0, batch.stdout + batch.stderr
    outputs = {item["input"]: item["output"] for item in json.loads(batch.stdout)["items"]}
    assert outputs[str(src)] == str(tmp_path / "out" / "clip.mkv"), outputs
