"""16-bit colour stills (RGB and RGBA, PNG and TIFF), which Pillow decodes only to 8 bits.

The samples are read with OpenCV (libpng, libtiff: every compression) as H x W x 3|4 uint16
in RGB(A) order. The face stages work on 8 bits: they see `view8` of the colour samples,
and `apply_change` carries what they changed back to 16 bits. The output is written
with OpenCV (PNG: the input's own chunks spliced around the new pixel data, so ICC, EXIF,
XMP, text, pHYs, gAMA/cHRM/sRGB/sBIT are kept byte for byte) or tifffile (TIFF: the input's
tags, resolution and extra samples; compression kept when it is none or deflate, else
written as deflate, which tifffile can write without extra codecs). Pillow still reads the
header, orientation and metadata (farm.media.stills).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from farm.errors import InputError

DEEP_MODES = {"RGB": "RGB;16", "RGBA": "RGBA;16"}
"""Pillow's mode of a 16-bit colour image (read as 8 bits) -> the farm's name for it."""
DEEP_FORMATS = frozenset({"PNG", "TIFF"})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_TEXT = (b"tEXt", b"zTXt", b"iTXt")
TIFF_OWN = frozenset({270, 305, 282, 283, 296, 330, 34665, 34853, 40965})
"""TIFF tags written from other fields (label, resolution) or pointing at IFDs (not carried)."""
TIFF_COMPRESSION = {1: "none", 8: "zlib", 32946: "zlib"}   # the input's -> tifffile's; any other -> zlib


def view8(samples: np.ndarray) -> np.ndarray:
    """The 8-bit view of 16-bit samples: round(v / 257), so v = 257 * n reads back as n."""
    return ((samples.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def apply_change(stored: np.ndarray, before8: np.ndarray, after8: np.ndarray) -> np.ndarray:
    """The 16-bit samples with the stages' 8-bit change added: out = clip(in + (after - before) * 257).

    Per sample, so a sample the stages left alone (after == before) is the input's bit for
    bit, alpha included (only the colour samples are touched). Adding the change rather
    than writing after * 257 keeps the input's sub-8-bit detail (at most +-128 of 65535)
    under the changed samples too: a face's feathered edge fades into the untouched 16-bit
    surroundings without an 8-bit step where the change ends. `before8`/`after8`: H x W x 3
    uint8 in stored orientation; `stored`: H x W x 3|4 uint16."""
    out = stored.copy()
    delta = after8.astype(np.int32) - before8.astype(np.int32)
    colour = out[..., :3].astype(np.int32) + delta * 257
    out[..., :3] = np.clip(colour, 0, 65535).astype(np.uint16)
    return out


def read_samples(path: Path, channels: int) -> np.ndarray:
    """The stored samples, H x W x `channels` uint16 RGB(A); InputError when they cannot be decoded."""
    import cv2

    data = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if data is None or data.dtype != np.uint16 or data.ndim != 3 or data.shape[2] != channels:
        got = "nothing" if data is None else f"{data.dtype} {data.shape}"
        raise InputError(f"{path}: its 16-bit colour samples cannot be decoded (got {got}): the file is truncated, "
                         f"corrupt or in a layout farm does not read", hint="re-export it as a 16-bit RGB or RGBA "
                         "PNG or TIFF, or convert it to 8 bits a sample") from None
    return np.ascontiguousarray(data[..., [2, 1, 0, 3][:channels]])


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every chunk of a PNG file's bytes as (type, data), in file order, up to IEND."""
    chunks, at = [], len(PNG_SIGNATURE)
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        chunks.append((kind, data[at + 8:at + 8 + length]))
        at += 12 + length
        if kind == b"IEND":
            break
    return chunks


def read_extras(still_format: str, path: Path) -> dict[str, Any]:
    """What writing a 16-bit image back needs from the input: its PNG chunks or TIFF tags."""
    if still_format == "PNG":
        return {"chunks": png_chunks(path.read_bytes())}
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        tags = {t.code: (int(t.dtype), t.count, t.value) for t in page.tags.values()}
        extrasamples = tuple(int(x) for x in page.extrasamples)
        compression = int(page.compression)
    from farm.media.stills import TIFF_STRUCTURE

    carried = [(code, dtype, count, value, True) for code, (dtype, count, value) in tags.items()
               if code not in TIFF_STRUCTURE and code not in TIFF_OWN and isinstance(value, (str, bytes, int, float,
                                                                                            tuple))]
    resolution = None
    if 282 in tags and 283 in tags:
        resolution = (tags[282][2], tags[283][2], int(tags.get(296, (0, 0, 2))[2]))
    return {"tags": carried, "extrasamples": extrasamples, "resolution": resolution,
            "compression": TIFF_COMPRESSION.get(compression, "zlib")}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _itxt(key: str, value: str) -> bytes:
    return _chunk(b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + value.encode())


def write_png16(chunks: list[tuple[bytes, bytes]], samples: np.ndarray, tags: Mapping[str, str], tmp: Path) -> None:
    """A PNG of `samples` (uint16 RGB(A)) at `tmp`: OpenCV's header and pixel data, the
    input's other chunks where they were, its text chunks but the label's keys, and the
    label as iTXt chunks (key "Description" for the description)."""
    import cv2

    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(samples[..., [2, 1, 0, 3][:samples.shape[2]]]))
    if not ok:
        raise ValueError("OpenCV could not encode the 16-bit PNG")
    new = png_chunks(encoded.tobytes())
    ours = {"Description" if k == "description" else k for k in tags}

    def kept(kind: bytes, data: bytes) -> bool:
        label = kind in PNG_TEXT and data.split(b"\0", 1)[0].decode("latin-1") in ours
        return kind not in (b"IHDR", b"IDAT", b"IEND") and not label

    first_idat = next((n for n, (k, _d) in enumerate(chunks) if k == b"IDAT"), len(chunks))
    parts = [PNG_SIGNATURE, _chunk(*new[0])]
    parts += [_chunk(k, d) for k, d in chunks[:first_idat] if kept(k, d)]
    parts += [_itxt("Description" if k == "description" else k, v) for k, v in tags.items()]
    parts += [_chunk(k, d) for k, d in new if k == b"IDAT"]
    parts += [_chunk(k, d) for k, d in chunks[first_idat:] if kept(k, d)] + [_chunk(b"IEND", b"")]
    tmp.write_bytes(b"".join(parts))


def write_tiff16(extras: Mapping[str, Any], samples: np.ndarray, label: str, software: str, tmp: Path) -> None:
    """A TIFF of `samples` (uint16 RGB(A)) at `tmp` with the input's tags, resolution and
    extra samples, the label in ImageDescription and Software."""
    import tifffile

    kw: dict[str, Any] = {}
    if extras.get("resolution"):
        x, y, unit = extras["resolution"]
        kw.update(resolution=(x, y), resolutionunit=unit)
    if samples.shape[2] == 4:
        kw["extrasamples"] = extras.get("extrasamples") or (2,)
    tifffile.imwrite(tmp, samples, photometric="rgb", planarconfig="contig", metadata=None,
                     compression=extras.get("compression", "zlib"), description=label, software=software,
                     extratags=extras.get("tags", []), **kw)
