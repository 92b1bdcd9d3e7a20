"""Check the chunk outputs finalize is about to trust, before it joins them.

A done chunk's output lives on shared storage, where it can be deleted, truncated or
replaced after the database marked it done. Each one must exist, be a non-empty regular
file, open as an intermediate, and hold exactly the frames planned for it. The frame
count comes from the container's index (the MP4/MOV sample table, written last, so a
truncated file does not even open); only a container without one (Matroska) is demuxed
to count packets. Nothing is decoded.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Iterable

from farm.media.intermediate import open_read


def lost_chunk_outputs(chunks: Iterable[Any]) -> dict[int, str]:
    """{chunk index: what is wrong with its output} for the chunks (store.ChunkView) that
    cannot be joined as they are; empty when every output is as it was when done."""
    lost = {}
    for chunk in chunks:
        problem = output_problem(Path(chunk.output_path), chunk.frames_planned)
        if problem:
            lost[chunk.index] = f"chunk {chunk.index}'s output {chunk.output_path} {problem}"
    return lost


def output_problem(path: Path, frames_planned: int) -> str | None:
    """Why the chunk output at `path` is not the `frames_planned` frames it should hold (None: it is)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "is missing"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if info.st_size == 0:
        return "is empty"
    try:
        frames = frame_count(path)
    except Exception as exc:  # noqa: BLE001 - PyAV raises many kinds; any of them means unusable
        return f"cannot be opened as video ({exc})"
    if frames != frames_planned:
        return f"holds {frames} frames, {frames_planned} planned"
    return None


def frame_count(path: Path) -> int:
    """Video frames in an intermediate file: from the container's index, else by packets."""
    with open_read(path) as container:
        if not container.streams.video:
            return 0
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for packet in container.demux(stream) if packet.size)
