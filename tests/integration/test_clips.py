"""The fixture generators (tests/clips.py) do what they say, checked with tests/media_checks.py."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

try:
    from tests import clips, media_checks as mc
except ModuleNotFoundError:  # plain `pytest` without the repo root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests import clips, media_checks as mc

FRAME = 1 / 30  # one frame at the default 30 fps, in seconds


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- basics


def test_default_clip_has_expected_frames_and_times(tmp_path: Path) -> None:
    p = clips.make_clip(tmp_path / "a.mp4")
    assert mc.frame_count(p) == 60
    mc.assert_same_frame_times(p, clips.planned_frame_times(), tol_s=1e-3)
    v = mc.video_stream(p)
    assert (v["codec_name"], v["width"], v["height"]) == ("h264", 320, 180)
    assert mc.colour(p)["pix_fmt"] == "yuv420p"
    assert mc.rotation(p) == 0
    assert mc.stream_summary(p) == [("video", "h264", None)]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_containers_from_suffix(tmp_path: Path, suffix: str) -> None:
    p = clips.make_clip(tmp_path / f"a{suffix}", seconds=1.0, audio_tracks=1)
    fmt = mc.ffprobe_json(p)["format"]["format_name"]
    assert ("matroska" in fmt) if suffix == ".mkv" else ("mov" in fmt)
    assert mc.frame_count(p) == 30
    assert [t for t, _, _ in mc.stream_summary(p)] == ["video", "audio"]


def test_output_is_deterministic(tmp_path: Path) -> None:
    kw = dict(seconds=1.0, audio_tracks=2, subtitles=True, flash_at=0.5, metadata={"title": "t"})
    a = clips.make_clip(tmp_path / "a.mp4", **kw)
    b = clips.make_clip(tmp_path / "b.mp4", **kw)
    assert _sha(a) == _sha(b)
    f1 = clips.make_clip(tmp_path / "f1.mkv", moving_face=True, seconds=0.5)
    f2 = clips.make_clip(tmp_path / "f2.mkv", moving_face=True, seconds=0.5)
    assert _sha(f1) == _sha(f2)


def test_odd_size_uses_444_and_explicit_420_is_refused(tmp_path: Path) -> None:
    p = clips.make_clip(tmp_path / "odd.mp4", width=323, height=241, seconds=0.5)
    v = mc.video_stream(p)
    assert (v["width"], v["height"]) == (323, 241)
    assert mc.colour(p)["pix_fmt"] == "yuv444p"
    assert mc.frame_count(p) == 15
    with pytest.raises(ValueError):
        clips.make_clip(tmp_path / "bad.mp4", width=323, height=241, pix_fmt="yuv420p")
    for kw in (dict(hdr10=True), dict(moving_face=True), dict(flash_at=0.2, audio_tracks=1)):
        q = clips.make_clip(tmp_path / "odd2.mkv", width=321, height=181, seconds=0.5, **kw)
        v = mc.video_stream(q)
        assert (v["width"], v["height"]) == (321, 181), kw
        assert mc.colour(q)["pix_fmt"] == ("yuv444p10le" if kw.get("hdr10") else "yuv444p")


def test_other_codecs(tmp_path: Path) -> None:
    h = clips.make_clip(tmp_path / "h.mkv", codec="libx265", seconds=0.5)
    m = clips.make_clip(tmp_path / "m.mp4", codec="mpeg4", seconds=0.5)
    assert mc.video_stream(h)["codec_name"] == "hevc"
    assert mc.video_stream(m)["codec_name"] == "mpeg4"
    assert mc.frame_count(h) == mc.frame_count(m) == 15


# --------------------------------------------------------------------------- timing


def test_vfr_has_irregular_frame_durations(tmp_path: Path) -> None:
    p = clips.make_clip(tmp_path / "vfr.mp4", vfr=True)
    times = mc.video_frame_times(p)
    planned = clips.planned_frame_times(vfr=True)
    assert len(times) == len(planned) == 45
    mc.assert_same_frame_times(times, planned, tol_s=1e-3)
    durations = np.round(np.diff(times) * 30).astype(int)
    assert set(durations.tolist()) == {1, 2}  # 1/30 s and 1/15 s frames
    assert sorted(times) == times


def test_vfr_survives_in_mkv(tmp_path: Path) -> None:
    p = clips.make_clip(tmp_path / "vfr.mkv", vfr=True, seconds=1.0)
    mc.assert_same_frame_times(p, clips.planned_frame_times(vfr=True, seconds=1.0), tol_s=1e-3)


def test_start_time_offsets_audio_and_video(tmp_path: Path) -> None:
    p = clips.make_clip(tmp_path / "st.mp4", start_time=1.5, audio_tracks=2)
    times = mc.video_frame_times(p)
    assert times[0] == pytest.approx(1.5, abs=1e-3)
    mc.assert_same_frame_times(times, clips.planned_frame_times(start_time=1.5), tol_s=1e-3)
    st = mc.start_times(p)
    assert st["format"] == pytest.approx(1.5, abs=FRAME)
    # AAC's encoder delay (1024 samples = 21.3 ms) shows in the audio start_time.
    for kind, t in st["streams"]:
        assert t == pytest.approx(1.5, abs=FRAME), kind
    mc.assert_av_sync(p, tol_s=FRAME, flash=False)


def test_flash_and_click_coincide(tmp_path: Path) -> None:
    p = clips.make_clip(tmp_path / "f.mp4", flash_at=1.0, audio_tracks=2)
    assert mc.flash_time(p) == pytest.approx(1.0, abs=1e-3)
    assert mc.click_time(p, 0) == pytest.approx(1.0, abs=FRAME)
    luma = mc.frame_luma(p)
    assert luma.max() > 200 and np.median(luma) < 40  # dark except one white frame
    assert int((luma > 128).sum()) == 1
    res = mc.assert_av_sync(p, tol_s=FRAME, flash=True)
    assert abs(res["flash_time"] - res["click_time"]) <= FRAME
    # Track 1 is a plain tone, not a click: its loudest sample is anywhere.
    pcm, rate, _ = mc.audio_samples(p, 1)
    assert rate == 48000 and len(pcm) == pytest.approx(2 * rate, abs=2048)


def test_flash_with_vfr_offset_in_mkv(tmp_path: Path) -> None:
    p = clips.make_clip(tmp_path / "f.mkv", flash_at=0.7, vfr=True, start_time=1.5, audio_tracks=1)
    ft, ct = mc.flash_time(p), mc.click_time(p)
    planned = clips.planned_frame_times(vfr=True, start_time=1.5)
    expect = min(planned, key=lambda t: abs(t - 1.5 - 0.7))
    assert ft == pytest.approx(expect, abs=2e-3)
    assert abs(ft - ct) <= FRAME


def test_av_sync_check_catches_shifted_audio(tmp_path: Path) -> None:
    src = clips.make_clip(tmp_path / "f.mp4", flash_at=1.0, audio_tracks=1)
    shifted = tmp_path / "shifted.mp4"
    argv = [
        clips.ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), "-itsoffset", "0.2", "-i", str(src),
        "-map", "0:v", "-map", "1:a", "-c", "copy", str(shifted),
    ]
    subprocess.run(argv, check=True, capture_output=True)
    with pytest.raises(AssertionError):
        mc.assert_av_sync(shifted, tol_s=FRAME)


def test_assert_same_frame_times_detects_differences(tmp_path: Path) -> None:
    a = clips.make_clip(tmp_path / "a.mp4", seconds=1.0)
    b = clips.make_clip(tmp_path / "b.mp4", seconds=1.0, vfr=True)
    mc.assert_same_frame_times(a, a)
    with pytest.raises(AssertionError):
        mc.assert_same_frame_times(a, b, tol_s=1e-3)
    with pytest.raises(AssertionError):
        mc.assert_same_frame_times([0.0, 0.1], [0.0, 0.2], tol_s=0.01)


# --------------------------------------------------------------------------- GOP


def test_huge_gop_gives_one_keyframe(tmp_path: Path) -> None:
    kw = dict(width=64, height=36, seconds=10.0, flash_at=5.0)  # 300 frames, one scene change
    one = clips.make_clip(tmp_path / "one.mp4", gop=10**6, **kw)
    default = clips.make_clip(tmp_path / "default.mp4", **kw)
    assert mc.frame_count(one) == 300
    assert mc.keyframe_count(one) == 1
    assert mc.keyframe_count(default) >= 2  # x264's default keyint is 250


def test_gop_and_bframes(tmp_path: Path) -> None:
    p = clips.make_clip(tmp_path / "g.mp4", gop=10, bframes=2)
    pk = mc.video_packets(p)
    assert len(pk) == 60
    assert sum(q["key"] for q in pk) == 6
    pts = [q["pts"] for q in pk]
    assert pts != sorted(pts)  # B-frames: decode order differs from presentation order
    h = clips.make_clip(tmp_path / "h.mkv", codec="libx265", gop=15, bframes=3)
    assert mc.keyframe_count(h) == 4
    nob = clips.make_clip(tmp_path / "nob.mp4", bframes=0)
    pts = [q["pts"] for q in mc.video_packets(nob)]
    assert pts == sorted(pts)


# --------------------------------------------------------------------------- colour, rotation


def test_hdr10(tmp_path: Path) -> None:
    p = clips.make_clip(tmp_path / "hdr.mp4", hdr10=True, seconds=0.5)
    c = mc.colour(p)
    assert c["bits"] == 10 and c["pix_fmt"] == "yuv420p10le"
    assert (c["color_primaries"], c["color_transfer"], c["color_space"]) == ("bt2020", "smpte2084", "bt2020nc")
    v = mc.video_stream(p)
    assert v["codec_name"] == "hevc" and v["profile"] == "Main 10"
    md = mc.mastering_display(p)
    assert md is not None and md.get("max_luminance") == "10000000/10000"


def test_sdr_is_tagged_bt709(tmp_path: Path) -> None:
    c = mc.colour(clips.make_clip(tmp_path / "s.mp4", seconds=0.5))
    assert c == {
        "pix_fmt": "yuv420p", "color_primaries": "bt709", "color_transfer": "bt709",
        "color_space": "bt709", "color_range": "tv", "bits": 8,
    }


@pytest.mark.parametrize("deg", [90, 180, 270])
def test_rotation(tmp_path: Path, deg: int) -> None:
    p = clips.make_clip(tmp_path / f"r{deg}.mp4", rotation=deg, seconds=0.5)
    assert mc.rotation(p) == deg
    v = mc.video_stream(p)
    assert (v["width"], v["height"]) == (320, 180)  # stored unrotated


# --------------------------------------------------------------------------- streams, tags


@pytest.mark.parametrize("suffix,sub_codec", [(".mp4", "mov_text"), (".mkv", "subrip"), (".mov", "mov_text")])
def test_audio_tracks_and_subtitles(tmp_path: Path, suffix: str, sub_codec: str) -> None:
    p = clips.make_clip(tmp_path / f"av{suffix}", audio_tracks=2, subtitles=True, seconds=1.0)
    assert mc.stream_summary(p) == [
        ("video", "h264", None), ("audio", "aac", "eng"), ("audio", "aac", "fra"), ("subtitle", sub_codec, "eng"),
    ]
    for k, tone in enumerate(clips.AUDIO_TONES_HZ[:2]):
        pcm, rate, _ = mc.audio_samples(p, k)
        spec = np.abs(np.fft.rfft(pcm[rate // 10 : rate // 10 + rate // 2].astype(float)))
        peak_hz = np.argmax(spec) * rate / (rate // 2)
        assert peak_hz == pytest.approx(tone, abs=4)
    astreams = [s for s in mc.ffprobe_json(p)["streams"] if s["codec_type"] == "audio"]
    assert all(s["sample_rate"] == "48000" for s in astreams)


def test_metadata_tags(tmp_path: Path) -> None:
    p = clips.make_clip(tmp_path / "m.mov", seconds=0.5, metadata={"title": "Farm test", "comment": "hello"})
    tags = mc.container_tags(p)
    assert tags["title"] == "Farm test" and tags["comment"] == "hello"


# --------------------------------------------------------------------------- faces


def _cascade():
    import cv2

    c = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    assert not c.empty()
    return c


def test_moving_face_is_detected(tmp_path: Path) -> None:
    import av

    p = clips.make_clip(tmp_path / "face.mp4", moving_face=True)
    assert mc.frame_count(p) == 60
    cascade = _cascade()
    hits, centres = 0, []
    with av.open(str(p)) as f:
        for i, fr in enumerate(f.decode(video=0)):
            if i % 10:
                continue
            faces = cascade.detectMultiScale(fr.to_ndarray(format="gray"), 1.1, 4)
            if len(faces):
                hits += 1
                x, y, w, h = max(faces, key=lambda r: r[2] * r[3])
                centres.append((x + w / 2, y + h / 2))
                assert 0.12 * 180 <= h <= 0.4 * 180  # ~25% of the height
    assert hits >= 4
    assert len({(round(x / 8), round(y / 8)) for x, y in centres}) >= 3  # the face moves


def test_face_images(tmp_path: Path) -> None:
    import cv2

    face = clips.make_face_image(tmp_path / "face.jpg")
    noface = clips.make_no_face_image(tmp_path / "noface.jpg")
    assert face.read_bytes()[:2] == b"\xff\xd8" and noface.read_bytes()[:2] == b"\xff\xd8"
    cascade = _cascade()
    assert len(cascade.detectMultiScale(cv2.imread(str(face), cv2.IMREAD_GRAYSCALE), 1.1, 4)) == 1
    assert len(cascade.detectMultiScale(cv2.imread(str(noface), cv2.IMREAD_GRAYSCALE), 1.1, 4)) == 0


# --------------------------------------------------------------------------- hostile inputs


def _probe_raw(path: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [mc.ffprobe_exe(), "-v", "error", "-of", "json", "-show_format", "-show_streams", *extra, str(path)],
        capture_output=True,
    )


def _video_streams(path: Path) -> list[dict]:
    r = _probe_raw(path)
    if r.returncode != 0:
        return []
    return [s for s in json.loads(r.stdout)["streams"] if s["codec_type"] == "video" and s["codec_name"] != "png"]


@pytest.mark.parametrize("kind", ["text", "empty", "truncated", "png", "zero_frames"])
def test_not_video_has_no_usable_video(tmp_path: Path, kind: str) -> None:
    p = clips.make_not_video(tmp_path / "x.mp4", kind)
    assert p.exists()
    assert not _video_streams(p)


def test_truncated_faststart_is_a_damaged_mp4(tmp_path: Path) -> None:
    p = clips.make_not_video(tmp_path / "x.mp4", "truncated_faststart")
    full = clips.make_clip(tmp_path / "full.mp4", seconds=1.0, audio_tracks=1)
    assert p.stat().st_size < 0.5 * full.stat().st_size
    # The index promises 30 frames, but the data for most of them is missing.
    assert _video_streams(p) and mc.frame_count(p) < 30


def test_png_named_mp4_is_an_image(tmp_path: Path) -> None:
    p = clips.make_not_video(tmp_path / "x.mp4", "png")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_audio_only(tmp_path: Path) -> None:
    p = clips.make_not_video(tmp_path / "x.m4a", "audio_only")
    assert mc.stream_summary(p) == [("audio", "aac", None)]


def test_playlists_point_at_other_local_files(tmp_path: Path) -> None:
    m3u8 = clips.make_not_video(tmp_path / "list.mp4", "m3u8")
    target = tmp_path / "list.target.ts"
    assert target.exists() and str(target.resolve()) in m3u8.read_text()
    # ffprobe sniffs the content, not the name: this ".mp4" opens as HLS and reads the target.
    r = _probe_raw(m3u8)
    assert r.returncode == 0 and json.loads(r.stdout)["format"]["format_name"] == "hls"

    cat = clips.make_not_video(tmp_path / "cat.mp4", "ffconcat")
    assert cat.read_text().startswith("ffconcat version 1.0")
    r = _probe_raw(cat, "-f", "concat", "-safe", "0")
    assert r.returncode == 0 and any(s["codec_type"] == "video" for s in json.loads(r.stdout)["streams"])


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        clips.make_not_video(tmp_path / "x.mp4", "nope")
