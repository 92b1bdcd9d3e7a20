"""Independent media measurements for tests (ffprobe JSON + ffmpeg decodes to raw pipes).

Nothing here imports the project's code, so tests can check the farm's output against
a second opinion. Probing uses Debian's /usr/bin/ffprobe (falls back to PATH); decoding
uses /usr/bin/ffmpeg (falls back to PATH, then imageio-ffmpeg's binary).

All times are in seconds, on the file's own timeline (so a clip whose container
start_time is 1.5 s has its first frame at ~1.5).
"""

from __future__ import annotations

import functools
import json
import math
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ffprobe_exe",
    "ffmpeg_exe",
    "ffprobe_json",
    "video_stream",
    "video_frame_times",
    "frame_count",
    "video_packets",
    "keyframe_count",
    "stream_summary",
    "rotation",
    "colour",
    "mastering_display",
    "container_tags",
    "start_times",
    "flash_time",
    "click_time",
    "frame_luma",
    "audio_samples",
    "assert_same_frame_times",
    "assert_av_sync",
]

PathLike = str | Path


@functools.lru_cache(maxsize=1)
def ffprobe_exe() -> str:
    """The ffprobe used for checks: /usr/bin/ffprobe, else the one on PATH."""
    for cand in ("/usr/bin/ffprobe", shutil.which("ffprobe")):
        if cand and Path(cand).exists():
            return cand
    raise RuntimeError("no ffprobe binary found (apt-get install ffmpeg)")


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The ffmpeg used for check decodes: /usr/bin/ffmpeg, else PATH, else imageio-ffmpeg."""
    for cand in ("/usr/bin/ffmpeg", shutil.which("ffmpeg")):
        if cand and Path(cand).exists():
            return cand
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _check_output(argv: Sequence[str], timeout: float = 60.0) -> bytes:
    proc = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{Path(argv[0]).name} failed ({proc.returncode}): {' '.join(map(str, argv))}\n"
            + proc.stderr.decode(errors="replace")[-4000:]
        )
    return proc.stdout


def _probe(path: PathLike, *args: str) -> dict[str, Any]:
    out = _check_output([ffprobe_exe(), "-v", "error", "-of", "json", *args, str(path)])
    return json.loads(out or b"{}")


def ffprobe_json(path: PathLike) -> dict[str, Any]:
    """ffprobe -show_format -show_streams as a dict with keys "format" and "streams"."""
    data = _probe(path, "-show_format", "-show_streams")
    data.setdefault("streams", [])
    data.setdefault("format", {})
    return data


def video_stream(path: PathLike) -> dict[str, Any]:
    """The first video stream's ffprobe dict (cover-art pictures skipped); AssertionError if none."""
    for s in ffprobe_json(path)["streams"]:
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic"):
            return s
    raise AssertionError(f"{path}: no video stream")


def _f(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def video_frame_times(path: PathLike) -> list[float]:
    """Presentation time (s) of every decoded frame of the first video stream, in display order.

    Decodes with ffprobe -show_frames (so edit lists and start offsets are applied as a
    player would) and uses best_effort_timestamp, falling back to pts.
    """
    data = _probe(
        path, "-select_streams", "v:0", "-show_entries",
        "frame=best_effort_timestamp_time,pts_time,pkt_dts_time",
    )
    times: list[float] = []
    for fr in data.get("frames", []):
        t = _f(fr.get("best_effort_timestamp_time"))
        if t is None:
            t = _f(fr.get("pts_time"))
        if t is None:
            t = _f(fr.get("pkt_dts_time"))
        if t is None:
            raise AssertionError(f"{path}: a video frame has no timestamp: {fr}")
        times.append(t)
    return times


def frame_count(path: PathLike) -> int:
    """Number of decoded frames in the first video stream."""
    return len(video_frame_times(path))


def video_packets(path: PathLike) -> list[dict[str, Any]]:
    """Video packets of the first video stream in file (decode) order: dicts with
    pts (s, or None), dts (s, or None), key (bool), size (bytes)."""
    data = _probe(path, "-select_streams", "v:0", "-show_entries", "packet=pts_time,dts_time,flags,size")
    return [
        {
            "pts": _f(p.get("pts_time")),
            "dts": _f(p.get("dts_time")),
            "key": "K" in (p.get("flags") or ""),
            "size": int(p.get("size", 0)),
        }
        for p in data.get("packets", [])
    ]


def keyframe_count(path: PathLike) -> int:
    """Number of video packets flagged as keyframes (ffprobe -show_packets flags K)."""
    return sum(1 for p in video_packets(path) if p["key"])


def stream_summary(path: PathLike) -> list[tuple[str, str, str | None]]:
    """(codec_type, codec_name, language or None) for every stream, in file order."""
    out = []
    for s in ffprobe_json(path)["streams"]:
        tags = {k.lower(): v for k, v in (s.get("tags") or {}).items()}
        lang = tags.get("language")
        out.append((s.get("codec_type", ""), s.get("codec_name", ""), None if lang in (None, "und") else lang))
    return out


def rotation(path: PathLike) -> int:
    """Display-matrix rotation of the first video stream, in degrees counter-clockwise as
    ffprobe reports it, normalised to 0/90/180/270 (0 when there is no display matrix).

    Note: a portrait phone clip (legacy "rotate=90" tag) reads 270 here.
    """
    s = video_stream(path)
    for sd in s.get("side_data_list", []) or []:
        if "rotation" in sd:
            return int(round(float(sd["rotation"]))) % 360
    tag = (s.get("tags") or {}).get("rotate")  # very old ffprobe builds
    return (-int(tag)) % 360 if tag is not None else 0


def _bits_from_pix_fmt(pix_fmt: str) -> int:
    m = re.search(r"(\d+)(le|be)$", pix_fmt or "")
    if m and int(m.group(1)) <= 16 and not pix_fmt.startswith(("rgb", "bgr", "gray", "ya")):
        return int(m.group(1))
    if m and pix_fmt.startswith(("gray", "gbrp")):
        return int(m.group(1))
    if pix_fmt in ("p010le", "p010be"):
        return 10
    return 8


def colour(path: PathLike) -> dict[str, Any]:
    """pix_fmt, color_primaries, color_transfer, color_space, color_range (None when
    unset) and bits (bit depth per sample, int) of the first video stream."""
    s = video_stream(path)
    pix_fmt = s.get("pix_fmt") or ""
    bits = s.get("bits_per_raw_sample")
    try:
        bits_i = int(bits)
    except (TypeError, ValueError):
        bits_i = _bits_from_pix_fmt(pix_fmt)
    def opt(key: str) -> str | None:
        v = s.get(key)
        return None if v in (None, "unknown", "") else v
    return {
        "pix_fmt": pix_fmt,
        "color_primaries": opt("color_primaries"),
        "color_transfer": opt("color_transfer"),
        "color_space": opt("color_space"),
        "color_range": opt("color_range"),
        "bits": bits_i,
    }


def mastering_display(path: PathLike) -> dict[str, Any] | None:
    """Mastering display side data of the first video frame (ffprobe dict), or None."""
    data = _probe(path, "-select_streams", "v:0", "-read_intervals", "%+#1", "-show_frames")
    for fr in data.get("frames", []):
        for sd in fr.get("side_data_list", []) or []:
            if sd.get("side_data_type", "").lower().startswith("mastering display"):
                return sd
    for sd in video_stream(path).get("side_data_list", []) or []:
        if sd.get("side_data_type", "").lower().startswith("mastering display"):
            return sd
    return None


def container_tags(path: PathLike) -> dict[str, str]:
    """Format-level (container) tags with lower-cased keys."""
    tags = ffprobe_json(path)["format"].get("tags") or {}
    return {k.lower(): v for k, v in tags.items()}


def start_times(path: PathLike) -> dict[str, Any]:
    """{"format": start_time, "streams": [(codec_type, start_time)]} in seconds (None if unset)."""
    d = ffprobe_json(path)
    return {
        "format": _f(d["format"].get("start_time")),
        "streams": [(s.get("codec_type"), _f(s.get("start_time"))) for s in d["streams"]],
    }


# --------------------------------------------------------------------------- decodes


def frame_luma(path: PathLike, *, width: int = 32, height: int = 18) -> np.ndarray:
    """Mean luma (0..255 gray) of every video frame, decoded with ffmpeg at width x height,
    in the same order as video_frame_times()."""
    raw = _check_output(
        [
            ffmpeg_exe(), "-v", "error", "-nostdin", "-noautorotate", "-i", str(path), "-map", "0:v:0",
            "-vf", f"scale={width}:{height}:flags=area,format=gray", "-fps_mode", "passthrough",
            "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1",
        ],
        timeout=120,
    )
    frames = np.frombuffer(raw, np.uint8).reshape(-1, height * width)
    return frames.mean(axis=1)


def flash_time(path: PathLike) -> float:
    """Presentation time (s) of the brightest video frame (mean luma at low resolution)."""
    luma = frame_luma(path)
    times = video_frame_times(path)
    if len(times) != len(luma):
        raise AssertionError(f"{path}: ffprobe saw {len(times)} frames, ffmpeg decoded {len(luma)}")
    if not len(times):
        raise AssertionError(f"{path}: no video frames")
    return times[int(np.argmax(luma))]


def _audio_stream(path: PathLike, track: int) -> dict[str, Any]:
    streams = [s for s in ffprobe_json(path)["streams"] if s.get("codec_type") == "audio"]
    if track >= len(streams):
        raise AssertionError(f"{path}: no audio track {track} ({len(streams)} audio streams)")
    return streams[track]


def audio_samples(path: PathLike, track: int = 0) -> tuple[np.ndarray, int, float]:
    """(mono int16 samples, sample rate Hz, time (s) of the first sample) of audio track ``track``.

    The first-sample time is the stream's start_time as ffprobe reports it (after edit
    lists / encoder delay), falling back to the container's.
    """
    s = _audio_stream(path, track)
    rate = int(s.get("sample_rate") or 48000)
    start = _f(s.get("start_time"))
    if start is None:
        start = _f(ffprobe_json(path)["format"].get("start_time")) or 0.0
    raw = _check_output(
        [
            ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-map", f"0:a:{track}",
            "-ac", "1", "-ar", str(rate), "-c:a", "pcm_s16le", "-f", "s16le", "pipe:1",
        ],
        timeout=120,
    )
    return np.frombuffer(raw, np.int16), rate, start


def click_time(path: PathLike, track: int = 0) -> float:
    """Time (s) of the loudest audio sample of audio track ``track``."""
    pcm, rate, start = audio_samples(path, track)
    if not len(pcm):
        raise AssertionError(f"{path}: audio track {track} decoded to no samples")
    return start + int(np.argmax(np.abs(pcm.astype(np.int32)))) / rate


# --------------------------------------------------------------------------- asserts


def assert_same_frame_times(
    a: PathLike | Sequence[float], b: PathLike | Sequence[float], tol_s: float = 1e-3
) -> None:
    """Assert a and b (files, or lists of frame times in s) have the same number of video
    frames and every pair of presentation times differs by at most tol_s seconds."""
    ta = list(a) if not isinstance(a, (str, Path)) else video_frame_times(a)
    tb = list(b) if not isinstance(b, (str, Path)) else video_frame_times(b)
    assert len(ta) == len(tb), f"frame count differs: {len(ta)} vs {len(tb)}"
    bad = [(i, x, y) for i, (x, y) in enumerate(zip(ta, tb)) if abs(x - y) > tol_s]
    assert not bad, (
        f"{len(bad)} of {len(ta)} frame times differ by more than {tol_s} s; first: "
        + ", ".join(f"#{i}: {x:.6f} vs {y:.6f}" for i, x, y in bad[:5])
    )


def assert_av_sync(path: PathLike, tol_s: float = 1 / 30, *, flash: bool | None = None) -> dict[str, Any]:
    """Assert audio and video line up in ``path`` within tol_s seconds; return the measurements.

    Always: the first video frame and the first sample of every audio track start within
    tol_s of each other. With ``flash=True`` (or None and the file has a clear flash frame and
    a clear click on audio track 0, as make_clip(flash_at=..., audio_tracks>=1) writes), also
    flash_time() and click_time() must agree within tol_s.
    """
    vtimes = video_frame_times(path)
    assert vtimes, f"{path}: no video frames"
    v0 = vtimes[0]
    n_audio = sum(1 for s in ffprobe_json(path)["streams"] if s.get("codec_type") == "audio")
    assert n_audio, f"{path}: no audio stream"
    result: dict[str, Any] = {"video_start": v0, "audio_starts": []}
    for k in range(n_audio):
        _, _, a0 = audio_samples(path, k)
        result["audio_starts"].append(a0)
        assert abs(a0 - v0) <= tol_s, f"{path}: audio track {k} starts at {a0:.4f} s, video at {v0:.4f} s"
    if flash is None or flash:
        luma = frame_luma(path)
        pcm, rate, a0 = audio_samples(path, 0)
        amp = np.abs(pcm.astype(np.int32))
        clear = (
            len(luma) > 2 and len(amp) > 0
            and luma.max() > 2 * float(np.median(luma)) + 30
            and amp.max() > 8 * (float(np.median(amp)) + 1)
        )
        if flash and not clear:
            raise AssertionError(f"{path}: no clear flash frame + click to compare")
        if clear:
            assert len(luma) == len(vtimes), f"{path}: {len(vtimes)} frames probed, {len(luma)} decoded"
            ft = vtimes[int(np.argmax(luma))]
            ct = a0 + int(np.argmax(amp)) / rate
            result.update(flash_time=ft, click_time=ct)
            assert abs(ft - ct) <= tol_s, f"{path}: flash at {ft:.4f} s but click at {ct:.4f} s"
    return result
