"""Which of a source's other streams the output keeps, and the sentence for each it cannot."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from farm.media.join import keeps_stream, output_video_index, streams_not_kept, uses_free_tags
from farm.media.media_info import MediaInfo, PacketInfo, StreamInfo, VideoInfo


def info(demuxer: str, suffix: str, streams: list[StreamInfo], video_index: int = 0,
         brand: str | None = None) -> MediaInfo:
    video = VideoInfo(index=video_index, codec="h264", profile="High", width=320, height=180, pix_fmt="yuv420p",
                      bit_depth=8, time_base=Fraction(1, 15360), fps=Fraction(30), frame_count=1, first_pts=0,
                      duration_s=1 / 30)
    return MediaInfo(path=Path(f"/w/src{suffix}"), format_name=demuxer, demuxer=demuxer, size_bytes=1,
                     duration_s=1 / 30, start_time_s=0.0, video=video, streams=tuple(streams),
                     packets=(PacketInfo(0, 0, True, 512),), tags={"major_brand": brand} if brand else {})


def test_other_video_streams_are_kept_everywhere_and_cover_art_where_it_fits():
    second = StreamInfo(1, "video", "h264")
    cover = StreamInfo(2, "video", "png", attached_pic=True)
    for muxer in ("mp4", "mov", "matroska", "mpegts", "avi", "nut"):
        assert keeps_stream(second, muxer)
    assert [m for m in ("mp4", "ipod", "mov", "3gp", "matroska") if keeps_stream(cover, m)] == ["mp4", "ipod",
                                                                                                 "matroska"]


def test_an_mp4_keeping_cover_art_writes_itunes_tags_and_a_mov_says_it_drops_it():
    streams = [StreamInfo(0, "video", "h264"), StreamInfo(1, "audio", "aac"),
               StreamInfo(2, "video", "png", attached_pic=True)]
    mp4 = info("mov", ".mp4", streams, brand="isom")
    assert not uses_free_tags(mp4, "mp4") and streams_not_kept(mp4, "mp4") == []
    assert uses_free_tags(info("mov", ".mp4", streams[:2], brand="isom"), "mp4")
    mov = info("mov", ".mov", streams, brand="qt  ")
    assert uses_free_tags(mov, "mov")
    assert streams_not_kept(mov, "mov") == [
        "stream 2 (cover art, png) is not copied into the output: a mov file cannot hold cover art "
        "(MP4 and Matroska can)"]


def test_data_tracks_of_mp4_are_named_unless_they_are_timecode_tracks():
    streams = [StreamInfo(0, "video", "h264"), StreamInfo(1, "data", None, timecode="01:00:00:00"),
               StreamInfo(2, "data", "bin_data")]
    notes = streams_not_kept(info("mov", ".mp4", streams), "mp4")
    assert len(notes) == 1 and notes[0].startswith("stream 2 (data stream, bin_data) is not copied")
    assert streams_not_kept(info("mpegts", ".ts", streams), "mpegts") == []


def test_the_processed_video_keeps_its_place_less_the_streams_dropped_before_it():
    streams = [StreamInfo(0, "data", "bin_data"), StreamInfo(1, "video", "png", attached_pic=True),
               StreamInfo(2, "video", "h264"), StreamInfo(3, "audio", "aac")]
    src = info("mov", ".mov", streams, video_index=2)
    assert output_video_index(src, "mov") == 0
    assert output_video_index(info("nut", ".nut", streams, video_index=2), "nut") == 2
