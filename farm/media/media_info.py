"""What probing a video found, and the limits it is held to: plain frozen records.

`farm.media.probe.probe` fills a `MediaInfo`; planning, splitting, encoding, joining
and verifying read it (and tests build one by hand), so these types live apart from
the PyAV code that reads a container.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple, overload

import numpy as np

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


class PacketTable(Sequence[PacketInfo]):
    """A video's packets in decode order, kept column-wise: 25 bytes a packet instead of
    ~300 as PacketInfo tuples, so probing a 2-hour 30 fps film holds ~5 MiB, not ~65 MiB
    (bench/bench_long_film.py). Reads as a sequence of PacketInfo, made on access."""

    NO_DTS = -(2**63)
    KEY, DISCARD = 1, 2   # bits of the flags column

    def __init__(self, packets: Sequence[PacketInfo] = ()) -> None:
        self._pts, self._dts, self._duration, self._flags = array("q"), array("q"), array("q"), array("B")
        for p in packets:
            self.append(*p)

    def append(self, pts: int, dts: int | None, is_keyframe: bool, duration: int, is_discard: bool = False) -> None:
        self._pts.append(pts)
        self._dts.append(self.NO_DTS if dts is None else dts)
        self._duration.append(duration)
        self._flags.append((self.KEY if is_keyframe else 0) | (self.DISCARD if is_discard else 0))

    def __len__(self) -> int:
        return len(self._pts)

    def _at(self, i: int) -> PacketInfo:
        dts, flags = self._dts[i], self._flags[i]
        return PacketInfo(self._pts[i], None if dts == self.NO_DTS else dts, bool(flags & self.KEY),
                          self._duration[i], bool(flags & self.DISCARD))

    @overload
    def __getitem__(self, i: int) -> PacketInfo: ...
    @overload
    def __getitem__(self, i: slice) -> list[PacketInfo]: ...

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._at(j) for j in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"packet {i} of {n}")
        return self._at(i % n)

    def __iter__(self) -> Iterator[PacketInfo]:
        return (self._at(i) for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(other) == len(self) and all(a == b for a, b in zip(self, other))

    def __hash__(self) -> int:
        return hash((bytes(self._pts), bytes(self._flags)))

    def __repr__(self) -> str:
        return f"PacketTable({len(self)} packets)"


class PacketColumns(NamedTuple):
    """Packets in decode order as arrays: pts and duration (int64 ticks), is_keyframe and
    is_discard (bool)."""

    pts: np.ndarray
    duration: np.ndarray
    is_keyframe: np.ndarray
    is_discard: np.ndarray


def packet_columns(packets: Sequence[PacketInfo]) -> PacketColumns:
    """The packets as arrays, without a Python object per packet for a PacketTable."""
    if isinstance(packets, PacketTable):
        flags = np.frombuffer(packets._flags, np.uint8)
        return PacketColumns(np.frombuffer(packets._pts, np.int64), np.frombuffer(packets._duration, np.int64),
                             (flags & PacketTable.KEY) != 0, (flags & PacketTable.DISCARD) != 0)
    return PacketColumns(np.array([p.pts for p in packets], np.int64), np.array([p.duration for p in packets], np.int64),
                         np.array([p.is_keyframe for p in packets], bool), np.array([p.is_discard for p in packets], bool))


def presentation_order(columns: PacketColumns) -> np.ndarray:
    """Decode indices of the shown packets, in presentation (pts) order."""
    shown = np.flatnonzero(~columns.is_discard)
    return shown[np.argsort(columns.pts[shown], kind="stable")]


def shown_in_order(packets: Sequence[PacketInfo]) -> tuple[np.ndarray, np.ndarray]:
    """(pts, duration) of the shown packets (not is_discard) in presentation order, as int64
    arrays: a film's worth without a Python object per frame."""
    columns = packet_columns(packets)
    order = presentation_order(columns)
    return columns.pts[order], columns.duration[order]


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
    sar: Fraction | None = None    # sample (pixel) aspect ratio, width:height; None: undeclared (0:1)

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
    packets: Sequence[PacketInfo]   # decode order: a PacketTable from probe, any sequence in tests
    tags: dict[str, str] = field(default_factory=dict)
    pts_from_dts: bool = False     # the container has no pts (AVI): packets' pts := dts
    video_choice: str = ""         # which stream is the video, and why (for the job's log)

    @property
    def frame_pts(self) -> list[int]:
        """Presentation timestamps of the shown frames, sorted (ticks)."""
        return shown_in_order(self.packets)[0].tolist()

