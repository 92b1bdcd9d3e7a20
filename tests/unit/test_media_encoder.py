"""choose_encoder: defaults follow the source, bad choices are refused."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction

import pytest

from farm.errors import InputError
from farm.media.chunk_codec import EncoderSettings, choose_encoder
from farm.media.colour import Colour
from farm.media.media_info import VideoInfo
from farm.state import records

H264 = VideoInfo(
    index=0, codec="h264", profile="High", width=320, height=180, pix_fmt="yuv420p", bit_depth=8,
    time_base=Fraction(1, 15360), fps=Fraction(30), frame_count=60, first_pts=0, duration_s=2.0,
    colour=Colour(1, 1, 1, 1),
)
HDR = dataclasses.replace(
    H264, codec="hevc", pix_fmt="yuv420p10le", bit_depth=10, colour=Colour(9, 16, 9, 1),
    mastering_display="G(8500,39850)B(6550,2300)R(35400,14600)WP(15635,16450)L(10000000,1)",
    content_light="1000,400",
)


def test_defaults_follow_the_source() -> None:
    s = choose_encoder(H264)
    assert (s.codec, s.pix_fmt, s.colour, s.fps) == ("libx264", "yuv420p", Colour(1, 1, 1, 1), Fraction(30))
    assert s.encoder_options() == {"preset": "veryfast", "crf": "18", "x264-params": "force-cfr=1"}
    h = choose_encoder(HDR)
    assert (h.codec, h.pix_fmt) == ("libx265", "yuv420p10le")
    params = h.encoder_options()["x265-params"].split(":")
    assert "hdr10=1" in params and "max-cll=1000,400" in params
    assert f"master-display={HDR.mastering_display}" in params
    other = choose_encoder(dataclasses.replace(H264, codec="mpeg4"))
    assert other.codec == "libx264"


def test_choices_are_validated() -> None:
    with pytest.raises(InputError, match="unknown video encoder"):
        choose_encoder(H264, codec="libfoo")
    with pytest.raises(InputError, match="preset"):
        choose_encoder(H264, preset="warp9")
    with pytest.raises(InputError, match="out of range"):
        choose_encoder(H264, crf=60)
    with pytest.raises(InputError, match="cannot be processed"):
        choose_encoder(dataclasses.replace(H264, pix_fmt="rgb24"))
    s = choose_encoder(H264, codec="libx265", preset="slow", crf=22.5)
    assert s.encoder_options()["crf"] == "22.5" and s.preset == "slow"


def test_avi_gets_no_b_frames() -> None:
    assert choose_encoder(H264, container="avi").options["bf"] == "0"
    assert choose_encoder(dataclasses.replace(H264, container="avi")).options["bf"] == "0"
    assert "bf" not in choose_encoder(H264, container="mov").options


def test_settings_round_trip_through_json() -> None:
    s = choose_encoder(HDR)
    assert records.load(EncoderSettings, json.loads(json.dumps(records.dump(s)))) == s


def test_the_encoder_declares_the_sources_sample_aspect_ratio() -> None:
    # Given an anamorphic NTSC source (720x480 shown 16:9), its SAR is the encoder's
    wide = choose_encoder(dataclasses.replace(H264, width=720, height=480, sar=Fraction(32, 27)))
    assert wide.sar == Fraction(32, 27)
    assert records.dump(wide)["sar"] == "32/27"
    assert records.load(EncoderSettings, json.loads(json.dumps(records.dump(wide)))) == wide
    # A source declaring none gets none; a record stored before the field existed loads as none
    assert choose_encoder(H264).sar is None
    old = {k: v for k, v in records.dump(choose_encoder(H264)).items() if k != "sar"}
    assert records.load(EncoderSettings, old).sar is None


@pytest.mark.parametrize("short, encoder", [
    ("h264", "libx264"), ("H264", "libx264"), ("avc", "libx264"),
    ("hevc", "libx265"), ("h265", "libx265"), ("HEVC", "libx265"),
    ("libx264", "libx264"), ("libx265", "libx265"),
])
def test_short_codec_names_choose_their_encoder(short, encoder) -> None:
    s = choose_encoder(H264, codec=short, preset="medium", crf=20)
    assert (s.codec, s.preset, s.crf) == (encoder, "medium", 20)
    assert records.load(EncoderSettings, json.loads(json.dumps(records.dump(s)))).codec == encoder
    hdr = choose_encoder(HDR, codec=short)
    assert hdr.codec == encoder and hdr.pix_fmt == "yuv420p10le"


@pytest.mark.parametrize("name", ["vp9", "h266", "libfoo", "x26"])
def test_unknown_codec_names_are_refused_listing_the_choices(name) -> None:
    with pytest.raises(InputError, match="unknown video encoder") as info:
        choose_encoder(H264, codec=name)
    assert name in info.value.message and "hevc" in (info.value.hint or "")


def test_nvenc_is_chosen_only_by_name_with_its_exact_options() -> None:
    # The record is complete: every worker encodes with exactly these options
    s = choose_encoder(H264, codec="h264_nvenc", preset="veryfast", crf=20)
    assert (s.codec, s.preset) == ("h264_nvenc", "p2")          # x264 preset names are mapped
    assert s.encoder_options() == {"preset": "p2", "cq": "20", "tune": "hq", "rc": "vbr", "b": "0"}
    assert records.load(EncoderSettings, json.loads(json.dumps(records.dump(s)))) == s
    assert choose_encoder(H264, codec="hevc_nvenc", preset="p6").preset == "p6"
    assert choose_encoder(H264).codec == "libx264"              # never chosen on its own


def test_nvenc_is_refused_for_what_it_cannot_keep() -> None:
    with pytest.raises(InputError, match="cannot encode yuv420p10le"):
        choose_encoder(dataclasses.replace(HDR, mastering_display=None, content_light=None), codec="hevc_nvenc")
    with pytest.raises(InputError, match="HDR10 metadata") as info:
        choose_encoder(dataclasses.replace(HDR, pix_fmt="yuv420p", bit_depth=8), codec="hevc_nvenc")
    assert "--codec hevc" in (info.value.hint or "")


def test_h264_keeps_hdr10_metadata_through_x264_params() -> None:
    s = choose_encoder(HDR, codec="h264")
    params = s.encoder_options()["x264-params"].split(":")
    assert params == ["force-cfr=1", f"mastering-display={HDR.mastering_display}", "cll=1000,400"]
    assert choose_encoder(H264).options["x264-params"] == "force-cfr=1"


def test_x264_declares_the_frame_rate_of_a_constant_rate_source_only() -> None:
    # Given a constant frame rate source, x264 is told so: its stream then declares the
    # frame rate (VUI timing) rather than the time base's tick
    assert "force-cfr=1" in choose_encoder(H264).options["x264-params"].split(":")
    # A variable frame rate source keeps x264's timestamp-driven rate control, and x265
    # declares the rate it is given without being told
    assert "x264-params" not in choose_encoder(dataclasses.replace(H264, is_vfr=True)).options
    assert "force-cfr" not in choose_encoder(H264, codec="hevc").options["x265-params"]
