"""Probe a video in-process with PyAV: what it is, and every video packet's timing.

`probe` demuxes the whole video stream (no full decode: cheap even for 4K) and decodes
only until the first picture comes out, to prove the stream is decodable. Anything that
is not a decodable local video within the limits is refused with `InputError`.

Which stream is "the video" (`choose_video_stream`): never cover art or a still-image
stream; of the others, the one with the most frames. Streams with at least
SIMILAR_FRAMES_RATIO of that count are rivals; among rivals the only one flagged
`default` wins, else one with at least LARGER_AREA_FACTOR times the pixels of every
other rival; otherwise the file is refused (exit 2) rather than guessed at. (FFmpeg's
own "best stream" also skips cover art and ranks by the default flag first; we rank by
length first, because a one-frame still flagged default is not the video.) Counting
frames costs one more demux pass, only for files with several such streams.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple, Sequence

import av
from av.stream import Discard, Disposition

from farm.errors import InputError
from farm.media.colour import Colour, parse_content_light, parse_mastering_display, rotation_of
from farm.media.ffmpeg import file_url
from farm.media.formats import ALLOWED_DEMUXERS, DTS_ONLY_DEMUXERS, SAFE_INPUT_OPTIONS, sniff_demuxer
from farm.user_files import check_regular_file

#: How many packets may go into the decoder before the first picture must come out.
FIRST_FRAME_MAX_PACKETS = 256
#: A video stream with at least this share of the most frames is a rival for the main video.
SIMILAR_FRAMES_RATIO = 0.9
#: A rival wins on picture size when it has at least this many times the pixels of every other.
LARGER_AREA_FACTOR = 2


@dataclass(frozen=True)
class ProbeLimits:
    """Largest input accepted (pixels, frames, bytes)."""

    max_width: int = 8192
    max_height: int = 8192
    max_frames: int = 2 * 60 * 60 * 60   # two hours at 60 fps
    max_bytes: int = 200 * 1024**3        # 200 GiB


class PacketInfo(NamedTuple):
    """One video packet, in decode order; timestamps in the stream's time base (ticks)."""

    pts: int
    dts: int | None
    is_keyframe: bool
    duration: int
    is_discard: bool = False   # decoded as reference only, never shown (edit lists)


@dataclass(frozen=True)
class StreamInfo:
    """One stream of the container (any type)."""

    index: int
    type: str               # video | audio | subtitle | data | attachment
    codec: str | None
    language: str | None = None
    title: str | None = None
    attached_pic: bool = False
    frames: int | None = None   # video packets, counted when a file has several candidate video streams
    default: bool = False       # the 'default' disposition flag
    timecode: str | None = None  # its 'timecode' tag (an MP4/MOV timecode track carries one)


@dataclass(frozen=True)
class VideoInfo:
    """The video stream we process."""

    index: int
    codec: str
    profile: str | None
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    time_base: Fraction            # seconds per tick
    fps: Fraction                  # average frames per second
    frame_count: int
    first_pts: int                 # ticks, first frame in presentation order
    duration_s: float              # first frame start to last frame end, seconds
    rotation: int = 0              # degrees counter-clockwise (display matrix)
    display_matrix: tuple[int, ...] | None = None
    colour: Colour = field(default_factory=Colour)
    mastering_display: str | None = None   # x265 master-display syntax
    content_light: str | None = None       # 'MaxCLL,MaxFALL'
    is_vfr: bool = False
    container: str = ""            # demuxer of the file holding it (AVI cannot reorder frames)

    @property
    def color_primaries(self) -> str:
        return self.colour.names["color_primaries"]

    @property
    def color_trc(self) -> str:
        return self.colour.names["color_transfer"]

    @property
    def colorspace(self) -> str:
        return self.colour.names["color_space"]

    @property
    def color_range(self) -> str:
        return self.colour.names["color_range"]


@dataclass(frozen=True)
class MediaInfo:
    """Everything the farm needs to know about one media file."""

    path: Path
    format_name: str               # FFmpeg's name for the demuxer that read it
    demuxer: str                   # the allowed demuxer forced on open, e.g. 'mov'
    size_bytes: int
    duration_s: float
    start_time_s: float
    video: VideoInfo
    streams: tuple[StreamInfo, ...]
    packets: tuple[PacketInfo, ...]
    tags: dict[str, str] = field(default_factory=dict)
    pts_from_dts: bool = False     # the container has no pts (AVI): packets' pts := dts
    video_choice: str = ""         # which stream is the video, and why (for the job's log)

    @property
    def frame_pts(self) -> list[int]:
        """Presentation timestamps of the shown frames, sorted (ticks)."""
        return sorted(p.pts for p in self.packets if not p.is_discard)


@dataclass(frozen=True)
class VideoCandidate:
    """A video stream that may be the one we process (not cover art, not a still image)."""

    index: int
    codec: str | None
    width: int
    height: int
    frames: int
    default: bool = False

    def describe(self) -> str:
        flag = ", flagged default" if self.default else ""
        return f"#{self.index} ({self.codec} {self.width}x{self.height}, {self.frames} frames{flag})"


def choose_video_stream(candidates: Sequence[VideoCandidate], path: str | os.PathLike[str] = "the file"
                        ) -> tuple[int, str]:
    """(stream index, why) of the video to process among several candidates (rule: module doc).

    Raises InputError when the file does not say which one it is.
    """
    most = max(c.frames for c in candidates)
    rivals = [c for c in candidates if c.frames >= SIMILAR_FRAMES_RATIO * most]
    flagged = [c for c in rivals if c.default]
    by_area = sorted(rivals, key=lambda c: c.width * c.height, reverse=True)
    if len(rivals) == 1:
        best, why = rivals[0], "the most frames"
    elif len(flagged) == 1:
        best, why = flagged[0], "flagged default among streams of similar length"
    elif by_area[0].width * by_area[0].height >= LARGER_AREA_FACTOR * by_area[1].width * by_area[1].height:
        best, why = by_area[0], "the largest picture among streams of similar length"
    else:
        raise InputError(
            f"{path}: cannot tell which video stream to process: "
            + " and ".join(c.describe() for c in rivals)
            + " are of similar length and size, and not exactly one of them is flagged default",
            hint="remux it with only the video stream to process, e.g. `ffmpeg -i IN -map 0 -map -0:1 -c copy OUT` "
                 "drops stream #1 (or flag the one to process default: `-disposition:1 default`)",
        )
    everyone = ", ".join(c.describe() for c in candidates)
    return best.index, f"stream {best.index} of {len(candidates)} video streams: {why} ({everyone})"


def probe(path: str | os.PathLike[str], limits: ProbeLimits = ProbeLimits(),
          video_index: int | None = None) -> MediaInfo:
    """Probe a local video file; raise InputError if the farm cannot or must not use it.

    video_index: the stream to treat as the video (as chosen when the job was submitted);
    None chooses it (choose_video_stream).
    """
    p, size = _check_local_file(path, limits)
    demuxer = sniff_demuxer(p)
    container = _open(p, demuxer)
    try:
        candidates = [s for s in container.streams.video if not _is_picture(s)]
        counted: dict[int, int] = {}
        if len(candidates) > 1:
            counted = _count_video_packets(container, candidates, p, limits)
            container.close()
            container = _open(p, demuxer)   # demux again from the start
            candidates = [container.streams[index] for index in sorted(counted)]
        streams = tuple(_stream_info(s, counted.get(s.index)) for s in container.streams)
        vstream, video_choice = _main_video_stream(container, p, candidates, counted, video_index)
        _check_size(p, vstream.codec_context.width, vstream.codec_context.height, limits)
        pts_from_dts = demuxer in DTS_ONLY_DEMUXERS
        packets, first = _demux_video(container, vstream, p, limits, pts_from_dts)
        video = _video_info(vstream, packets, first, demuxer)
        _check_size(p, video.width, video.height, limits)
        duration_s = container.duration / av.time_base if container.duration else video.duration_s
        start_s = container.start_time / av.time_base if container.start_time is not None else 0.0
        return MediaInfo(
            path=p,
            format_name=container.format.name,
            demuxer=demuxer,
            size_bytes=size,
            duration_s=float(duration_s),
            start_time_s=float(start_s),
            video=video,
            streams=streams,
            packets=packets,
            tags=dict(container.metadata),
            pts_from_dts=pts_from_dts,
            video_choice=video_choice,
        )
    finally:
        container.close()


def _open(p: Path, demuxer: str) -> av.container.InputContainer:
    try:
        return av.open(file_url(p), format=demuxer, container_options=dict(SAFE_INPUT_OPTIONS),
                       metadata_errors="replace")
    except av.FFmpegError as exc:
        raise InputError(
            f"{p}: cannot be read as {ALLOWED_DEMUXERS[demuxer]} ({exc})",
            hint="the file is truncated or corrupt; re-export or remux it",
        ) from None


def _check_local_file(path: str | os.PathLike[str], limits: ProbeLimits) -> tuple[Path, int]:
    text = os.fspath(path)
    if "://" in text:
        raise InputError(f"{text}: URLs are not accepted", hint="download the video and submit the local file")
    p = Path(text).absolute()
    st = check_regular_file(p, "video")     # a FIFO, device or folder is refused, never opened
    if st.st_size == 0:
        raise InputError(f"{p}: the file is empty", hint="re-export the video")
    if st.st_size > limits.max_bytes:
        raise InputError(
            f"{p}: {st.st_size} bytes is over the limit of {limits.max_bytes}",
            hint="split the video or raise the limit",
        )
    return p, st.st_size


def _check_size(p: Path, width: int, height: int, limits: ProbeLimits) -> None:
    if width > limits.max_width or height > limits.max_height:
        raise InputError(
            f"{p}: {width}x{height} is over the limit of {limits.max_width}x{limits.max_height}",
            hint="scale the video down or raise the limit",
        )


def _stream_info(s: av.stream.Stream, frames: int | None) -> StreamInfo:
    codec = _codec_name(s.codec_context)
    meta = dict(s.metadata)
    return StreamInfo(
        index=s.index,
        type=s.type,
        codec=codec,
        language=meta.get("language"),
        title=meta.get("title"),
        attached_pic=bool(s.disposition & Disposition.attached_pic),
        frames=frames,
        default=bool(s.disposition & Disposition.default),
        timecode=meta.get("timecode"),
    )


def _is_picture(s: av.stream.Stream) -> bool:
    """True for cover art and still-image streams: never the video we process."""
    return bool(s.disposition & (Disposition.attached_pic | Disposition.still_image))


def _count_video_packets(container: av.container.InputContainer, candidates: list[av.stream.Stream], p: Path,
                         limits: ProbeLimits) -> dict[int, int]:
    """Non-empty packets per candidate video stream (one demux pass; other streams skipped)."""
    wanted = {s.index for s in candidates}
    for s in container.streams:
        if s.index not in wanted:
            s.discard = Discard.all
    counts = dict.fromkeys(wanted, 0)
    try:
        for pkt in container.demux(*candidates):
            if pkt.size and pkt.stream.index in counts:
                counts[pkt.stream.index] += 1
                if counts[pkt.stream.index] > limits.max_frames:
                    raise InputError(f"{p}: more than {limits.max_frames} frames",
                                     hint="split the video or raise the limit")
    except av.FFmpegError as exc:
        raise InputError(f"{p}: the video streams cannot be read ({exc})",
                         hint="the file is corrupt; re-export it") from None
    return counts


def _main_video_stream(container: av.container.InputContainer, p: Path, candidates: list[av.stream.Stream],
                       counted: dict[int, int], video_index: int | None
                       ) -> tuple[av.video.stream.VideoStream, str]:
    """The stream to process and why it was chosen (see choose_video_stream)."""
    if video_index is not None:
        if not 0 <= video_index < len(container.streams) or container.streams[video_index].type != "video":
            raise InputError(f"{p}: stream {video_index} is not a video stream",
                             hint="the file changed since the job was submitted; submit it again")
        return container.streams[video_index], f"stream {video_index}, as chosen at submit"
    if not candidates:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams at all"
        what = "only cover art or still pictures" if container.streams.video else f"it holds {kinds}"
        raise InputError(f"{p}: no video stream ({what})", hint="submit a video file")
    if len(candidates) == 1:
        alone = len(container.streams.video) == 1
        return candidates[0], (f"stream {candidates[0].index}, the only video stream"
                               + ("" if alone else " that is not cover art or a still picture"))
    choices = [VideoCandidate(index=s.index, codec=_codec_name(s.codec_context), width=s.codec_context.width,
                              height=s.codec_context.height, frames=counted[s.index],
                              default=bool(s.disposition & Disposition.default)) for s in candidates]
    index, why = choose_video_stream(choices, p)
    return container.streams[index], why


def _demux_video(container: av.container.InputContainer, vstream: av.video.stream.VideoStream, p: Path,
                 limits: ProbeLimits, pts_from_dts: bool) -> tuple[tuple[PacketInfo, ...], av.VideoFrame]:
    """Read every video packet (other streams skipped); decode until the first picture."""
    for s in container.streams:
        if s.index != vstream.index:
            s.discard = Discard.all  # the demuxer skips their data cheaply
    packets: list[PacketInfo] = []
    first = None
    fed = 0
    try:
        for pkt in container.demux(vstream):
            if pkt.size == 0:
                continue
            if pkt.is_corrupt:
                raise InputError(
                    f"{p}: video packet {len(packets)} is corrupt or cut short",
                    hint="the file is truncated or damaged; re-export it",
                )
            if pts_from_dts and pkt.dts is not None:
                pkt.pts = pkt.dts
            if pkt.pts is None:
                raise InputError(
                    f"{p}: the video's frame order cannot be known (no presentation timestamps)",
                    hint="remux the video to MKV or MP4 (ffmpeg -i in -c copy out.mkv)",
                )
            packets.append(PacketInfo(pkt.pts, pkt.dts, bool(pkt.is_keyframe), int(pkt.duration or 0),
                                      bool(pkt.is_discard)))
            if len(packets) > limits.max_frames:
                raise InputError(f"{p}: more than {limits.max_frames} frames",
                                 hint="split the video or raise the limit")
            if first is None and fed < FIRST_FRAME_MAX_PACKETS:
                fed += 1
                frames = vstream.codec_context.decode(pkt)
                first = frames[0] if frames else None
        if first is None and packets:
            frames = vstream.codec_context.decode(None)
            first = frames[0] if frames else None
    except av.FFmpegError as exc:
        raise InputError(f"{p}: the video cannot be decoded ({exc})",
                         hint="the file is corrupt; re-export it") from None
    if not packets:
        raise InputError(f"{p}: the video stream has no frames", hint="submit a video with at least one frame")
    if container.format.name.startswith("mov") and vstream.frames and len(packets) < vstream.frames:
        raise InputError(
            f"{p}: only {len(packets)} of the {vstream.frames} video frames its index lists are there",
            hint="the file is truncated; re-export or re-download it",
        )
    if first is None:
        raise InputError(f"{p}: no picture could be decoded", hint="the file is corrupt; re-export it")
    if pts_from_dts and vstream.codec_context.has_b_frames:
        raise InputError(
            f"{p}: an AVI whose frames are stored out of display order (B-frames) cannot be timed exactly",
            hint="remux the video to MKV or MP4 (ffmpeg -i in -c copy out.mkv)",
        )
    shown = [q.pts for q in packets if not q.is_discard]
    if not shown:
        raise InputError(f"{p}: the video stream has no shown frames",
                         hint="submit a video with at least one frame")
    if len(set(shown)) != len(shown):
        raise InputError(f"{p}: two video frames share a timestamp", hint="remux or re-export the video")
    return tuple(packets), first


def _video_info(vstream: av.video.stream.VideoStream, packets: tuple[PacketInfo, ...],
                first: av.VideoFrame, demuxer: str) -> VideoInfo:
    ctx = vstream.codec_context
    tb = Fraction(vstream.time_base)
    shown = sorted((q.pts, q.duration) for q in packets if not q.is_discard)
    pts = [s[0] for s in shown]
    deltas = [b - a for a, b in zip(pts, pts[1:])]
    last_dur = shown[-1][1] or (sorted(deltas)[len(deltas) // 2] if deltas else 0)
    span = pts[-1] + last_dur - pts[0]
    fps = vstream.average_rate or (Fraction(len(pts), 1) / (span * tb) if span else Fraction(0))
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
        codec=_codec_name(ctx) or "unknown",
        profile=ctx.profile,
        width=first.width,
        height=first.height,
        pix_fmt=pix_fmt,
        bit_depth=av.VideoFormat(pix_fmt).components[0].bits,
        time_base=tb,
        fps=Fraction(fps),
        frame_count=len(pts),
        first_pts=pts[0],
        duration_s=float(span * tb),
        rotation=rotation_of(display_matrix),
        display_matrix=display_matrix,
        colour=colour,
        mastering_display=parse_mastering_display(mdcv) if mdcv else None,
        content_light=parse_content_light(clli) if clli else None,
        is_vfr=_is_vfr(deltas),
        container=demuxer,
    )


def _codec_name(ctx: av.codec.context.CodecContext | None) -> str | None:
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
