"""Hardware video encode (NVENC) and decode (NVDEC): detection and the automatic choice.

NVENC counts as available for a codec only when PyAV's FFmpeg has the encoder AND a
tiny encoder of it actually opens on this machine (a build with h264_nvenc but no
NVIDIA GPU, no driver, or a GPU without NVENC such as H100/H200 fails that test).
When it is not usable, the job's software encoder is kept; the choice is logged once
per process and codec. Nothing here ever fails a chunk: every probe error means "no".

Probing initialises CUDA. Call these functions only in the process that encodes
(a worker's child), never in the parent of a prefork pool: CUDA does not survive fork.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import av

log = logging.getLogger("farm.media.hwaccel")

#: Software encoder -> its NVENC counterpart.
NVENC_FOR: dict[str, str] = {"libx264": "h264_nvenc", "libx265": "hevc_nvenc"}

#: Codecs NVDEC (FFmpeg's "cuda" hwaccel) decodes.
NVDEC_CODECS = frozenset({"h264", "hevc", "av1", "vp9", "mpeg2video", "mpeg4", "vc1"})

#: x264/x265 preset -> NVENC preset (p1 fastest ... p7 best).
NVENC_PRESETS: dict[str, str] = {
    "ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p4",
    "medium": "p5", "slow": "p6", "slower": "p7", "veryslow": "p7", "placebo": "p7",
}

HARDWARE_POLICIES = ("auto", "software")
"""EncoderSettings.hardware: 'auto' uses NVENC/NVDEC where usable, 'software' never does."""

_PROBE_SIZE = (256, 256)   # NVENC refuses very small frames; 256x256 is accepted everywhere


@dataclass(frozen=True)
class EncoderChoice:
    """The encoder a chunk is written with: name, options, and why it was chosen."""

    codec: str
    options: dict[str, str]
    hardware: bool
    reason: str


def _try_open_encoder(name: str, pix_fmt: str) -> str | None:
    """None if encoder `name` opens for a small `pix_fmt` picture here, else why not."""
    try:
        ctx = av.codec.CodecContext.create(name, "w")
        ctx.width, ctx.height = _PROBE_SIZE
        ctx.pix_fmt = pix_fmt
        ctx.time_base = Fraction(1, 30)
        ctx.framerate = Fraction(30)
        ctx.open()
        ctx.close() if hasattr(ctx, "close") else None
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        return f"{type(exc).__name__}: {exc}"


# How encoders are probed; tests replace it.
open_probe: Callable[[str, str], str | None] = _try_open_encoder


def encoder_in_build(name: str) -> bool:
    """True if PyAV's FFmpeg was built with encoder `name`."""
    try:
        av.codec.Codec(name, "w")
    except Exception:  # noqa: BLE001 - UnknownCodecError and friends
        return False
    return True


_probe_lock = threading.Lock()


@functools.lru_cache(maxsize=32)
def _nvenc_verdict(name: str, pix_fmt: str) -> str | None:
    if not encoder_in_build(name):
        return f"{name} is not in this FFmpeg build"
    formats = {f.name for f in av.codec.Codec(name, "w").video_formats or ()}
    if formats and pix_fmt not in formats:
        return f"{name} does not take {pix_fmt} frames"
    problem = open_probe(name, pix_fmt)
    return None if problem is None else f"{name} does not open here ({problem})"


def nvenc_problem(name: str, pix_fmt: str) -> str | None:
    """None if NVENC encoder `name` is usable for `pix_fmt` frames, else the reason (cached)."""
    with _probe_lock:
        return _nvenc_verdict(name, pix_fmt)


def forget_probes() -> None:
    """Drop the cached verdicts (tests; a process that gained a GPU)."""
    _nvenc_verdict.cache_clear()
    _logged.clear()


def nvenc_options(preset: str, crf: float, software_options: dict[str, str]) -> dict[str, str]:
    """NVENC options for an x26x preset/crf: constant quality (vbr, cq=crf, no bitrate cap).

    The software encoder's private options (x264-params / x265-params) do not apply and
    are dropped; generic ones (bf) are kept.
    """
    cq = int(crf) if float(crf).is_integer() else crf
    kept = {k: v for k, v in software_options.items() if not k.endswith("-params")}
    return {"preset": NVENC_PRESETS.get(preset, "p4"), "tune": "hq", "rc": "vbr", "cq": str(cq),
            "b": "0", **kept}


_logged: set[tuple[str, str, bool]] = set()


def choose_chunk_encoder(codec: str, preset: str, crf: float, pix_fmt: str, options: dict[str, str],
                         hardware: str = "auto") -> EncoderChoice:
    """The encoder for a chunk: NVENC when allowed and usable, else the software `codec`.

    codec/preset/crf/options: the job's software encoder settings (EncoderSettings).
    Options that only the software encoder can honour (x265 HDR10 metadata) keep it.
    The choice is logged once per process for each (codec, pix_fmt).
    """
    software = EncoderChoice(codec, {"preset": preset, "crf": _num(crf), **options}, False, "")
    nvenc = NVENC_FOR.get(codec)
    if hardware == "software":
        reason = "hardware encoding is off for this job"
    elif nvenc is None:
        reason = f"no NVENC counterpart of {codec}"
    elif any(k.endswith("-params") and ("master-display" in v or "hdr10" in v) for k, v in options.items()):
        reason = f"HDR10 metadata needs {codec}"
    else:
        reason = nvenc_problem(nvenc, pix_fmt) or ""
        if not reason:
            choice = EncoderChoice(nvenc, nvenc_options(preset, crf, options), True,
                                   f"{nvenc} is usable here")
            _log_once(choice, codec, pix_fmt)
            return choice
    choice = EncoderChoice(software.codec, software.options, False, reason)
    _log_once(choice, codec, pix_fmt)
    return choice


def _log_once(choice: EncoderChoice, codec: str, pix_fmt: str) -> None:
    key = (codec, pix_fmt, choice.hardware)
    if key in _logged:
        return
    _logged.add(key)
    if choice.hardware:
        log.info("video encoder: %s for %s %s (%s)", choice.codec, codec, pix_fmt, choice.reason)
    else:
        log.info("video encoder: %s in software (%s)", choice.codec, choice.reason)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# ---------------------------------------------------------------------------- NVDEC


@functools.lru_cache(maxsize=8)
def _cuda_device_problem() -> str | None:
    try:
        from av.codec.hwaccel import HWAccel, hwdevices_available
    except ImportError:
        return "this PyAV has no hwaccel support"
    if "cuda" not in hwdevices_available():
        return "FFmpeg has no cuda device type"
    try:
        HWAccel("cuda").create(av.codec.Codec("h264", "r"))
    except Exception as exc:  # noqa: BLE001
        return f"no CUDA device ({type(exc).__name__}: {exc})"
    return None


def nvdec_hwaccel(hardware: str = "auto", codec: str | None = None) -> Any | None:
    """A PyAV HWAccel for decoding with NVDEC, or None (software decode).

    Decoded frames are copied back to system memory (NV12/P010); the decoder falls back
    to software by itself for streams NVDEC cannot handle (codec, when known, skips
    the attempt for codecs outside NVDEC_CODECS).
    """
    if hardware == "software" or (codec is not None and codec not in NVDEC_CODECS):
        return None
    with _probe_lock:
        problem = _cuda_device_problem()
    if problem is not None:
        if ("nvdec", problem) not in _logged_dec:
            _logged_dec.add(("nvdec", problem))
            log.info("video decoder: software (%s)", problem)
        return None
    from av.codec.hwaccel import HWAccel

    return HWAccel("cuda", allow_software_fallback=True)


_logged_dec: set[tuple[str, str]] = set()
