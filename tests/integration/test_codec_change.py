"""A codec change (--codec, or another codec in than the farm writes) keeps what the input
declares: bit depth, chroma format, colour description and HDR10 static metadata, and
leaves undeclared what the input left undeclared.

Real encodes through the farm's media path (probe -> plan -> split -> chunk transcode ->
join -> verify); every output is checked again with Debian's ffprobe/ffmpeg 5.1
(tests/media_checks.py), and H.264 HDR10 SEI with the newer ffmpeg of imageio-ffmpeg,
because ffmpeg 5.1's H.264 decoder does not export mastering-display / light-level SEI.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from farm.media.chunk_codec import choose_encoder, transcode_chunk
from farm.media.join import join_chunks
from farm.media.plan import plan_chunks
from farm.media.probe import probe
from farm.media.split import split_chunks
from farm.media.verify import verify_output
from tests import media_checks as mc
from tests.clips import ffmpeg_exe as new_ffmpeg
from tests.clips import make_clip

META = {"comment": "synthetic media made by farm; job=codec-change", "farm_job_id": "codec-change"}
COLOUR_KEYS = ("color_primaries", "color_transfer", "color_space")


def render(src: Path, work: Path, codec: str | None) -> Path:
    """The farm's media path with an identity stage chain, in three chunks, encoded as `codec`."""
    info = probe(src)
    plans = plan_chunks(info, max(1, info.video.frame_count // 3))
    inputs = split_chunks(src, info, plans, work / "in")
    settings = choose_encoder(info.video, codec)
    (work / "out").mkdir(parents=True, exist_ok=True)
    outputs = []
    for plan, seg in zip(plans, inputs):
        out = work / "out" / seg.name
        assert transcode_chunk(seg, out, plan, settings, lambda frame: frame) == plan.frame_count
        outputs.append(out)
    final = work / f"final{src.suffix}"
    join_chunks(outputs, src, info, final, META)
    verify_output(info, final, META)      # the farm's own check before publishing
    return final


def ffmpeg_made(path: Path, *args: str, size: str = "320x180", frames: int = 24) -> Path:
    """A clip as a plain `ffmpeg -i ... out` makes it: no colour tags at all (ffmpeg 5.1)."""
    subprocess.run([mc.ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=s={size}:r=24", "-frames:v", str(frames), *args, str(path)],
                   check=True, capture_output=True)
    return path


def limited(colour_range: str | None) -> str:
    """A range as players read it: an undeclared range is limited (H.264/HEVC infer it; ProRes
    has no range field, and ffmpeg 5.1 reports one where newer FFmpeg reports none)."""
    return colour_range or "tv"


def vui(path: Path) -> dict[str, int]:
    """The video stream's VUI flags as written in its SPS (ffmpeg's trace_headers bitstream filter)."""
    trace = subprocess.run([mc.ffmpeg_exe(), "-nostdin", "-i", str(path), "-map", "0:v:0", "-c", "copy",
                            "-bsf:v", "trace_headers", "-frames:v", "1", "-f", "null", "-"],
                           capture_output=True, text=True, check=True).stderr
    flags = {}
    for name in ("video_signal_type_present_flag", "video_full_range_flag", "colour_description_present_flag"):
        m = re.search(rf"\b{name}\s+\S+\s*=\s*(\d+)", trace)
        if m:
            flags[name] = int(m.group(1))
    return flags


def hdr10_sei(path: Path) -> str:
    """The first frame's mastering-display and light-level side data, as the newer ffmpeg's
    showinfo filter prints them ('' when there is none)."""
    log = subprocess.run([new_ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0",
                          "-vf", "showinfo", "-frames:v", "1", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    lines = [ln.split("side data - ", 1)[1] for ln in log.splitlines() if "Parsed_showinfo" in ln and
             ("Mastering display" in ln or "Content light level" in ln)]
    return "\n".join(dict.fromkeys(lines))   # (showinfo may print a frame's side data twice)


def test_untagged_h264_to_hevc_keeps_the_picture_undeclared(tmp_path: Path) -> None:
    # Given an H.264 clip as ffmpeg makes it: no colour description, no range
    src = ffmpeg_made(tmp_path / "source.mp4", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")
    assert mc.colour(src)["color_range"] is None and vui(src).get("video_signal_type_present_flag", 0) == 0
    # When it is rendered as HEVC
    out = render(src, tmp_path / "work", "hevc")
    # Then it is HEVC with the same pixels format, and still declares no colour description
    got = mc.colour(out)
    assert mc.video_stream(out)["codec_name"] == "hevc" and got["pix_fmt"] == "yuv420p"
    assert all(got[k] is None for k in COLOUR_KEYS), got
    assert vui(out)["colour_description_present_flag"] == 0
    # (FFmpeg's libx265 always writes the range; limited is what an absent range means)
    assert vui(out).get("video_full_range_flag", 0) == 0 and limited(got["color_range"]) == "tv"
    assert mc.frame_count(out) == 24


def test_untagged_odd_size_444_h264_to_hevc(tmp_path: Path) -> None:
    # Given an odd-size 4:4:4 H.264 clip with no colour tags
    src = ffmpeg_made(tmp_path / "source.mp4", "-vf", "format=yuv444p,crop=323:241:0:0", "-c:v", "libx264",
                      "-preset", "veryfast", "-pix_fmt", "yuv444p", size="324x242")
    assert (mc.video_stream(src)["width"], mc.video_stream(src)["height"]) == (323, 241)
    # When it is rendered as HEVC (the encoder's own name)
    out = render(src, tmp_path / "work", "libx265")
    # Then size, 4:4:4 and the missing colour description are kept
    s = mc.video_stream(out)
    assert (s["codec_name"], s["width"], s["height"], s["pix_fmt"]) == ("hevc", 323, 241, "yuv444p")
    assert all(mc.colour(out)[k] is None for k in COLOUR_KEYS)
    assert mc.frame_count(out) == 24


def test_hdr10_hevc_to_h264_keeps_10_bit_colour_and_hdr10_metadata(tmp_path: Path) -> None:
    # Given HEVC Main10 HDR10 (bt2020 / PQ, mastering display and content light level SEI)
    src = make_clip(tmp_path / "source.mp4", hdr10=True, seconds=1.0, gop=10)
    assert len(hdr10_sei(src).splitlines()) == 2
    # When it is rendered as H.264
    out = render(src, tmp_path / "work", "h264")
    # Then: H.264 High 10, the same 10-bit 4:2:0, the same colour description ...
    s = mc.video_stream(out)
    assert s["codec_name"] == "h264" and s["profile"].startswith("High 10")
    assert mc.colour(out) == mc.colour(src) and mc.colour(out)["bits"] == 10
    assert mc.colour(out)["color_transfer"] == "smpte2084"
    # ... and the same HDR10 static metadata, carried in the H.264 stream's SEI
    want, got = hdr10_sei(src).splitlines(), hdr10_sei(out).splitlines()
    assert got == want and len(got) == 2, (got, want)
    assert "MaxCLL=1000, MaxFALL=400" in got[1] and "max_luminance=1000.0" in got[0]


# other codecs in (tagged bt709, limited range): the default codec comes out (H.264)
OTHER_CODECS: dict[str, tuple[str, list[str]]] = {
    "vp9_webm": (".webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "0",
                           "-crf", "40", "-pix_fmt", "yuv420p"]),
    "av1_mp4": (".mp4", ["-c:v", "libsvtav1", "-preset", "12", "-svtav1-params", "lp=1", "-pix_fmt", "yuv420p"]),
    "prores_mov": (".mov", ["-c:v", "prores_ks", "-profile:v", "0", "-pix_fmt", "yuv422p10le"]),
}


@pytest.mark.parametrize("case", sorted(OTHER_CODECS))
@pytest.mark.parametrize("tagged", [True, False], ids=["bt709", "untagged"])
def test_other_codecs_come_out_in_the_default_codec_with_their_colour(case: str, tagged: bool,
                                                                      tmp_path: Path) -> None:
    # Given a VP9, AV1 or ProRes clip, with or without a bt709 colour description
    suffix, args = OTHER_CODECS[case]
    tags = ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
            "-color_range", "tv"] if tagged else []
    src = tmp_path / f"source{suffix}"
    subprocess.run([new_ffmpeg(), "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=24",
                    "-frames:v", "24", *args, *tags, str(src)], check=True, capture_output=True)
    # When it is rendered with no --codec
    out = render(src, tmp_path / "work", None)
    # Then it is H.264 with the source's pixel format and what the source declares
    assert mc.video_stream(out)["codec_name"] == "h264"
    want, got = mc.colour(src), mc.colour(out)
    assert got["pix_fmt"] == want["pix_fmt"] and got["bits"] == want["bits"]
    assert all(got[k] == want[k] for k in COLOUR_KEYS), (got, want)
    assert limited(got["color_range"]) == limited(want["color_range"]), (got, want)
    assert mc.frame_count(out) == 24


def test_a_full_range_vp9_comes_out_as_full_range_h264(tmp_path: Path) -> None:
    # Given a full-range VP9 WebM (yuv420p, range pc), as ffmpeg makes one from MJPEG frames
    src = ffmpeg_made(tmp_path / "full.webm", "-vf", "format=yuvj420p", "-c:v", "libvpx-vp9", "-deadline",
                      "realtime", "-cpu-used", "8", "-b:v", "0", "-crf", "40", "-color_range", "pc")
    assert mc.video_stream(src)["color_range"] == "pc" and mc.video_stream(src)["pix_fmt"] == "yuv420p"
    # When it goes through the farm in the default codec (H.264, which FFmpeg reports as
    # yuvj420p when full range), Then verify passes and the picture is still full range
    out = render(src, tmp_path / "work", None)
    stream = mc.video_stream(out)
    assert stream["codec_name"] == "h264" and stream["color_range"] == "pc", stream


# sources that declare a limited range and nothing else about colour
LIMITED_ONLY: dict[str, tuple[str, list[str], str | None]] = {
    "prores_mov": (".mov", ["-c:v", "prores_ks", "-profile:v", "2", "-color_range", "tv"], None),
    "h264_mov": (".mov", ["-c:v", "libx264", "-preset", "veryfast", "-bsf:v",
                          "h264_metadata=video_full_range_flag=0"], None),
    "h264_ts": (".ts", ["-c:v", "libx264", "-preset", "veryfast", "-bsf:v",
                        "h264_metadata=video_full_range_flag=0"], None),
    "hevc_mov_to_h264": (".mov", ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
                                  "-color_range", "tv"], "h264"),
    "vp9_webm": (".webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "0",
                           "-crf", "40", "-color_range", "tv"], None),
    "mpeg4_mp4": (".mp4", ["-c:v", "mpeg4", "-q:v", "5", "-color_range", "tv", "-movflags", "+write_colr"], None),
}


@pytest.mark.parametrize("case", sorted(LIMITED_ONLY))
def test_a_declared_limited_range_is_still_declared(case: str, tmp_path: Path) -> None:
    # Given a clip whose only colour tag is color_range=tv (ProRes: always limited)
    suffix, args, codec = LIMITED_ONLY[case]
    src = tmp_path / f"source{suffix}"
    subprocess.run([new_ffmpeg(), "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=24",
                    "-frames:v", "24", "-pix_fmt", "yuv420p" if case != "prores_mov" else "yuv422p10le", *args,
                    str(src)], check=True, capture_output=True)
    want = mc.colour(src)
    assert want["color_range"] == "tv" and all(want[k] is None for k in COLOUR_KEYS), want
    # When it is rendered (the default codec, or H.264 from HEVC)
    out = render(src, tmp_path / "work", codec)
    # Then the H.264 output still declares tv, in its own VUI, and nothing more
    got = mc.colour(out)
    assert mc.video_stream(out)["codec_name"] == "h264"
    assert got["color_range"] == "tv" and all(got[k] is None for k in COLOUR_KEYS), got
    assert vui(out) == {"video_signal_type_present_flag": 1, "video_full_range_flag": 0,
                        "colour_description_present_flag": 0}, vui(out)
    assert mc.frame_count(out) == 24
