"""Describe the chosen video stream as a `VideoInfo`, from its packets and first picture.

Timing (fps, duration, variable frame rate) comes from the packets' timestamps; size,
pixel format, rotation (display matrix), colour code points and HDR side data
(mastering display, content light level) come from the first decoded frame, the stream's
own colour tags taking precedence. The sample aspect ratio is the stream's, as FFmpeg
and ffprobe read it: the container's (MP4/MOV 'pasp', Matroska's display size) where it
declares one, else the bitstream's (H.264/HEVC VUI). `farm.media.probe` does the
demuxing and decoding.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from fractions import Fraction

import av
import numpy as np

from farm.media.colour import Colour, parse_content_light, parse_mastering_display, rotation_of
from farm.media.media_info import PacketInfo, VideoInfo, shown_in_order


def describe_video(vstream: av.video.stream.VideoStream, packets: Sequence[PacketInfo],
                   first: av.VideoFrame, demuxer: str) -> VideoInfo:
    """The VideoInfo of `vstream`, given its packets and its first decoded picture."""
    ctx = vstream.codec_context
    tb = Fraction(vstream.time_base)
    shown, durations = shown_in_order(packets)
    pts = [int(shown[0]), int(shown[-1])]   # first, last
    deltas = np.diff(shown).tolist()
    last_dur = int(durations[-1]) or (sorted(deltas)[len(deltas) // 2] if deltas else 0)
    span = pts[-1] + last_dur - pts[0]
    fps = vstream.average_rate or (Fraction(len(shown), 1) / (span * tb) if span else Fraction(0))
    pix_fmt = first.format.name
    matrix = _side_data(first, "DISPLAYMATRIX")
    display_matrix = struct.unpack("<9i", matrix[:36]) if matrix and len(matrix) >= 36 else None
    colour = Colour(
        primaries=_pick(ctx.color_primaries, first.color_primaries),
        transfer=_pick(ctx.color_trc, first.color_trc),
        matrix=_pick(ctx.colorspace, first.colorspace),
        range=int(ctx.color_range or first.color_range or 0),
    )
    mdcv = _side_data(first, "MASTERING_DISPLAY_METADATA")
    clli = _side_data(first, "CONTENT_LIGHT_LEVEL")
    return VideoInfo(
        index=vstream.index,
        codec=codec_name(ctx) or "unknown",
        profile=ctx.profile,
        width=first.width,
        height=first.height,
        pix_fmt=pix_fmt,
        bit_depth=av.VideoFormat(pix_fmt).components[0].bits,
        time_base=tb,
        fps=Fraction(fps),
        frame_count=len(shown),
        first_pts=pts[0],
        duration_s=float(span * tb),
        rotation=rotation_of(display_matrix),
        display_matrix=display_matrix,
        colour=colour,
        mastering_display=parse_mastering_display(mdcv) if mdcv else None,
        content_light=parse_content_light(clli) if clli else None,
        is_vfr=_is_vfr(deltas),
        container=demuxer,
        sar=vstream.sample_aspect_ratio,   # av_guess_sample_aspect_ratio; None for 0:1 (undeclared)
    )


def codec_name(ctx: av.codec.context.CodecContext | None) -> str | None:
    """The codec's name ('av1'), not the decoder's ('libdav1d')."""
    if ctx is None:
        return None
    return ctx.codec.canonical_name if ctx.codec is not None else ctx.name


def _pick(stream_value: int | None, frame_value: int | None) -> int:
    """The stream's colour code point unless unspecified (2), else the first frame's."""
    s = 2 if stream_value is None else int(stream_value)
    f = 2 if frame_value is None else int(frame_value)
    return s if s != 2 else f


def _side_data(frame: av.VideoFrame, name: str) -> bytes | None:
    for sd in frame.side_data:
        if getattr(sd.type, "name", "") == name:
            return bytes(sd)
    return None


def _is_vfr(deltas: list[int]) -> bool:
    """True if frame durations differ by more than rounding (1 tick and 1%)."""
    if len(deltas) < 2:
        return False
    ordered = sorted(deltas)
    median = ordered[len(ordered) // 2]
    slack = max(1, median // 100)
    return ordered[0] < median - slack or ordered[-1] > median + slack
