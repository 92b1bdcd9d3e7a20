"""Colour description of a video: names for the H.273 code points, HDR side data.

Names are FFmpeg's (what ffprobe prints and what ``-color_primaries`` accepts), so a
value read here can be compared with ffprobe output and handed back to an encoder.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

PRIMARIES: dict[int, str] = {
    1: "bt709", 2: "unknown", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
    8: "film", 9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213",
}
TRANSFER: dict[int, str] = {
    1: "bt709", 2: "unknown", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
    8: "linear", 9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e",
    13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428",
    18: "arib-std-b67",
}
MATRIX: dict[int, str] = {
    0: "gbr", 1: "bt709", 2: "unknown", 4: "fcc", 5: "bt470bg", 6: "smpte170m",
    7: "smpte240m", 8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085",
    12: "chroma-derived-nc", 13: "chroma-derived-c", 14: "ictcp",
}
RANGE: dict[int, str] = {0: "unknown", 1: "tv", 2: "pc"}

@dataclass(frozen=True)
class Colour:
    """The four colour properties of a video stream, as FFmpeg names and code points."""

    primaries: int = 2
    transfer: int = 2
    matrix: int = 2
    range: int = 0

    @property
    def names(self) -> dict[str, str]:
        """{'color_primaries': 'bt709', 'color_transfer': ..., 'color_space': ..., 'color_range': ...}"""
        return {
            "color_primaries": PRIMARIES.get(self.primaries, str(self.primaries)),
            "color_transfer": TRANSFER.get(self.transfer, str(self.transfer)),
            "color_space": MATRIX.get(self.matrix, str(self.matrix)),
            "color_range": RANGE.get(self.range, str(self.range)),
        }

    @property
    def is_specified(self) -> bool:
        return any(v not in (0, 2) for v in (self.primaries, self.transfer, self.matrix))


def parse_mastering_display(raw: bytes) -> str | None:
    """AVMasteringDisplayMetadata (88 bytes) -> x265 ``master-display`` string, or None.

    x265 wants G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min), chromaticities in units of 0.00002
    and luminance in units of 0.0001 cd/m2.
    """
    if len(raw) < 88:
        return None
    v = struct.unpack("<20i2i", raw[:88])
    rats = [(v[i], v[i + 1]) for i in range(0, 20, 2)]
    has_primaries, has_luminance = v[20], v[21]
    if not (has_primaries and has_luminance):
        return None

    def q(r: tuple[int, int], unit: float) -> int:
        return round(r[0] / r[1] / unit) if r[1] else 0

    (rx, ry, gx, gy, bx, by, wx, wy, lmin, lmax) = rats
    c = 0.00002
    return (
        f"G({q(gx, c)},{q(gy, c)})B({q(bx, c)},{q(by, c)})R({q(rx, c)},{q(ry, c)})"
        f"WP({q(wx, c)},{q(wy, c)})L({q(lmax, 0.0001)},{q(lmin, 0.0001)})"
    )


def parse_content_light(raw: bytes) -> str | None:
    """AVContentLightMetadata (2 x uint32) -> x265 ``max-cll`` string 'MaxCLL,MaxFALL'."""
    if len(raw) < 8:
        return None
    max_cll, max_fall = struct.unpack("<2I", raw[:8])
    return f"{max_cll},{max_fall}"


def rotation_of(matrix: tuple[int, ...] | None) -> int:
    """Counter-clockwise display rotation in whole degrees (0..359) of a display matrix.

    Same convention as ffprobe's ``rotation`` and av_display_rotation_get().
    """
    if not matrix:
        return 0
    a, b, _, c, d = (x / 65536.0 for x in matrix[:5])
    sx, sy = math.hypot(a, c), math.hypot(b, d)
    if sx == 0 or sy == 0:
        return 0
    deg = -math.degrees(math.atan2(b / sy, a / sx))
    return round(deg) % 360
