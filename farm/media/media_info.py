"""What probing a video found, and the limits it is held to: plain frozen records.

`farm.media.probe.probe` fills a `MediaInfo`; planning, splitting, encoding, joining
and verifying read it (and tests build one by hand), so these types live apart from
the PyAV code that reads a container.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

from farm.media.colour import Colour


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

