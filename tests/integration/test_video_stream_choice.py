"""probe() picks the real video stream of a file with several, and refuses to guess.

The rule (farm.media.video_choice.choose_video_stream): cover art and still-image streams are
never the video; of the rest, the one with the most frames; streams within 10% of that
count are rivals, and among rivals the only one flagged `default`, else one at least
twice the pixel area of every other; otherwise the input is refused (exit 2).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import EXIT_REFUSED, InputError
from farm.media.probe import probe
from farm.media.video_choice import VideoCandidate, choose_video_stream
from tests import media_checks as mc
from tests.clips import make_clip, make_cover_art_clip, make_multi_video_clip


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_a_one_frame_still_as_track_0_is_not_the_video(tmp_path: Path, suffix: str) -> None:
    # Given a 512x512 one-frame still as track 0 and the real 50-frame video as track 1
    src = make_multi_video_clip(tmp_path / f"still{suffix}", [(512, 512, 1), (320, 180, 50)])
    # When probed
    info = probe(src)
    # Then the 50-frame stream is the video, and the job can say why
    assert info.video.index == 1
    assert (info.video.frame_count, info.video.width, info.video.height) == (50, 320, 180)
    assert "stream 1" in info.video_choice and "50 frames" in info.video_choice
    frames = {s.index: s.frames for s in info.streams if s.type == "video"}
    assert frames == {0: 1, 1: 50}


def test_a_longer_stream_wins_and_a_smaller_picture_in_picture_of_similar_length_loses(tmp_path: Path) -> None:
    longer = probe(make_multi_video_clip(tmp_path / "longer.mkv", [(320, 180, 20), (160, 90, 50)]))
    assert longer.video.index == 1 and longer.video.frame_count == 50
    pip = probe(make_multi_video_clip(tmp_path / "pip.mkv", [(160, 90, 50), (640, 360, 50)]))
    assert pip.video.index == 1 and pip.video.width == 640


def test_the_default_flag_decides_between_similar_streams(tmp_path: Path) -> None:
    src = make_multi_video_clip(tmp_path / "flagged.mkv", [(320, 180, 50), (320, 180, 48)], default=1)
    info = probe(src)
    assert info.video.index == 1 and info.video.frame_count == 48
    assert "default" in info.video_choice


def test_two_similar_video_streams_are_refused_with_exit_2(tmp_path: Path) -> None:
    src = make_multi_video_clip(tmp_path / "twins.mkv", [(320, 180, 50), (320, 180, 50)])
    with pytest.raises(InputError) as refused:
        probe(src)
    assert refused.value.exit_code == EXIT_REFUSED
    message = str(refused.value)
    assert str(src) in message and "#0" in message and "#1" in message and "50 frames" in message
    assert "-map" in (refused.value.hint or "")


def test_cover_art_is_never_the_video_and_a_single_stream_is_read_once(tmp_path: Path) -> None:
    info = probe(make_cover_art_clip(tmp_path / "cover.mp4"))
    assert info.video.index == 0 and info.video.frame_count == 60
    assert [(s.type, s.codec, s.attached_pic) for s in info.streams] == [
        ("video", "h264", False), ("audio", "aac", False), ("video", "png", True)]
    plain = probe(make_clip(tmp_path / "plain.mp4"))
    assert plain.video_choice == "stream 0, the only video stream"


def test_probe_can_be_told_which_stream_is_the_video(tmp_path: Path) -> None:
    src = make_multi_video_clip(tmp_path / "twins.mkv", [(320, 180, 50), (320, 180, 50)])
    info = probe(src, video_index=1)
    assert info.video.index == 1 and info.video.frame_count == mc.frame_count(src) == 50
    with pytest.raises(InputError, match="stream 2 is not a video stream"):
        probe(src, video_index=2)


def test_choose_video_stream_rule() -> None:
    def cand(index, frames, w=320, h=180, default=False):
        return VideoCandidate(index=index, codec="h264", width=w, height=h, frames=frames, default=default)

    assert choose_video_stream([cand(0, 1, 512, 512), cand(1, 50)])[0] == 1
    assert choose_video_stream([cand(0, 50), cand(1, 44)])[0] == 0              # 44 < 90% of 50
    assert choose_video_stream([cand(0, 50), cand(1, 46, default=True)])[0] == 1
    assert choose_video_stream([cand(0, 50, 1920, 1080), cand(1, 50, 960, 540)])[0] == 0
    with pytest.raises(InputError):
        choose_video_stream([cand(0, 50, 1920, 1080), cand(1, 50, 1440, 1080)])
    with pytest.raises(InputError):
        choose_video_stream([cand(0, 50, default=True), cand(1, 50, default=True)])
