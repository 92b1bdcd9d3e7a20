"""The 3GPP asset tags of a 3GP/3G2 file (3GPP TS 26.244 boxes in moov/udta), read directly.

FFmpeg's mov muxer in 3GP mode writes a file's tags only as these boxes (no free-form
keys, no iTunes list): `titl` (title), `auth` (author), `perf` (artist), `dscp`
(comment), `gnre` (genre), `albm` (album), `cprt` (copyright), `yrrc` (date, a year) and
`loci` (location). Its demuxer reads none of them back (`cprt` as an empty QuickTime
string), so finalize's label check reads them here.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

from farm.errors import VerifyError

#: 3GPP string boxes -> the tag names FFmpeg's muxer writes them from.
STRING_BOXES: dict[bytes, str] = {
    b"titl": "title", b"auth": "author", b"perf": "artist", b"dscp": "comment",
    b"gnre": "genre", b"albm": "album", b"cprt": "copyright",
}

#: Most of a udta box that is read, in bytes (the tags are small; a bigger box is cut).
MAX_UDTA_BYTES = 1 << 20


def muxes_3gpp_tags(muxer: str) -> bool:
    """True for the muxers whose tags are only the 3GPP boxes above (3GP, 3G2)."""
    return muxer in ("3gp", "3g2")


def read_3gpp_tags(path: str | os.PathLike[str]) -> dict[str, str]:
    """The movie's 3GPP string tags, by FFmpeg's names ({'comment': ...}); {} when it has none.

    Raises VerifyError when the file cannot be read.
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            moov = _find_box(fh, 0, end, b"moov")
            udta = _find_box(fh, moov[0], moov[1], b"udta") if moov else None
            if udta is None:
                return {}
            fh.seek(udta[0])
            body = fh.read(min(udta[1] - udta[0], MAX_UDTA_BYTES))
    except OSError as exc:
        raise VerifyError(f"cannot read the tags of {p.name}: {exc.strerror or exc}") from None
    return parse_udta(body)


def parse_udta(body: bytes) -> dict[str, str]:
    """The string tags in the payload of a udta box (its child boxes, one after the other).

    Each is a full box (version and flags, 4 bytes), a packed ISO 639-2 language (2 bytes)
    and a NUL-terminated string: UTF-16 when it starts with the byte order mark FE FF,
    else UTF-8.
    """
    tags: dict[str, str] = {}
    at = 0
    while at + 8 <= len(body):
        size, kind = struct.unpack(">I4s", body[at:at + 8])
        if size < 8:
            break
        payload = body[at + 8:at + size][6:]   # past version, flags and language
        if kind in STRING_BOXES and STRING_BOXES[kind] not in tags:   # the first of each
            tags[STRING_BOXES[kind]] = _string(payload)
        at += size
    return tags


def _string(raw: bytes) -> str:
    if raw.startswith(b"\xfe\xff"):
        units = raw[2:]
        stop = next((k for k in range(0, len(units) - 1, 2) if units[k:k + 2] == b"\0\0"), len(units))
        return units[:stop].decode("utf-16-be", "replace")
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _find_box(fh: BinaryIO, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """(payload start, payload end) of the first box of type `kind` among the boxes from
    `start` to `end` of the file, read header by header; None when there is none."""
    at = start
    while at + 8 <= end:
        fh.seek(at)
        head = fh.read(16)
        if len(head) < 8:
            return None
        size, found = struct.unpack(">I4s", head[:8])
        header = 8
        if size == 1 and len(head) == 16:   # a 64-bit size follows the type
            size, header = struct.unpack(">Q", head[8:16])[0], 16
        elif size == 0:   # the box runs to the end
            size = end - at
        if size < header:
            return None
        if found == kind:
            return at + header, min(at + size, end)
        at += size
    return None
