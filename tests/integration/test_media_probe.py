"""probe() on real clips: the facts it reports, and the inputs it refuses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from farm.errors import InputError
from farm.media.media_info import ProbeLimits
from farm.media.probe import probe
from tests import media_checks as mc
from tests.clips import NOT_VIDEO_KINDS, make_clip, make_not_video, planned_frame_times


def test_probe_reports_the_clip(tmp_path: Path) -> None:
    # Given an H.264 clip with two audio tracks, subtitles, rotation and a start offset
    src = make_clip(tmp_path / "a.mp4", audio_tracks=2, subtitles=True, rotation=90, start_time=1.5,
                    gop=15, bframes=2)
    # When probed
    info = probe(src)
    # Then it agrees with ffprobe
    v = info.video
    assert info.demuxer == "mov" and info.size_bytes == src.stat().st_size
    assert (v.codec, v.width, v.height, v.pix_fmt, v.bit_depth) == ("h264", 320, 180, "yuv420p", 8)
    assert v.frame_count == mc.frame_count(src) == 60
    assert v.fps == 30 and not v.is_vfr
    assert v.rotation == mc.rotation(src) == 90
    assert (v.color_primaries, v.color_trc, v.colorspace, v.color_range) == ("bt709", "bt709", "bt709", "tv")
    assert [float(p * v.time_base) for p in info.frame_pts] == pytest.approx(mc.video_frame_times(src), abs=1e-5)
    assert abs(info.start_time_s - mc.start_times(src)["format"]) < 1e-3
    assert [(s.type, s.codec, s.language) for s in info.streams] == [
        ("video", "h264", "und"), ("audio", "aac", "eng"), ("audio", "aac", "fra"), ("subtitle", "mov_text", "eng"),
    ]
    assert sum(p.is_keyframe for p in info.packets) == mc.keyframe_count(src) == 4
    assert abs(v.duration_s - 2.0) < 1e-6


def test_probe_hdr10_and_vfr(tmp_path: Path) -> None:
    hdr = probe(make_clip(tmp_path / "hdr.mkv", hdr10=True, seconds=0.5))
    v = hdr.video
    assert (v.codec, v.pix_fmt, v.bit_depth) == ("hevc", "yuv420p10le", 10)
    assert (v.color_primaries, v.color_trc, v.colorspace) == ("bt2020", "smpte2084", "bt2020nc")
    assert v.mastering_display == "G(8500,39850)B(6550,2300)R(35400,14600)WP(15635,16450)L(10000000,1)"
    assert v.content_light == "1000,400"
    vfr = probe(make_clip(tmp_path / "vfr.mp4", vfr=True, seconds=1.0))
    assert vfr.video.is_vfr
    times = [float(p * vfr.video.time_base) for p in vfr.frame_pts]
    assert times == pytest.approx(planned_frame_times(vfr=True, seconds=1.0), abs=1e-4)


@pytest.mark.parametrize("kind", NOT_VIDEO_KINDS)
def test_probe_refuses_what_is_not_a_video(kind: str, tmp_path: Path) -> None:
    bad = make_not_video(tmp_path / "input.mp4", kind)
    with pytest.raises(InputError) as err:
        probe(bad)
    assert str(bad) in err.value.message


def test_probe_refuses_urls_folders_and_devices(tmp_path: Path) -> None:
    for target in ("https://example.com/a.mp4", str(tmp_path), "/dev/zero", str(tmp_path / "missing.mp4")):
        with pytest.raises(InputError):
            probe(target)


def test_probe_refuses_a_playlist_even_by_a_symlink(tmp_path: Path) -> None:
    playlist = make_not_video(tmp_path / "p.m3u8", "m3u8")
    link = tmp_path / "video.mp4"
    os.symlink(playlist, link)
    with pytest.raises(InputError, match="HLS playlist"):
        probe(link)


def test_probe_limits(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "a.mkv", seconds=0.5)
    with pytest.raises(InputError, match="over the limit"):
        probe(src, ProbeLimits(max_width=256))
    with pytest.raises(InputError, match="over the limit"):
        probe(src, ProbeLimits(max_height=100))
    with pytest.raises(InputError, match="more than 10 frames"):
        probe(src, ProbeLimits(max_frames=10))
    with pytest.raises(InputError, match="over the limit"):
        probe(src, ProbeLimits(max_bytes=1000))
    assert probe(src, ProbeLimits(max_width=320, max_height=180, max_frames=15)).video.frame_count == 15


@pytest.mark.slow
def test_probe_4k_10s_is_fast(tmp_path: Path) -> None:
    # Given a 10 s 4K H.264 clip (generated fast, ~75 MB)
    import subprocess
    import time

    from tests.clips import ffmpeg_exe

    src = tmp_path / "4k.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=3840x2160:r=30:d=10",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(src)], check=True)
    # When probed, Then it takes well under a second (no full decode)
    start = time.monotonic()
    info = probe(src)
    assert time.monotonic() - start < 1.0
    assert info.video.frame_count == 300


def test_mpeg_ts_files_joined_end_to_end_are_refused_saying_how_to_join_them(tmp_path: Path) -> None:
    """`cat a.ts b.ts` breaks the transport stream at the join (the demuxer marks the packets
    there damaged): refused naming the file, with the way to join them that keeps every frame."""
    import subprocess

    part = tmp_path / "part.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-t", "1",
                    "-c:v", "libx264", "-preset", "ultrafast", "-f", "mpegts", str(part)], check=True)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(part.read_bytes() * 4)
    with pytest.raises(InputError) as refused:
        probe(joined)
    assert str(joined) in refused.value.message and "corrupt or cut short" in refused.value.message
    assert "concat" in refused.value.hint and "one by one" in refused.value.hint
