"""ffmpeg command lines (pure builders, compared by equality) and container sniffing."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from farm.errors import MediaError
from farm.media.ffmpeg import (
    FinalizeSpec,
    base_args,
    ffmpeg_exe,
    file_url,
    finalize_argv,
    input_args,
    range_bsf,
    run_ffmpeg,
)
from farm.media.formats import demuxer_for_head, output_muxer
from farm.media.join import finalize_spec
from farm.media.media_info import MediaInfo, PacketInfo, StreamInfo, VideoInfo


def media_info(path: str, demuxer: str, streams: list[StreamInfo], brand: str | None = None) -> MediaInfo:
    video = VideoInfo(
        index=next(s.index for s in streams if s.type == "video"), codec="h264", profile="High",
        width=320, height=180, pix_fmt="yuv420p", bit_depth=8, time_base=Fraction(1, 15360),
        fps=Fraction(30), frame_count=1, first_pts=0, duration_s=1 / 30,
    )
    return MediaInfo(
        path=Path(path), format_name=demuxer, demuxer=demuxer, size_bytes=1, duration_s=1 / 30,
        start_time_s=0.0, video=video, streams=tuple(streams),
        packets=(PacketInfo(0, 0, True, 512),), tags={"major_brand": brand} if brand else {},
    )


def test_base_and_input_args() -> None:
    assert base_args("ffmpeg") == ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    assert input_args("/data/in.mp4", "mov") == [
        "-protocol_whitelist", "file", "-f", "mov", "-i", "file:/data/in.mp4",
    ]
    assert file_url("/x/concat:evil.mp4") == "file:/x/concat:evil.mp4"


def test_input_args_refuse_other_demuxers() -> None:
    for bad in ("hls", "concat", "image2", "lavfi"):
        with pytest.raises(MediaError):
            input_args("/data/in", bad)


def test_finalize_argv_mp4() -> None:
    spec = FinalizeSpec(
        video_path=Path("/w/v.mov"), video_demuxer="mov", source_path=Path("/w/src.mp4"),
        source_demuxer="mov", out_path=Path("/w/out.mp4"), muxer="mp4",
        stream_map=((1, 0), (0, 0), (1, 2)), meta_from=(0, 1, 2),
        metadata=(("comment", "synthetic media made by farm; job=j1"), ("farm_job_id", "j1")),
        video_timescale=15360,
    )
    assert finalize_argv("ffmpeg", spec) == [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-protocol_whitelist", "file", "-f", "mov", "-i", "file:/w/v.mov",
        "-protocol_whitelist", "file", "-f", "mov", "-i", "file:/w/src.mp4",
        "-map", "1:0", "-map", "0:0", "-map", "1:2",
        "-c", "copy", "-copyts", "-map_metadata", "1", "-map_chapters", "1",
        "-map_metadata:s:0", "1:s:0", "-map_metadata:s:1", "1:s:1", "-map_metadata:s:2", "1:s:2",
        "-metadata", "comment=synthetic media made by farm; job=j1", "-metadata", "farm_job_id=j1",
        "-movflags", "+use_metadata_tags",
        "-video_track_timescale", "15360", "-movie_timescale", "15360",
        "-f", "mp4", "file:/w/out.mp4",
    ]


def test_finalize_argv_mpegts_keeps_timestamps() -> None:
    spec = FinalizeSpec(
        video_path=Path("/w/v.mov"), video_demuxer="mov", source_path=Path("/w/src.ts"),
        source_demuxer="mpegts", out_path=Path("/w/out.ts"), muxer="mpegts",
        stream_map=((0, 0),), meta_from=(0,),
    )
    argv = finalize_argv("ff", spec)
    assert argv[-5:] == ["-mpegts_copyts", "1", "-f", "mpegts", "file:/w/out.ts"]
    assert "-movflags" not in argv


def test_finalize_argv_restores_a_fractional_time_base() -> None:
    spec = FinalizeSpec(
        video_path=Path("/w/v.mov"), video_demuxer="mov", source_path=Path("/w/src.avi"),
        source_demuxer="avi", out_path=Path("/w/out.avi"), muxer="avi",
        stream_map=((1, 1), (0, 0)), meta_from=(1, 0), video_time_base="1001/30000",
    )
    argv = finalize_argv("ff", spec)
    i = argv.index("-bsf:1")
    assert argv[i:i + 2] == ["-bsf:1", "setts=time_base=1001/30000"]


def test_a_known_range_is_written_into_the_video_headers_after_the_time_base() -> None:
    assert range_bsf("h264", 1) == "h264_metadata=video_full_range_flag=0"
    assert range_bsf("hevc", 2) == "hevc_metadata=video_full_range_flag=1"
    assert range_bsf("h264", 0) is None and range_bsf("prores", 1) is None
    spec = FinalizeSpec(
        video_path=Path("/w/v.mov"), video_demuxer="mov", source_path=Path("/w/src.mov"),
        source_demuxer="mov", out_path=Path("/w/out.mov"), muxer="mov", stream_map=((0, 0),),
        meta_from=(0,), video_time_base="1001/30000", video_range_bsf=range_bsf("h264", 1),
    )
    argv = finalize_argv("ff", spec)
    i = argv.index("-bsf:0")
    assert argv[i:i + 2] == ["-bsf:0", "setts=time_base=1001/30000,h264_metadata=video_full_range_flag=0"]
    assert argv.count("-bsf:0") == 1


def test_finalize_argv_tags_hevc_for_apple_players() -> None:
    spec = FinalizeSpec(
        video_path=Path("/w/v.mp4"), video_demuxer="mov", source_path=Path("/w/src.mov"),
        source_demuxer="mov", out_path=Path("/w/out.mov"), muxer="mov",
        stream_map=((0, 0), (1, 1)), meta_from=(0, 1), write_colr=True, video_tag="hvc1",
    )
    argv = finalize_argv("ff", spec)
    assert argv[argv.index("-tag:0") + 1] == "hvc1"
    assert argv[argv.index("-movflags") + 1] == "+use_metadata_tags+write_colr"


def test_finalize_spec_maps_streams_in_source_order() -> None:
    # Given an mkv whose video is the second stream, with audio, subtitles, data and a font
    info = media_info("/w/src.mkv", "matroska", [
        StreamInfo(0, "audio", "aac", "eng"),
        StreamInfo(1, "video", "h264"),
        StreamInfo(2, "subtitle", "subrip", "eng"),
        StreamInfo(3, "data", None),
        StreamInfo(4, "attachment", "ttf"),
        StreamInfo(5, "video", "mjpeg", attached_pic=True),
    ])
    spec = finalize_spec(info, Path("/w/src.mkv"), Path("/w/v.mov"), Path("/w/out.mkv"),
                         {"farm_job_id": "j1"}, None, "h264", video_demuxer="mov")
    # Then the processed video takes the source video's place; Matroska drops data streams
    assert spec.muxer == "matroska"
    assert spec.stream_map == ((1, 0), (0, 0), (1, 2), (1, 4), (1, 5))
    assert spec.meta_from == (0, 1, 2, 4, 5)
    assert spec.metadata == (("farm_job_id", "j1"),)


@pytest.mark.parametrize(
    ("head", "demuxer"),
    [
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "mov"),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", "mov"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", "matroska"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "avi"),
        (b"nut/multimedia container\x00\x00", "nut"),
        (bytes([0x47] + [0] * 187) * 5, "mpegts"),
        (bytes([0, 0, 0, 0, 0x47] + [0] * 187) * 5, "mpegts"),
        (b"#EXTM3U\n#EXT-X-VERSION:3\n", None),
        (b"ffconcat version 1.0\nfile 'a.mp4'\n", None),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", None),
        (b"", None),
    ],
)
def test_demuxer_for_head(head: bytes, demuxer: str | None) -> None:
    assert demuxer_for_head(head) == demuxer


@pytest.mark.parametrize(
    ("demuxer", "brand", "suffix", "codecs", "muxer"),
    [
        ("mov", "isom", ".mp4", {"h264", "aac"}, "mp4"),
        ("mov", "qt  ", ".mp4", {"h264"}, "mov"),
        ("mov", None, ".mov", {"h264"}, "mov"),
        ("mov", "3gp4", ".3gp", {"h264"}, "3gp"),
        ("matroska", None, ".mkv", {"h264"}, "matroska"),
        ("matroska", None, ".webm", {"vp9", "opus"}, "webm"),
        ("matroska", None, ".webm", {"h264", "opus"}, "matroska"),
        ("mpegts", None, ".ts", {"h264"}, "mpegts"),
    ],
)
def test_output_muxer(demuxer: str, brand: str | None, suffix: str, codecs: set[str], muxer: str) -> None:
    assert output_muxer(demuxer, brand, suffix, codecs) == muxer


def test_ffmpeg_exe_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_FFMPEG", "/opt/ff/bin/ffmpeg")
    assert ffmpeg_exe() == "/opt/ff/bin/ffmpeg"
    monkeypatch.delenv("FARM_FFMPEG")
    assert Path(ffmpeg_exe()).name.startswith("ffmpeg")


def test_run_ffmpeg_raises_with_stderr_tail(tmp_path: Path) -> None:
    missing = tmp_path / "missing.mp4"
    with pytest.raises(MediaError) as err:
        run_ffmpeg(base_args(ffmpeg_exe()) + input_args(missing, "mov") + ["-f", "null", "-"], what="read it")
    assert "read it" in str(err.value) and "missing.mp4" in str(err.value)


def test_finalize_spec_refuses_odd_tag_keys() -> None:
    info = media_info("/w/src.mp4", "mov", [StreamInfo(0, "video", "h264")])
    with pytest.raises(MediaError, match="metadata keys"):
        finalize_spec(info, Path("/w/src.mp4"), Path("/w/v.mp4"), Path("/w/o.mp4"),
                      {"a=b": "x"}, 15360, "h264", "mov")
