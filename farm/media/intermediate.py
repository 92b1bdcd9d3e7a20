"""The farm's own intermediate files (chunk segments, chunk outputs, joined video).

They are written with exact timestamps (see farm.media.formats.INTERMEDIATE_MUXER), to
a temporary name in the destination folder, and renamed when complete. Reading them
back goes through the same sniffing and protocol whitelist as user input: a chunk
file on shared storage is not trusted more than it must be.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import av

from farm.media.ffmpeg import file_url
from farm.media.formats import (
    SAFE_INPUT_OPTIONS,
    intermediate_muxer,
    intermediate_options,
    intermediate_suffix,
    sniff_demuxer,
)


def chunk_file_name(index: int, codec: str = "h264") -> str:
    """File name of chunk `index` holding a `codec` stream, e.g. '00003.mov'."""
    return f"{index:05d}{intermediate_suffix(intermediate_muxer(codec))}"


def temp_path_for(path: str | os.PathLike[str]) -> Path:
    """A unique temporary name next to `path` (same folder, so os.replace is atomic)."""
    p = Path(path)
    return p.with_name(f".{p.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def open_read(path: str | os.PathLike[str]) -> av.container.InputContainer:
    """Open an intermediate file for reading (demuxer sniffed and forced, files only)."""
    return av.open(file_url(path), format=sniff_demuxer(path), container_options=dict(SAFE_INPUT_OPTIONS))


def open_write(path: str | os.PathLike[str], codec: str, time_base_den: int,
               colour_range: int = 0, muxer: str | None = None) -> av.container.OutputContainer:
    """Open an intermediate file for writing a `codec` stream whose time base is 1/den.

    colour_range: the stream's range code point (0 unknown, 1 tv, 2 pc). muxer: the
    container (default: the codec's intermediate muxer; see formats.joined_muxer).
    """
    muxer = muxer or intermediate_muxer(codec)
    options = intermediate_options(muxer, time_base_den, keep_range=colour_range != 0)
    return av.open(file_url(path), "w", format=muxer, options=options)
