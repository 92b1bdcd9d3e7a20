"""Which video encoders this process can use, and hardware decode (NVDEC).

A job's encoder is decided once, at submit (farm.media.chunk_codec.choose_encoder), and
stored with the job; every worker encodes its chunks with exactly that encoder, so the
chunks join. This module answers, per worker process, whether it can produce a given
encoder: the encoder must be in PyAV's FFmpeg, take the pixel format, actually open on
this machine (a build with h264_nvenc but no NVIDIA GPU, no driver, or a GPU without
NVENC such as H100/H200 fails that test), and not be disabled for this worker
(FARM_DISABLED_ENCODERS). A worker that cannot produce a job's encoder leaves its chunks
to other workers (farm.workers.encoder_check).

Probing NVENC initialises CUDA. Call these functions only in the process that encodes
(a worker's child), never in the parent of a prefork pool: CUDA does not survive fork.
"""

from __future__ import annotations

import functools
import logging
import threading
from fractions import Fraction
from typing import Any, Callable, Iterable

import av

log = logging.getLogger("farm.media.hwaccel")

#: Codecs NVDEC (FFmpeg's "cuda" hwaccel) decodes.
NVDEC_CODECS = frozenset({"h264", "hevc", "av1", "vp9", "mpeg2video", "mpeg4", "vc1"})

#: x264/x265 preset -> NVENC preset (p1 fastest ... p7 best).
NVENC_PRESETS: dict[str, str] = {
    "ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p4",
    "medium": "p5", "slow": "p6", "slower": "p7", "veryslow": "p7", "placebo": "p7",
}

HARDWARE_POLICIES = ("auto", "software")
"""EncoderSettings.hardware: 'auto' decodes with NVDEC where usable, 'software' never does.
(The encoder is the job's, never chosen by a worker.)"""

_PROBE_SIZE = (256, 256)   # NVENC refuses very small frames; 256x256 is accepted everywhere
_PROBE_OPTIONS = {"libx265": {"x265-params": "log-level=error"}}   # no banner on stderr


def _try_open_encoder(name: str, pix_fmt: str) -> str | None:
    """None if encoder `name` opens for a small `pix_fmt` picture here, else why not."""
    try:
        ctx = av.codec.CodecContext.create(name, "w")
        ctx.width, ctx.height = _PROBE_SIZE
        ctx.pix_fmt = pix_fmt
        ctx.time_base = Fraction(1, 30)
        ctx.framerate = Fraction(30)
        ctx.options = dict(_PROBE_OPTIONS.get(name, {}))
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
def _encoder_verdict(name: str, pix_fmt: str) -> str | None:
    if not encoder_in_build(name):
        return f"{name} is not in this FFmpeg build"
    formats = {f.name for f in av.codec.Codec(name, "w").video_formats or ()}
    if formats and pix_fmt not in formats:
        return f"{name} does not take {pix_fmt} frames"
    problem = open_probe(name, pix_fmt)
    if problem is not None:
        return f"{name} does not open here ({problem})"
    return None


def parse_encoder_list(text: str | None) -> frozenset[str]:
    """'h264_nvenc, hevc_nvenc' -> frozenset of encoder names (FARM_DISABLED_ENCODERS)."""
    return frozenset(n.strip().lower() for n in (text or "").split(",") if n.strip())


def encoder_problem(name: str, pix_fmt: str, disabled: Iterable[str] = ()) -> str | None:
    """None if this process can encode `pix_fmt` frames with encoder `name`, else why not.

    disabled: encoders this worker must not use (FARM_DISABLED_ENCODERS: a node whose
    NVENC is broken, or tests standing for a node without it). The probe runs once per
    process and (name, pix_fmt); the verdict is logged once.
    """
    if name in set(disabled):
        problem: str | None = f"{name} is disabled on this worker (FARM_DISABLED_ENCODERS)"
    else:
        with _probe_lock:
            problem = _encoder_verdict(name, pix_fmt)
    key = (name, pix_fmt, problem)
    if key not in _logged:
        _logged.add(key)
        if problem is None:
            log.info("video encoder %s for %s: usable here", name, pix_fmt)
        else:
            log.warning("video encoder %s for %s: not usable here: %s", name, pix_fmt, problem)
    return problem


def forget_probes() -> None:
    """Drop the cached verdicts (tests; a process that gained a GPU)."""
    _encoder_verdict.cache_clear()
    _logged.clear()


_logged: set[tuple[str, str, str | None]] = set()


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
