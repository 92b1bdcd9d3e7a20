"""The one frame representation inside the pipeline.

A Frame wraps the decoded `av.VideoFrame` and exposes its planes as numpy *views*
(no copy, no colour conversion). Stages that touch faces convert only the face's
region to BGR and write it back (see region helpers below); a frame nobody touched
goes to the encoder exactly as it was decoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# pix_fmt -> (bytes per sample, chroma subsampling x, chroma subsampling y)
PLANAR_FORMATS: dict[str, tuple[int, int, int]] = {
    "yuv420p": (1, 2, 2),
    "yuvj420p": (1, 2, 2),
    "yuv422p": (1, 2, 1),
    "yuvj422p": (1, 2, 1),
    "yuv444p": (1, 1, 1),
    "yuvj444p": (1, 1, 1),
    "yuv420p10le": (2, 2, 2),
    "yuv422p10le": (2, 2, 1),
    "yuv444p10le": (2, 1, 1),
    "yuv420p12le": (2, 2, 2),
}


def bit_depth_of(pix_fmt: str) -> int:
    """Bits per sample of a planar YUV pix_fmt (8, 10 or 12)."""
    if "p10" in pix_fmt:
        return 10
    if "p12" in pix_fmt:
        return 12
    return 8


@dataclass
class Frame:
    """One decoded video frame plus what stages learned about it.

    planes: Y, U, V as numpy views into the decoder's buffers (uint8, or uint16 for
    10/12-bit). Writing into them changes the frame that will be encoded.
    """

    av_frame: Any
    index: int                      # presentation index within the chunk
    planes: list[np.ndarray]
    pix_fmt: str
    width: int
    height: int
    colorspace: str = "bt709"       # bt601 | bt709 | bt2020
    full_range: bool = False
    faces: list[Any] = field(default_factory=list)
    touched: bool = False           # set by any stage that wrote pixels
    faces_changed: int = 0          # faces whose pixels a stage replaced (farm.faces.model_stage)
    people_changed: set[int] = field(default_factory=set)   # with --map: the mappings (Face.source) of those faces

    @property
    def pts(self) -> int | None:
        return self.av_frame.pts

    @property
    def bit_depth(self) -> int:
        return bit_depth_of(self.pix_fmt)

    @property
    def chroma_subsampling(self) -> tuple[int, int]:
        _, sx, sy = PLANAR_FORMATS[self.pix_fmt]
        return sx, sy

    @classmethod
    def from_av(cls, av_frame: Any, index: int) -> "Frame":
        """Wrap a decoded frame; its pix_fmt must be one of PLANAR_FORMATS."""
        pix_fmt = av_frame.format.name
        if pix_fmt not in PLANAR_FORMATS:
            raise ValueError(f"unsupported pixel format {pix_fmt!r}")
        itemsize, sx, sy = PLANAR_FORMATS[pix_fmt]
        dtype = np.uint8 if itemsize == 1 else np.dtype("<u2")
        # Stages paint these planes in place; the decoder may still hold the picture as a
        # reference for the next frames, so take a private copy when it shares the buffer.
        av_frame.make_writable()
        planes = []
        for i, plane in enumerate(av_frame.planes[:3]):
            w = av_frame.width if i == 0 else -(-av_frame.width // sx)
            h = av_frame.height if i == 0 else -(-av_frame.height // sy)
            buf = np.frombuffer(plane, dtype=dtype)
            stride = plane.line_size // itemsize
            planes.append(buf.reshape(-1, stride)[:h, :w])
        return cls(
            av_frame=av_frame,
            index=index,
            planes=planes,
            pix_fmt=pix_fmt,
            width=av_frame.width,
            height=av_frame.height,
            colorspace=_colorspace_name(av_frame),
            full_range=pix_fmt.startswith("yuvj") or _is_full_range(av_frame),
        )

    @classmethod
    def from_arrays(cls, planes: list[np.ndarray], pix_fmt: str, index: int = 0, **kw: Any) -> "Frame":
        """A frame without a decoder behind it (unit tests, benchmarks)."""
        h, w = planes[0].shape
        return cls(av_frame=None, index=index, planes=planes, pix_fmt=pix_fmt, width=w, height=h, **kw)


def _colorspace_name(av_frame: Any) -> str:
    """Map the frame's matrix coefficients to the YUV<->RGB matrix we use."""
    value = getattr(av_frame, "colorspace", None)
    name = str(getattr(value, "name", value) or "").lower()
    if "2020" in name or value in (9, 10):
        return "bt2020"
    if "601" in name or "470" in name or "smpte170" in name or value in (5, 6):
        return "bt601"
    if value in (None, 0, 2) or name in ("", "unspecified", "rgb"):
        # unspecified: the usual guess by size (SD -> 601, HD and up -> 709)
        return "bt601" if (av_frame.height or 0) < 720 else "bt709"
    return "bt709"


def _is_full_range(av_frame: Any) -> bool:
    value = getattr(av_frame, "color_range", None)
    name = str(getattr(value, "name", value) or "").lower()
    return value == 2 or name in ("jpeg", "full", "pc")
