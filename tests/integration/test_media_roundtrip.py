"""probe -> plan -> split -> transcode (identity) -> join -> verify on real tiny clips.

Each output is checked twice: by farm.media.verify and, independently, with Debian's
ffprobe/ffmpeg through tests/media_checks.py.
"""

from __future__ import annotations

import copy
import json
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from farm.media.chunk_codec import choose_encoder, transcode_chunk
from farm.media.formats import keeps_free_tags
from farm.media.join import join_chunks, muxer_for
from farm.media.media_info import MediaInfo
from farm.media.plan import plan_chunks
from farm.media.probe import probe
from farm.media.split import split_chunks
from farm.media.verify import verify_output
from tests import media_checks as mc
from tests.clips import ffmpeg_exe as clips_ffmpeg
from tests.clips import make_clip

META = {
    "comment": "synthetic media made by farm; job=j-42",
    "farm_job_id": "j-42",
    "farm_models": "inswapper_128,gfpgan_1.4",
}

# make_clip arguments (1 s clips unless the case needs more); "suffix" picks the container
CASES: dict[str, dict[str, Any]] = {
    "h264_aac_mp4_gop_aligned": dict(suffix=".mp4", seconds=2.0, audio_tracks=1, gop=15, bframes=2),
    "vfr_mp4": dict(suffix=".mp4", vfr=True, audio_tracks=1),
    "vfr_mkv": dict(suffix=".mkv", vfr=True, audio_tracks=1, bframes=3),
    "hdr10_hevc_mp4": dict(suffix=".mp4", hdr10=True, gop=8, audio_tracks=1),
    "hdr10_hevc_mkv": dict(suffix=".mkv", hdr10=True),
    "rotation_90_mp4": dict(suffix=".mp4", rotation=90, audio_tracks=1),
    "odd_size_444_mp4": dict(suffix=".mp4", width=323, height=241),
    "no_audio_mov": dict(suffix=".mov"),
    "two_audio_subs_mp4": dict(suffix=".mp4", audio_tracks=2, subtitles=True),
    "two_audio_subs_mkv": dict(suffix=".mkv", audio_tracks=2, subtitles=True),
    "start_time_mp4": dict(suffix=".mp4", start_time=1.5, audio_tracks=1, bframes=2),
    "start_time_mkv": dict(suffix=".mkv", start_time=1.5, audio_tracks=1),
    "one_keyframe_mp4": dict(suffix=".mp4", gop=10**6, bframes=3, audio_tracks=1),
    "flash_click_mp4": dict(suffix=".mp4", flash_at=0.5, audio_tracks=1, gop=10),
}

# copies of an mp4 clip in the other accepted containers: (suffix, ffmpeg args, fps)
REMUXED: dict[str, tuple[str, list[str], Fraction]] = {
    "mpegts": (".ts", ["-c", "copy", "-f", "mpegts"], Fraction(30)),
    "mpegts_ntsc": (".ts", ["-c", "copy", "-f", "mpegts"], Fraction(30000, 1001)),
    "nut": (".nut", ["-c", "copy", "-f", "nut"], Fraction(30)),
    "avi_mpeg4_ntsc": (".avi", ["-c:v", "mpeg4", "-q:v", "5", "-c:a", "pcm_s16le", "-f", "avi"],
                       Fraction(30000, 1001)),
}


@pytest.fixture(autouse=True)
def cached_ffprobe(monkeypatch: pytest.MonkeyPatch) -> None:
    """media_checks asks ffprobe for the same stream list many times; files do not change
    once written, so answer repeated questions from a per-test cache (~70 ms each)."""
    real = mc.ffprobe_json
    cache: dict[tuple[str, int], dict[str, Any]] = {}

    def cached(path: mc.PathLike) -> dict[str, Any]:
        key = (str(path), Path(path).stat().st_mtime_ns)
        if key not in cache:
            cache[key] = real(path)
        return copy.deepcopy(cache[key])

    monkeypatch.setattr(mc, "ffprobe_json", cached)


def run_media_pipeline(src: Path, work: Path, chunk_frames: int | None = None) -> tuple[MediaInfo, int, Path]:
    """The farm's media path with an identity process; returns (probe, chunks, output)."""
    info = probe(src)
    n = chunk_frames or max(1, info.video.frame_count // 3)
    plans = plan_chunks(info, n)
    inputs = split_chunks(src, info, plans, work / "in")
    settings = choose_encoder(info.video)
    outputs = []
    (work / "out").mkdir(parents=True, exist_ok=True)
    for plan, seg in zip(plans, inputs):
        out = work / "out" / seg.name
        assert transcode_chunk(seg, out, plan, settings, lambda frame: frame) == plan.frame_count
        outputs.append(out)
    final = work / ("final" + src.suffix)
    join_chunks(outputs, src, info, final, META)
    verify_output(info, final, META)
    return info, len(plans), final


def small_frames(path: Path, width: int = 64, height: int = 36) -> np.ndarray:
    """Every frame of the video, decoded by ffmpeg 5.1 to width x height gray (uint8)."""
    raw = subprocess.run(
        [mc.ffmpeg_exe(), "-v", "error", "-nostdin", "-noautorotate", "-i", str(path), "-map", "0:v:0",
         "-vf", f"scale={width}:{height}:flags=area,format=gray", "-fps_mode", "passthrough",
         "-f", "rawvideo", "pipe:1"],
        check=True, capture_output=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width)


def assert_same_pictures(src: Path, out: Path, max_mean_abs_diff: float = 4.0) -> None:
    """Frame n of the output shows frame n of the source (an identity re-encode): a lost,
    repeated or badly decoded (missing pre-roll) frame would differ a lot."""
    a, b = small_frames(src).astype(np.int16), small_frames(out).astype(np.int16)
    assert a.shape == b.shape
    diff = np.abs(a - b).mean(axis=(1, 2))
    assert diff.max() <= max_mean_abs_diff, f"frame {int(diff.argmax())} differs by {diff.max():.1f}"


def half_tick(info: MediaInfo) -> float:
    return float(Fraction(info.video.time_base) / 2) + 2e-6   # ffprobe prints 6 decimals


def assert_same_media(src: Path, out: Path, info: MediaInfo, *, audio: bool, flash: bool = False) -> None:
    """Independent checks with ffprobe/ffmpeg 5.1."""
    mc.assert_same_frame_times(src, out, tol_s=half_tick(info))
    assert_same_pictures(src, out)
    assert mc.stream_summary(out) == mc.stream_summary(src)
    assert mc.rotation(out) == mc.rotation(src)
    assert mc.colour(out) == mc.colour(src)
    vs, vo = mc.video_stream(src), mc.video_stream(out)
    assert (vo["width"], vo["height"]) == (vs["width"], vs["height"])
    assert vo.get("codec_tag_string") == vs.get("codec_tag_string")   # e.g. hvc1 for Apple players
    if keeps_free_tags(muxer_for(info, info.video.codec)):
        tags = mc.container_tags(out)
        for key, value in META.items():
            assert tags.get(key) == value, f"tag {key} missing: {tags}"
    if audio:
        frame_s = 1 / float(info.video.fps)
        result = mc.assert_av_sync(out, tol_s=frame_s, flash=flash)
        starts = mc.start_times(src)["streams"], mc.start_times(out)["streams"]
        for (kind_a, t_a), (kind_b, t_b) in zip(*starts):
            assert kind_a == kind_b and abs(t_a - t_b) <= frame_s, starts
        if flash:
            assert abs(result["flash_time"] - mc.flash_time(src)) < 1e-3
            assert abs(result["click_time"] - mc.click_time(src)) < frame_s


@pytest.mark.parametrize("case", sorted(CASES))
def test_roundtrip(case: str, tmp_path: Path) -> None:
    # Given a generated clip
    kw = dict(CASES[case])
    suffix = kw.pop("suffix")
    kw.setdefault("seconds", 1.0)
    src = make_clip(tmp_path / f"src{suffix}", **kw)
    # When it goes through the farm's media path in >= 3 chunks
    info, chunks, out = run_media_pipeline(src, tmp_path / "work")
    # Then the output matches the source
    assert chunks >= 3
    assert_same_media(src, out, info, audio=bool(kw.get("audio_tracks")), flash=kw.get("flash_at") is not None)
    if kw.get("hdr10"):
        assert mc.mastering_display(out) is not None
        assert mc.colour(out)["bits"] == 10


@pytest.mark.parametrize("case", sorted(REMUXED))
def test_roundtrip_other_containers(case: str, tmp_path: Path) -> None:
    # Given an mp4 clip remuxed (or re-encoded) into another accepted container
    suffix, args, fps = REMUXED[case]
    base = make_clip(tmp_path / "base.mp4", seconds=1.0, audio_tracks=1, gop=8, bframes=2,
                     fps=fps)  # type: ignore[arg-type]
    src = tmp_path / f"src{suffix}"
    subprocess.run([clips_ffmpeg(), "-v", "error", "-y", "-i", str(base), *args, str(src)], check=True)
    # When it goes through the farm's media path
    info, chunks, out = run_media_pipeline(src, tmp_path / "work")
    # Then the timing, streams (apart from the video codec) and sync are kept
    assert chunks >= 3
    mc.assert_same_frame_times(src, out, tol_s=half_tick(info))
    assert mc.stream_summary(out)[1:] == mc.stream_summary(src)[1:]
    mc.assert_av_sync(out, tol_s=1 / float(info.video.fps), flash=False)


# open GOPs: leading pictures are decoded after their keyframe but shown before it
OPEN_GOP: dict[str, tuple[str, list[str]]] = {
    "hevc_mp4": (".mp4", ["-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-x265-params",
                          "log-level=error:keyint=10:min-keyint=10:open-gop=1:bframes=3:b-adapt=0:scenecut=0"]),
    "h264_mkv": (".mkv", ["-c:v", "libx264", "-preset", "veryfast", "-x264-params",
                          "keyint=10:min-keyint=10:open-gop=1:bframes=3:b-adapt=0:scenecut=0"]),
}


@pytest.mark.parametrize("chunk_frames", [10, 9])
@pytest.mark.parametrize("case", sorted(OPEN_GOP))
def test_roundtrip_open_gop(case: str, chunk_frames: int, tmp_path: Path) -> None:
    # Given an open-GOP clip (keyframe every 10 frames, 3 B-frames)
    suffix, args = OPEN_GOP[case]
    src = tmp_path / f"src{suffix}"
    subprocess.run([clips_ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=1.5",
                    *args, "-pix_fmt", "yuv420p", str(src)], check=True)
    # When chunks are cut at keyframes (10) or mid-GOP at a leading picture (9: needs pre-roll)
    info, chunks, out = run_media_pipeline(src, tmp_path / "work", chunk_frames)
    # Then every picture comes out whole and on time
    assert chunks >= 3
    mc.assert_same_frame_times(src, out, tol_s=half_tick(info))
    assert_same_pictures(src, out)


# other source codecs (the farm re-encodes them with libx264): (suffix, ffmpeg video args)
OTHER_CODECS: dict[str, tuple[str, list[str]]] = {
    "prores_mov": (".mov", ["-c:v", "prores_ks", "-profile:v", "0", "-pix_fmt", "yuv422p10le"]),
    "vp9_webm": (".webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "10"]),
    "av1_mp4": (".mp4", ["-c:v", "libsvtav1", "-preset", "12", "-g", "10", "-svtav1-params", "lp=1"]),
    "mjpeg_avi": (".avi", ["-c:v", "mjpeg", "-pix_fmt", "yuvj420p"]),
}


@pytest.mark.parametrize("case", sorted(OTHER_CODECS))
def test_roundtrip_other_codecs(case: str, tmp_path: Path) -> None:
    # Given a clip in another codec, with audio
    suffix, args = OTHER_CODECS[case]
    src = tmp_path / f"src{suffix}"
    audio = ["-c:a", {".webm": "libopus", ".avi": "pcm_s16le"}.get(suffix, "aac")]
    subprocess.run([clips_ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=1.2",
                    "-f", "lavfi", "-i", "sine=d=1.2", *args, *audio, str(src)], check=True, capture_output=True)
    # When it goes through the farm's media path
    info, chunks, out = run_media_pipeline(src, tmp_path / "work")
    # Then frames, pictures, timing, audio and pixel format are kept
    assert chunks >= 3
    mc.assert_same_frame_times(src, out, tol_s=half_tick(info))
    assert_same_pictures(src, out, max_mean_abs_diff=6.0)
    assert mc.stream_summary(out)[1:] == mc.stream_summary(src)[1:]
    assert mc.colour(out)["pix_fmt"] == mc.colour(src)["pix_fmt"]
    mc.assert_av_sync(out, tol_s=1 / float(info.video.fps), flash=False)


def chapters(path: Path) -> list[tuple[float, float, str]]:
    data = json.loads(subprocess.run(
        [mc.ffprobe_exe(), "-v", "error", "-of", "json", "-show_chapters", str(path)],
        check=True, capture_output=True).stdout)
    return [(round(float(c["start_time"]), 3), round(float(c["end_time"]), 3), c.get("tags", {}).get("title", ""))
            for c in data.get("chapters", [])]


@pytest.mark.parametrize("suffix", [".mov", ".mkv"])
def test_roundtrip_keeps_chapters_timecode_and_tags(suffix: str, tmp_path: Path) -> None:
    # Given a clip with chapters, a start timecode, a title and stream titles
    base = make_clip(tmp_path / f"base{suffix}", seconds=1.0, audio_tracks=1)
    meta = tmp_path / "meta.txt"
    meta.write_text(";FFMETADATA1\ntitle=Holiday\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=500\ntitle=One\n"
                    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=500\nEND=1000\ntitle=Two\n", encoding="utf-8")
    src = tmp_path / f"src{suffix}"
    subprocess.run([clips_ffmpeg(), "-v", "error", "-y", "-i", str(base), "-i", str(meta), "-map", "0",
                    "-map_metadata", "1", "-map_chapters", "1", "-c", "copy", "-timecode", "01:00:00:00",
                    "-metadata:s:a:0", "title=Stereo mix", str(src)], check=True)
    # When it goes through the farm's media path
    info, chunks, out = run_media_pipeline(src, tmp_path / "work")
    # Then chapters, timecode, title and stream tags are there, beside our tags
    assert chapters(out) == chapters(src) and len(chapters(src)) == 2
    tags = mc.container_tags(out)
    assert tags["title"] == "Holiday" and tags["farm_job_id"] == META["farm_job_id"]
    timecode = lambda p: json.dumps(mc.ffprobe_json(p)).count("01:00:00:00")  # noqa: E731
    assert timecode(out) >= 1 and timecode(src) >= 1
    audio_tags = [[s.get("tags") for s in mc.ffprobe_json(p)["streams"] if s["codec_type"] == "audio"]
                  for p in (src, out)]
    assert audio_tags[0] == audio_tags[1]
    if suffix == ".mkv":   # (MOV keeps no stream titles)
        assert audio_tags[1][0]["title"] == "Stereo mix"
