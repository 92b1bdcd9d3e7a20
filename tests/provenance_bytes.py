"""Helpers for provenance tests: find an MP4's top-level boxes, flip one byte of its media data."""

from __future__ import annotations

import struct
from pathlib import Path


def top_boxes(data: bytes) -> list[tuple[str, int, int, int]]:
    """(type, offset, size, header size) of each top-level ISO-BMFF box."""
    boxes, at = [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[at + 8:at + 16])[0], 16
        elif size == 0:
            size = len(data) - at
        boxes.append((kind.decode("latin-1"), at, size, header))
        at += size
    return boxes


def flip_media_byte(src: Path, dst: Path) -> int:
    """Copy `src` to `dst` with one bit of one byte in the middle of its `mdat` changed; the offset."""
    data = bytearray(src.read_bytes())
    kind, at, size, header = next(b for b in top_boxes(bytes(data)) if b[0] == "mdat")
    offset = at + header + (size - header) // 2
    data[offset] ^= 0x01
    dst.write_bytes(bytes(data))
    return offset
