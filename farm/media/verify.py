"""Check a finished output against its source before it is published.

Compares what must be kept: frame count, every frame's presentation time, duration,
the non-video streams, resolution, sample aspect ratio, pixel format (bit depth,
chroma), rotation, colour description, HDR10 static metadata and, when given, our
metadata tags. Raises `VerifyError` naming each difference.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Mapping

from farm.errors import InputError, VerifyError
from farm.media.formats import keeps_data_streams, keeps_free_tags
from farm.media.join import keeps_stream, muxer_for, output_video_index
from farm.media.media_info import MediaInfo, ProbeLimits, StreamInfo
from farm.media.probe import probe

#: The output is ours: probe it without the user-input size limits.
_NO_LIMITS = ProbeLimits(max_width=1 << 30, max_height=1 << 30, max_frames=1 << 40, max_bytes=1 << 62)

#: Relative difference of two sample aspect ratios that still counts as the same one:
#: Matroska declares a display size in whole pixels (a 720x480 WebM at 32:27 is 853
#: wide, read back as 853:720), and FFmpeg's muxers take ratios within 0.4% as equal.
SAR_TOLERANCE = 0.004


def verify_output(info: MediaInfo, out_path: str | os.PathLike[str],
                  metadata: Mapping[str, str] | None = None) -> None:
    """Raise VerifyError unless out_path keeps the source's frames, timing and streams.

    The output's processed video is the stream at the source video's place (not chosen
    again: the output also holds the source's other video streams, copied).
    """
    index = output_video_index(info, muxer_for(info, info.video.codec))   # which streams are kept
    try:                                                                  # does not depend on the codec
        out = probe(out_path, _NO_LIMITS, video_index=index)
    except InputError as exc:
        raise VerifyError(f"output {out_path} cannot be read back: {exc.message}") from None
    problems = compare(info, out, metadata)
    if problems:
        raise VerifyError(f"output {Path(out_path).name} differs from {info.path.name}: " + "; ".join(problems))


def _layout(pix_fmt: str) -> str:
    """A pixel format as samples are laid out: FFmpeg names full-range H.264/MJPEG pictures
    yuvj420p (...), VP9 and others yuv420p with range pc; the range is compared on its own."""
    return "yuv" + pix_fmt[4:] if pix_fmt.startswith("yuvj") else pix_fmt


def compare(src: MediaInfo, out: MediaInfo, metadata: Mapping[str, str] | None = None) -> list[str]:
    """Every difference between a source and an output probe, as short sentences."""
    problems: list[str] = []
    sv, ov = src.video, out.video
    if ov.frame_count != sv.frame_count:
        problems.append(f"{ov.frame_count} frames, source has {sv.frame_count}")
    else:
        problems += _compare_times(src, out)
    if abs(ov.duration_s - sv.duration_s) > _longest_frame_s(src) + 1e-9:
        problems.append(f"video lasts {ov.duration_s:.6f} s, source {sv.duration_s:.6f} s")
    if (ov.width, ov.height) != (sv.width, sv.height):
        problems.append(f"size {ov.width}x{ov.height}, source {sv.width}x{sv.height}")
    if not _same_sar(ov.sar, sv.sar):
        problems.append(f"sample aspect ratio {_sar_text(ov.sar)}, source {_sar_text(sv.sar)}")
    if _layout(ov.pix_fmt) != _layout(sv.pix_fmt):
        problems.append(f"pixel format {ov.pix_fmt} ({ov.bit_depth}-bit), "
                        f"source {sv.pix_fmt} ({sv.bit_depth}-bit)")
    if ov.rotation != sv.rotation or (ov.display_matrix or None) != (sv.display_matrix or None):
        problems.append(f"rotation {ov.rotation}, source {sv.rotation}")
    for key, value in sv.colour.names.items():
        got = ov.colour.names[key]
        if got != value and not (key == "color_range" and (value, got) == ("unknown", "tv")):
            # An undeclared range means limited, so an undeclared one may come out as tv
            # (FFmpeg's libx265 always writes the range, and its HEVC decoder reports an
            # absent one as tv); a declared range must come out declared (ffmpeg.range_bsf).
            problems.append(f"{key} {got}, source {value}")
    if (ov.mastering_display, ov.content_light) != (sv.mastering_display, sv.content_light):
        problems.append(f"HDR10 mastering display {ov.mastering_display}, light level {ov.content_light}; "
                        f"source {sv.mastering_display}, {sv.content_light}")
    muxer = muxer_for(src, ov.codec)
    kept = [s for s in _other_streams(src, muxer) if keeps_stream(s, muxer)]
    want = [(s.type, s.codec, s.attached_pic) for s in kept]
    got = [(s.type, s.codec, s.attached_pic) for s in _other_streams(out, muxer)]
    if want != got:
        problems.append(f"streams {got}, expected {want}")
    else:
        problems += [f"stream {o.index} ({o.type}) has {o.frames} frames, source stream {s.index} {s.frames}"
                     for s, o in zip(kept, _other_streams(out, muxer))
                     if s.frames is not None and o.frames is not None and s.frames != o.frames]
    if metadata and keeps_free_tags(muxer):
        tags = {k.lower(): v for k, v in out.tags.items()}
        for key, value in metadata.items():
            if tags.get(key.lower()) != value:
                problems.append(f"tag {key} is {tags.get(key.lower())!r}, expected {value!r}")
    return problems


def _same_sar(a: Fraction | None, b: Fraction | None) -> bool:
    """True if two declared sample aspect ratios show pixels the same shape; an undeclared
    one (None) is shown square, as 1:1."""
    a, b = a or Fraction(1), b or Fraction(1)
    return abs(a - b) <= SAR_TOLERANCE * b


def _sar_text(sar: Fraction | None) -> str:
    return f"{sar.numerator}:{sar.denominator}" if sar else "undeclared"


def _other_streams(info: MediaInfo, muxer: str) -> list[StreamInfo]:
    """The streams besides the main video that are compared. Data streams count only
    where they are copied: MP4/MOV rebuild their own chapter and timecode tracks."""
    return [s for s in info.streams
            if s.index != info.video.index and (s.type != "data" or keeps_data_streams(muxer))]


def _longest_frame_s(info: MediaInfo) -> float:
    """Longest frame duration in seconds (one frame of slack for the duration check)."""
    pts = info.frame_pts
    longest = max((b - a for a, b in zip(pts, pts[1:])), default=0)
    nominal = 1 / float(info.video.fps) if info.video.fps else 0.0
    return max(float(longest * info.video.time_base), nominal)


def _compare_times(src: MediaInfo, out: MediaInfo) -> list[str]:
    """Frame by frame: presentation times equal within half a tick of the coarser time base."""
    stb, otb = src.video.time_base, out.video.time_base
    tol = max(stb, otb) / 2
    bad = []
    for n, (a, b) in enumerate(zip(src.frame_pts, out.frame_pts)):
        if abs(Fraction(a) * stb - Fraction(b) * otb) > tol:
            bad.append(n)
    if not bad:
        return []
    n = bad[0]
    return [
        f"{len(bad)} frame times differ, first frame {n}: "
        f"{float(out.frame_pts[n] * otb):.6f} s, source {float(src.frame_pts[n] * stb):.6f} s"
    ]
