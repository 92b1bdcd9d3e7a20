"""Cut a video into bounded chunks with exact frame accounting.

A chunk is a run of frames in presentation order, selected by pts: start_pts <= pts <
end_pts. Its *input segment* is a run of packets in decode order that a decoder can
start on (a keyframe) and that holds every packet the chunk's frames need:

- pre-roll: the segment starts at the last keyframe, in decode order, before the
  chunk's first-decoded frame whose own pts is not after the chunk's start. When the
  chunk begins with leading pictures of a keyframe (open GOP: decoded after it, shown
  before it) this reaches back one more GOP, so their references are decoded too.
- post-roll: the segment ends after the last-decoded packet of the chunk's frames,
  which for open GOPs or B-frames can lie past the next keyframe.
- warm and tail frames (`warm_frames`, `tail_frames`, for a job with a stage that warms:
  farm.pipeline.stage): the segment also holds the frames just before the chunk's first one
  and just after its last, which the chunk codec feeds to the stages (to start their state
  warm, to look ahead) and never encodes; pre-roll then starts from the first warm frame and
  post-roll covers the last tail frame.

Chunks are cut at keyframes where that keeps them within `chunk_frames` and not below
half of it, and mid-GOP otherwise (a clip with one keyframe still gets bounded chunks;
their segments then all start at that keyframe).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np

from farm.media.media_info import MediaInfo, PacketInfo, packet_columns, presentation_order


@dataclass(frozen=True)
class ChunkPlan:
    """One chunk: frames [first_frame, first_frame + frame_count) in presentation order.

    start_pts / end_pts: ticks of the source video time base; end_pts is exclusive and
    None for the last chunk. seg_first_packet / seg_end_packet: the decode-order packet
    range [first, end) of the chunk's input segment (indices into MediaInfo.packets).
    time_base: seconds per tick of start_pts/end_pts (the source video's time base).
    warm_frames: frames just before first_frame the segment also decodes for the stages'
    sake (never encoded), the first of them at warm_start_pts (None: none). tail_frames:
    frames after the chunk's last one decoded likewise, up to tail_end_pts (exclusive; None:
    to the end of the video).
    source_stream: None when the chunk's input is its own segment file (a stream copy made at
    submit); else the input is the job's ingested source, read by range: video stream
    `source_stream` from the packet whose timestamps are (seg_first_pts, seg_first_dts), the
    segment's first, for seg_end_packet - seg_first_packet packets (farm.media.source_range).
    """

    index: int
    first_frame: int
    frame_count: int
    start_pts: int
    end_pts: int | None
    seg_first_packet: int
    seg_end_packet: int
    time_base: Fraction = Fraction(1)
    warm_frames: int = 0
    warm_start_pts: int | None = None
    tail_frames: int = 0
    tail_end_pts: int | None = None
    source_stream: int | None = None
    seg_first_pts: int | None = None
    seg_first_dts: int | None = None

    def selects(self, pts: int) -> bool:
        """True if a frame with this pts (source ticks) belongs to the chunk."""
        return pts >= self.start_pts and (self.end_pts is None or pts < self.end_pts)


def default_chunk_frames(fps: Fraction | float, chunk_seconds: float) -> int:
    """Frames per chunk for a target chunk length in seconds (at least 1)."""
    return max(1, round(float(fps) * chunk_seconds))


# The default chunk length model (default_chunk_seconds). A GPU worker's frame time is
# a fixed face cost plus a cost per pixel (decode, detection downscale, region
# conversions, CPU encode on GPUs without NVENC):
#     frame_s = GPU_FACE_S_PER_FRAME + width * height / GPU_PIXELS_PER_S
# Calibrated to ~15 fps at 4K (FaceFusion's published 12 fps on one RTX 3080; an
# H100/H200 worker is bound by the CPU encoder at about that rate) and ~30 fps at 1080p.

#: Seconds of GPU work one chunk should take: long enough that per-chunk overhead
#: (claim, model warm-up, container open) is small, short enough for fair sharing,
#: fast retries and a Redis visibility timeout far above it.
TARGET_CHUNK_WORK_S = 30.0
#: Assumed resolution-independent face work per frame on a GPU (swap + enhance, one face).
GPU_FACE_S_PER_FRAME = 0.020
#: Assumed pixels per second a GPU worker moves through decode, stages and encode.
GPU_PIXELS_PER_S = 178e6
#: Bounds of the default chunk length, in seconds of video.
MIN_CHUNK_SECONDS, MAX_CHUNK_SECONDS = 2.0, 30.0


def assumed_gpu_fps(width: int, height: int) -> float:
    """Frames per second the chunk-length model assumes one GPU worker sustains."""
    return 1.0 / (GPU_FACE_S_PER_FRAME + max(1, width) * max(1, height) / GPU_PIXELS_PER_S)


def default_chunk_seconds(width: int, height: int, fps: Fraction | float) -> float:
    """Default chunk length in seconds of video, so one chunk is ~TARGET_CHUNK_WORK_S of GPU work.

    seconds = TARGET_CHUNK_WORK_S * assumed_gpu_fps(width, height) / fps, clamped to
    [MIN_CHUNK_SECONDS, MAX_CHUNK_SECONDS] and rounded to 0.1 s. Examples (30 fps):
    480p and 1080p -> 30 s, 4K -> ~15 s, 8K -> ~5 s; 4K at 60 fps -> ~7.5 s.
    An unknown frame rate (0) counts as 30 fps.
    """
    rate = float(fps) if fps and float(fps) > 0 else 30.0
    seconds = TARGET_CHUNK_WORK_S * assumed_gpu_fps(width, height) / rate
    return round(min(MAX_CHUNK_SECONDS, max(MIN_CHUNK_SECONDS, seconds)), 1)


def plan_chunks(info: MediaInfo, chunk_frames: int, warm_frames: int = 0, tail_frames: int = 0) -> list[ChunkPlan]:
    """Plan chunks of at most chunk_frames frames covering every frame exactly once, each
    also decoding up to warm_frames frames before its first and tail_frames after its last."""
    return plan_packets(info.packets, chunk_frames, info.video.time_base, warm_frames, tail_frames)


def plan_packets(packets: Sequence[PacketInfo], chunk_frames: int, time_base: Fraction = Fraction(1),
                 warm_frames: int = 0, tail_frames: int = 0) -> list[ChunkPlan]:
    """`plan_chunks` on a bare decode-order packet list (see the module docstring)."""
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
    if warm_frames < 0 or tail_frames < 0:
        raise ValueError(f"warm_frames and tail_frames must be >= 0, got {warm_frames}, {tail_frames}")
    # arrays, not a tuple per frame: a 2-hour film plans in flat memory (bench/bench_long_film.py)
    columns = packet_columns(packets)
    member = presentation_order(columns)      # decode index of each shown frame, presentation order
    if not len(member):
        raise ValueError("no frames to plan")
    frame_pts = columns.pts[member]
    keyframes = np.flatnonzero(columns.is_keyframe).tolist()   # decode order
    key_positions = [n for n in np.flatnonzero(columns.is_keyframe[member]).tolist() if n > 0]
    total = len(member)

    plans: list[ChunkPlan] = []
    first = 0
    while first < total:
        end = _chunk_end(first, total, chunk_frames, key_positions)
        warm_first, tail_end = max(0, first - warm_frames), min(total, end + tail_frames)
        decoded = member[warm_first:tail_end]
        seg_first = _segment_start(columns.pts, keyframes, int(decoded.min()), int(frame_pts[warm_first]))
        plans.append(
            ChunkPlan(
                index=len(plans),
                first_frame=first,
                frame_count=end - first,
                start_pts=int(frame_pts[first]),
                end_pts=int(frame_pts[end]) if end < total else None,
                seg_first_packet=seg_first,
                seg_end_packet=int(decoded.max()) + 1,
                time_base=time_base,
                warm_frames=first - warm_first,
                warm_start_pts=int(frame_pts[warm_first]) if warm_first < first else None,
                tail_frames=tail_end - end,
                tail_end_pts=int(frame_pts[tail_end]) if tail_end < total else None,
            )
        )
        first = end
    return plans


def plan_frame(info: MediaInfo, index: int) -> ChunkPlan:
    """A chunk of one frame, `index` (0-based, presentation order), with the segment a
    decoder needs for it (pre-roll as plan_packets gives it); for `farm preview`.
    ValueError when the video has no such frame."""
    columns = packet_columns(info.packets)
    members = presentation_order(columns)
    if not 0 <= index < len(members):
        raise ValueError(f"frame {index} is not in 0..{len(members) - 1}")
    member = int(members[index])
    pts = int(columns.pts[member])
    keyframes = np.flatnonzero(columns.is_keyframe).tolist()
    return ChunkPlan(index=0, first_frame=index, frame_count=1, start_pts=pts,
                     end_pts=int(columns.pts[members[index + 1]]) if index + 1 < len(members) else None,
                     seg_first_packet=_segment_start(columns.pts, keyframes, member, pts),
                     seg_end_packet=member + 1, time_base=info.video.time_base)


def _chunk_end(first: int, total: int, chunk_frames: int, key_positions: list[int]) -> int:
    """Exclusive end (presentation index): the latest keyframe in the allowed window,
    else first + chunk_frames (mid-GOP)."""
    limit = first + chunk_frames
    if limit >= total:
        return total
    lo = first + max(1, chunk_frames // 2)
    k = bisect.bisect_right(key_positions, limit) - 1
    if k >= 0 and key_positions[k] >= lo:
        return key_positions[k]
    return limit


def _segment_start(pts: np.ndarray, keyframes: list[int], first_decoded: int, start_pts: int) -> int:
    """Decode index of the keyframe the chunk's segment starts on (with pre-roll); `pts`
    of every packet in decode order."""
    k = bisect.bisect_right(keyframes, first_decoded) - 1
    while k > 0 and pts[keyframes[k]] > start_pts:
        k -= 1   # the chunk starts with leading pictures: one more GOP of pre-roll
    return keyframes[k] if k >= 0 else 0
