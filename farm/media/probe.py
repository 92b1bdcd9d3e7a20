"""Probe a video in-process with PyAV: what it is, and every video packet's timing.

`probe` demuxes the whole video stream (no full decode: cheap even for 4K) and decodes
only until the first picture comes out, to prove the stream is decodable. Anything that
is not a decodable local video within the limits is refused with `InputError`.

Which stream is "the video" follows `farm.media.video_choice.choose_video_stream`;
counting the candidates' frames for it costs one more demux pass, only for files with
several such streams. The result types are in `farm.media.media_info`; what the first
picture says (colour, HDR, rotation) is read by `farm.media.describe`.
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
from av.stream import Discard, Disposition

from farm.errors import InputError
from farm.media.describe import codec_name, describe_video
from farm.media.ffmpeg import file_url
from farm.media.formats import ALLOWED_DEMUXERS, DTS_ONLY_DEMUXERS, SAFE_INPUT_OPTIONS, sniff_demuxer
from farm.media.media_info import MediaInfo, PacketTable, ProbeLimits, StreamInfo, shown_in_order
from farm.media.video_choice import VideoCandidate, choose_video_stream
from farm.user_files import check_regular_file

#: How many packets may go into the decoder before the first picture must come out.
FIRST_FRAME_MAX_PACKETS = 256


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
        video = describe_video(vstream, packets, first, demuxer)
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
    codec = codec_name(s.codec_context)
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
    choices = [VideoCandidate(index=s.index, codec=codec_name(s.codec_context), width=s.codec_context.width,
                              height=s.codec_context.height, frames=counted[s.index],
                              default=bool(s.disposition & Disposition.default)) for s in candidates]
    index, why = choose_video_stream(choices, p)
    return container.streams[index], why


def _demux_video(container: av.container.InputContainer, vstream: av.video.stream.VideoStream, p: Path,
                 limits: ProbeLimits, pts_from_dts: bool) -> tuple[PacketTable, av.VideoFrame]:
    """Read every video packet (other streams skipped); decode until the first picture."""
    for s in container.streams:
        if s.index != vstream.index:
            s.discard = Discard.all  # the demuxer skips their data cheaply
    packets = PacketTable()
    first = None
    fed = 0
    try:
        for pkt in container.demux(vstream):
            if pkt.size == 0:
                continue
            if pkt.is_corrupt:
                joined_ts = container.format.name == "mpegts"   # files joined with `cat` break the stream here
                raise InputError(
                    f"{p}: video packet {len(packets)} is corrupt or cut short",
                    hint="the file is truncated or damaged; re-export it"
                         + ("; MPEG-TS files joined end to end (cat) are damaged at each join: join them with "
                            "ffmpeg's concat demuxer instead (`ffmpeg -f concat -safe 0 -i list.txt -c copy "
                            "joined.ts`) or submit them one by one" if joined_ts else ""),
                )
            if pts_from_dts and pkt.dts is not None:
                pkt.pts = pkt.dts
            if pkt.pts is None:
                raise InputError(
                    f"{p}: the video's frame order cannot be known (no presentation timestamps)",
                    hint="remux the video to MKV or MP4 (ffmpeg -i in -c copy out.mkv)",
                )
            packets.append(pkt.pts, pkt.dts, bool(pkt.is_keyframe), int(pkt.duration or 0), bool(pkt.is_discard))
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
    shown, _ = shown_in_order(packets)
    if not len(shown):
        raise InputError(f"{p}: the video stream has no shown frames",
                         hint="submit a video with at least one frame")
    if bool((np.diff(shown) == 0).any()):
        raise InputError(f"{p}: two video frames share a timestamp", hint="remux or re-export the video")
    return packets, first
