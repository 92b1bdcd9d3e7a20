"""Tiny, deterministic media fixtures for the farm's tests.

Everything here shells out to an ffmpeg binary with argument lists (never a shell
string). Generation prefers the ffmpeg bundled with imageio-ffmpeg (newer, has
libx265, ``-display_rotation``) and falls back to ``ffmpeg`` on PATH.

Units: sizes in pixels, ``fps`` in frames per second, every time (``seconds``,
``start_time``, ``flash_at``) in seconds. Clips are kept small (320x180, 2 s by
default) so that each one takes a few hundred milliseconds on two cores.

This module does not import the project's code: fixtures must stay independent of
what they test.
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "ffmpeg_exe",
    "make_clip",
    "planned_frame_times",
    "make_not_video",
    "NOT_VIDEO_KINDS",
    "make_face_image",
    "make_multi_video_clip",
    "make_cover_art_clip",
    "prepend_still_track",
    "make_no_face_image",
    "face_crop_rgb",
    "AUDIO_TONES_HZ",
    "AUDIO_LANGUAGES",
    "CLICK_SECONDS",
]

#: Sine frequency (Hz) of audio track i (track 0 is replaced by a click when flash_at is set).
AUDIO_TONES_HZ: tuple[float, ...] = (440.0, 660.0, 880.0, 1100.0, 1320.0, 1540.0)
#: ISO 639-2 language tag written on audio track i.
AUDIO_LANGUAGES: tuple[str, ...] = ("eng", "fra", "deu", "spa", "ita", "jpn")
#: Length of the click burst (seconds).
CLICK_SECONDS = 0.005
AUDIO_RATE = 48_000  # Hz

_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
# HDR10 mastering display: BT.2020 primaries, D65, 1000 nits max / 0.0001 min (x265 syntax,
# chromaticities in 0.00002 units, luminance in 0.0001 cd/m^2).
_MASTER_DISPLAY = "G(8500,39850)B(6550,2300)R(35400,14600)WP(15635,16450)L(10000000,1)"
_MAX_CLL = "1000,400"  # MaxCLL, MaxFALL (cd/m^2)

# Box (top, bottom, left, right) around the face in skimage.data.astronaut() (512x512);
# OpenCV's Haar cascade finds the face at x=177..272, y=66..161.
_FACE_BOX = (46, 181, 157, 292)


# --------------------------------------------------------------------------- ffmpeg


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg used for generation: imageio-ffmpeg's bundled binary, else PATH."""
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        if exe and Path(exe).exists():
            return str(exe)
    except Exception:  # pragma: no cover - depends on the environment
        pass
    exe = shutil.which("ffmpeg")
    if not exe:  # pragma: no cover
        raise RuntimeError("no ffmpeg binary: install imageio-ffmpeg or put ffmpeg on PATH")
    return exe


def _run(argv: Sequence[str], *, stdin: bytes | None = None, timeout: float = 60.0) -> None:
    """Run ffmpeg argv (a list, no shell); raise RuntimeError with its stderr on failure."""
    proc = subprocess.run(
        list(argv), input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"ffmpeg failed ({proc.returncode}): {' '.join(argv)}\n"
            + proc.stderr.decode(errors="replace")[-4000:]
        )


def _ff(*args: str) -> list[str]:
    """ffmpeg argv prefix: quiet, overwrite, bitexact (deterministic) muxing."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args]


# --------------------------------------------------------------------------- timing


def _vfr_ticks(n: int) -> list[int]:
    """Presentation times, in 1/fps ticks, of n VFR frames: durations repeat 1, 1, 2 ticks."""
    return [4 * (k // 3) + (k % 3) for k in range(n)]


def _frame_plan(fps: float, seconds: float, vfr: bool) -> tuple[int, list[int]]:
    """(frame count, pts of each frame in 1/fps ticks, start offset excluded)."""
    total_ticks = max(1, round(seconds * fps))
    if not vfr:
        return total_ticks, list(range(total_ticks))
    n = 0
    while True:  # frames until their durations fill `seconds`
        k = n
        end = 4 * (k // 3) + (k % 3) + (2 if k % 3 == 2 else 1)
        n += 1
        if end >= total_ticks:
            break
    return n, _vfr_ticks(n)


def planned_frame_times(
    *, fps: float = 30, seconds: float = 2.0, vfr: bool = False, start_time: float = 0.0
) -> list[float]:
    """Presentation time (seconds) of every frame make_clip() writes with these arguments."""
    _, ticks = _frame_plan(fps, seconds, vfr)
    return [start_time + t / fps for t in ticks]


# --------------------------------------------------------------------------- pictures


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())  # 512x512x3 RGB uint8


def face_crop_rgb() -> np.ndarray:
    """The astronaut's face (RGB uint8, 135x135: the face fills ~70% of it)."""
    t, b, l, r = _FACE_BOX
    return _astronaut()[t:b, l:r].copy()


def _resize_rgb(img: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    interp = cv2.INTER_AREA if width < img.shape[1] else cv2.INTER_CUBIC
    return cv2.resize(img, (width, height), interpolation=interp)


def _texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic, face-free colour texture (RGB uint8): stripes, blobs and fine noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(seed)
    noise = rng.integers(-18, 19, size=(height, width, 1), dtype=np.int16).astype(np.float32)
    r = 110 + 50 * np.sin(xx / 9.0) * np.cos(yy / 23.0)
    g = 120 + 45 * np.sin((xx + yy) / 15.0)
    b = 100 + 40 * np.cos(xx / 31.0 - yy / 7.0)
    img = np.stack([r, g, b], axis=-1) + noise
    return np.clip(img, 0, 255).astype(np.uint8)


def _moving_face_frames(width: int, height: int, n: int, fps: float) -> bytes:
    """rgb24 raw frames: the astronaut face (~25% of the height) gliding over a panning texture."""
    face_h = max(16, round(height * 0.25))
    face_w = face_h
    face = _resize_rgb(face_crop_rgb(), face_w, face_h)
    pan = max(8, width // 8)
    bg = _texture(height + pan, width + pan, seed=1)
    out = bytearray()
    span_x = max(0, width - face_w)
    span_y = max(0, height - face_h)
    period = max(n, 2)
    for k in range(n):
        phase = 2 * math.pi * k / period
        ox = round(pan / 2 * (1 + math.sin(phase)))
        oy = round(pan / 2 * (1 - math.cos(phase)))
        frame = bg[oy : oy + height, ox : ox + width].copy()
        x = round(span_x * (0.5 + 0.35 * math.sin(phase)))
        y = round(span_y * (0.5 + 0.3 * math.sin(2 * phase)))
        frame[y : y + face_h, x : x + face_w] = face
        out += frame.tobytes()
    return bytes(out)


# --------------------------------------------------------------------------- make_clip


def _codec_args(
    codec: str, pix_fmt: str, container: str, gop: int | None, bframes: int | None, hdr10: bool
) -> list[str]:
    """Encoder options: fast presets, deterministic single-threaded encoding."""
    args = ["-c:v", codec]
    x265_params = ["log-level=error"]
    if codec in ("libx264", "libx264rgb"):
        args += ["-preset", "veryfast", "-crf", "23", "-threads", "1"]
        if gop is not None:
            args += ["-sc_threshold", "0"]
    elif codec == "libx265":
        args += ["-preset", "ultrafast", "-crf", "26"]
        x265_params += ["pools=1", "frame-threads=1"]
        if gop is not None:
            x265_params += ["scenecut=0", "open-gop=0"]
        if hdr10:
            x265_params += ["hdr10=1", f"master-display={_MASTER_DISPLAY}", f"max-cll={_MAX_CLL}"]
        if container in ("mp4", "mov"):
            args += ["-tag:v", "hvc1"]
    elif codec in ("mpeg4", "libxvid"):
        args += ["-q:v", "5", "-threads", "1"]
    elif codec in ("libvpx", "libvpx-vp9"):
        args += ["-b:v", "0", "-crf", "35", "-deadline", "realtime", "-cpu-used", "8", "-threads", "1"]
    else:
        args += ["-threads", "1"]
    if gop is not None:
        args += ["-g", str(int(gop))]
        if codec == "libx265":
            x265_params += [f"keyint={int(gop)}"]
    if bframes is not None:
        args += ["-bf", str(int(bframes))]
        if codec == "libx265":
            x265_params += [f"bframes={int(bframes)}"]
    if codec == "libx265":
        args += ["-x265-params", ":".join(x265_params)]
    args += ["-pix_fmt", pix_fmt]
    return args


def _srt_text(seconds: float) -> str:
    """Two short SubRip cues inside [0, seconds)."""
    def ts(s: float) -> str:
        ms = round(s * 1000)
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    half = seconds / 2
    return (
        f"1\n{ts(0.1)} --> {ts(max(0.2, half - 0.1))}\nHello from farm\n\n"
        f"2\n{ts(half)} --> {ts(max(half + 0.1, seconds - 0.1))}\nSecond cue\n\n"
    )


def make_clip(
    path: str | Path,
    *,
    width: int = 320,
    height: int = 180,
    fps: int | float = 30,
    seconds: float = 2.0,
    codec: str = "libx264",
    pix_fmt: str | None = None,
    gop: int | None = None,
    bframes: int | None = None,
    vfr: bool = False,
    hdr10: bool = False,
    rotation: int = 0,
    audio_tracks: int = 0,
    subtitles: bool = False,
    start_time: float = 0.0,
    flash_at: float | None = None,
    moving_face: bool = False,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a small deterministic test clip to ``path`` and return it.

    Container from the suffix (.mp4/.m4v, .mov, .mkv). Sizes in pixels, fps in frames/s,
    times in seconds.

    - ``pix_fmt``: None picks yuv420p (yuv420p10le with hdr10), or yuv444p / yuv444p10le
      when width or height is odd (4:2:0 needs even sizes).
    - ``gop``: max keyframe interval in frames (scene-cut keyframes are turned off when set);
      a huge value (e.g. 10**6) gives a single keyframe. ``bframes``: max consecutive B-frames.
    - ``vfr``: frame durations repeat 1/fps, 1/fps, 2/fps (see planned_frame_times()).
    - ``hdr10``: HEVC Main10, yuv420p10le, bt2020 / smpte2084 / bt2020nc, with mastering
      display + content light level SEI (forces codec libx265). SDR clips are tagged bt709.
    - ``rotation``: display matrix, counter-clockwise degrees as ffprobe reports it
      (0/90/180/270); pixels are stored unrotated.
    - ``audio_tracks``: AAC 48 kHz mono tracks, track i a sine of AUDIO_TONES_HZ[i], language
      AUDIO_LANGUAGES[i]; with ``flash_at`` track 0 is silence plus a CLICK_SECONDS loud burst.
    - ``subtitles``: one English text track (mov_text in mp4/mov, subrip in mkv).
    - ``start_time``: container start time of every stream (``-output_ts_offset``).
    - ``flash_at``: video is dark except one all-white frame, the frame nearest that time;
      the click starts at that frame's presentation time exactly.
    - ``moving_face``: the astronaut's face (~25% of the height) moving over a texture.
    - ``metadata``: container tags, e.g. {"title": "x"}.
    """
    path = Path(path)
    container = _CONTAINERS.get(path.suffix.lower())
    if container is None:
        raise ValueError(f"unsupported container suffix {path.suffix!r} (use .mp4/.mov/.mkv)")
    if rotation % 90 != 0:
        raise ValueError("rotation must be a multiple of 90 degrees")
    if audio_tracks > len(AUDIO_TONES_HZ):
        raise ValueError(f"at most {len(AUDIO_TONES_HZ)} audio tracks")
    if hdr10:
        codec = "libx265"
    odd = width % 2 == 1 or height % 2 == 1
    if pix_fmt is None:
        pix_fmt = ("yuv444p10le" if odd else "yuv420p10le") if hdr10 else ("yuv444p" if odd else "yuv420p")
    if odd and pix_fmt.startswith(("yuv420", "yuvj420", "nv12", "yuv422", "yuvj422", "p010")):
        raise ValueError(f"{pix_fmt} needs an even width and height, got {width}x{height}")

    n_frames, ticks = _frame_plan(fps, seconds, vfr)
    flash_index: int | None = None
    if flash_at is not None:
        flash_index = min(range(n_frames), key=lambda k: abs(ticks[k] / fps - flash_at))
        flash_time = ticks[flash_index] / fps  # relative to start_time
    path.parent.mkdir(parents=True, exist_ok=True)

    argv = _ff()
    stdin: bytes | None = None
    size = f"{width}x{height}"
    if rotation % 360:
        argv += ["-display_rotation", str(int(rotation % 360)), "-noautorotate"]
    if moving_face:
        argv += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", size, "-framerate", str(fps), "-i", "pipe:0"]
        stdin = _moving_face_frames(width, height, n_frames, fps)
    elif flash_at is not None:
        argv += ["-f", "lavfi", "-i", f"color=c=0x181818:s={size}:r={fps}"]
    else:  # testsrc2 rounds sizes down to even: draw larger and crop
        big = f"{width + width % 2}x{height + height % 2}"
        argv += ["-f", "lavfi", "-i", f"testsrc2=s={big}:r={fps}"]

    tmpdir = tempfile.TemporaryDirectory(prefix="clips-")
    try:
        inputs = 1
        audio_inputs: list[int] = []
        for i in range(audio_tracks):
            if i == 0 and flash_at is not None:
                t0, t1 = flash_time, flash_time + CLICK_SECONDS
                expr = f"if(between(t\\,{t0:.6f}\\,{t1:.6f})\\,0.9*sin(2*PI*2000*(t-{t0:.6f})+PI/2)\\,0)"
                src = f"aevalsrc=exprs={expr}:s={AUDIO_RATE}:d={seconds}"
            else:
                src = f"sine=f={AUDIO_TONES_HZ[i]}:r={AUDIO_RATE}:d={seconds}"
            argv += ["-f", "lavfi", "-i", src]
            audio_inputs.append(inputs)
            inputs += 1
        sub_input: int | None = None
        if subtitles:
            srt = Path(tmpdir.name) / "subs.srt"
            srt.write_text(_srt_text(seconds), encoding="utf-8")
            argv += ["-i", str(srt)]
            sub_input = inputs
            inputs += 1

        # ---- video filter chain
        filters: list[str] = []
        if odd and not moving_face:
            filters.append(f"format=rgb24,crop={width}:{height}:0:0")  # crop 4:2:0 rounds to even
        if flash_index is not None:
            filters.append(f"drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='eq(n,{flash_index})'")
        if vfr:
            filters.append(f"settb=1/{fps},setpts=4*floor(N/3)+mod(N\\,3)")
        if pix_fmt.startswith("yuv"):
            matrix = "bt2020" if hdr10 else "bt709"
            filters.append(f"scale=out_color_matrix={matrix}:out_range=tv")
        filters.append(f"format={pix_fmt}")
        if hdr10:
            filters.append(
                "setparams=range=tv:color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc"
            )
        elif pix_fmt.startswith("yuv"):
            filters.append("setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709")
        argv += ["-map", "0:v:0", "-frames:v", str(n_frames), "-vf", ",".join(filters)]
        if vfr:
            argv += ["-fps_mode", "passthrough"]
        argv += _codec_args(codec, pix_fmt, container, gop, bframes, hdr10)
        if hdr10:
            argv += ["-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc"]
        argv += ["-flags:v", "+bitexact"]

        for j, idx in enumerate(audio_inputs):
            argv += ["-map", f"{idx}:a:0", f"-metadata:s:a:{j}", f"language={AUDIO_LANGUAGES[j]}"]
        if audio_inputs:
            argv += ["-c:a", "aac", "-b:a", "64k", "-ac", "1", "-ar", str(AUDIO_RATE), "-flags:a", "+bitexact"]
        if sub_input is not None:
            argv += ["-map", f"{sub_input}:s:0", "-metadata:s:s:0", "language=eng"]
            argv += ["-c:s", "srt" if container == "matroska" else "mov_text"]
        argv += ["-map_metadata", "-1", "-map_chapters", "-1"]
        for key, value in (metadata or {}).items():
            argv += ["-metadata", f"{key}={value}"]
        if start_time:
            argv += ["-output_ts_offset", f"{start_time:.6f}"]
        argv += ["-t", f"{seconds + 1.0:.6f}"]  # safety net; -frames:v and d= bound the streams
        argv += ["-fflags", "+bitexact", "-f", container, str(path)]
        _run(argv, stdin=stdin)
    finally:
        tmpdir.cleanup()
    return path


# --------------------------------------------------------------------------- hostile inputs

NOT_VIDEO_KINDS: tuple[str, ...] = (
    "text",  # a text file named .mp4
    "truncated",  # first 30% of a real mp4 whose moov atom is at the end: no index at all
    "truncated_faststart",  # first 30% of a faststart mp4: index present, media data cut
    "audio_only",  # an AAC .m4a with no video stream
    "zero_frames",  # an mp4 with a video track that holds no frames
    "m3u8",  # an HLS playlist whose segment is another local file (absolute path)
    "ffconcat",  # an ffconcat list that pulls in another local file (absolute path)
    "png",  # a PNG image named .mp4
    "empty",  # a zero-byte file
)


def make_not_video(path: str | Path, kind: str = "text") -> Path:
    """Write a hostile / non-video input of ``kind`` (see NOT_VIDEO_KINDS) at ``path``.

    The file is written under the name given, whatever its suffix (so a playlist can be
    disguised as ``.mp4``). For "m3u8" and "ffconcat" the referenced local media file is
    written beside it as ``<stem>.target.ts`` / ``<stem>.target.mp4``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "text":
        path.write_text("This is not a video.\nJust some text pretending to be one.\n", encoding="utf-8")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind in ("truncated", "truncated_faststart"):
        with tempfile.TemporaryDirectory(prefix="clips-") as td:
            full = Path(td) / "full.mp4"
            make_clip(full, seconds=1.0, audio_tracks=1)
            if kind == "truncated_faststart":
                fast = Path(td) / "fast.mp4"
                _run(_ff("-i", str(full), "-c", "copy", "-movflags", "+faststart", "-fflags", "+bitexact", str(fast)))
                full = fast
            data = full.read_bytes()
        path.write_bytes(data[: int(len(data) * 0.3)])
    elif kind == "audio_only":
        _run(
            _ff(
                "-f", "lavfi", "-i", f"sine=f=440:r={AUDIO_RATE}:d=1",
                "-c:a", "aac", "-b:a", "64k", "-flags:a", "+bitexact", "-fflags", "+bitexact", "-f", "ipod" if path.suffix.lower() == ".m4a" else "mp4",
                str(path),
            )
        )
    elif kind == "zero_frames":
        _run(
            _ff(
                "-f", "lavfi", "-i", "testsrc2=s=320x180:r=30",
                "-frames:v", "0", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-flags:v", "+bitexact",
                "-fflags", "+bitexact",
                "-f", "mp4", str(path),
            )
        )
        if not path.exists():  # pragma: no cover - depends on the ffmpeg build
            raise RuntimeError("ffmpeg did not write a zero-frame mp4")
    elif kind == "m3u8":
        target = path.with_name(path.stem + ".target.ts")
        make_clip(path.with_name(path.stem + ".target.mp4"), seconds=1.0)
        _run(_ff("-i", str(path.with_name(path.stem + ".target.mp4")), "-c", "copy", "-fflags", "+bitexact", "-f", "mpegts", str(target)))
        path.with_name(path.stem + ".target.mp4").unlink()
        path.write_text(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
            f"#EXTINF:1.000,\n{target.resolve()}\n#EXT-X-ENDLIST\n",
            encoding="utf-8",
        )
    elif kind == "ffconcat":
        target = path.with_name(path.stem + ".target.mp4")
        make_clip(target, seconds=1.0)
        quoted = str(target.resolve()).replace("'", "'\\''")
        path.write_text(f"ffconcat version 1.0\nfile '{quoted}'\n", encoding="utf-8")
    elif kind == "png":
        import cv2

        ok, buf = cv2.imencode(".png", _texture(64, 64)[:, :, ::-1])
        assert ok
        path.write_bytes(buf.tobytes())
    else:
        raise ValueError(f"unknown kind {kind!r}; one of {NOT_VIDEO_KINDS}")
    return path


# --------------------------------------------------------------------------- still images


def make_face_image(path: str | Path, *, size: int = 256) -> Path:
    """Write the astronaut's face (size x size pixels, face ~70% of it) as a JPEG (quality 95)."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = _resize_rgb(face_crop_rgb(), size, size)
    if not cv2.imwrite(str(path), img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise RuntimeError(f"could not write {path}")
    return path


def make_no_face_image(path: str | Path, *, width: int = 256, height: int = 256) -> Path:
    """Write a plain deterministic texture with no face as a JPEG (quality 95)."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), _texture(height, width, seed=2)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise RuntimeError(f"could not write {path}")
    return path


# --------------------------------------------------------------------------- several video streams


def make_multi_video_clip(
    path: str | Path,
    tracks: Sequence[tuple[int, int, int]],
    *,
    fps: int = 25,
    audio: bool = True,
    default: int | None = None,
) -> Path:
    """Write a container holding one H.264 video stream per ``tracks`` entry, in order.

    Each entry is (width, height, frames) in pixels and frames at ``fps``; a one-frame
    entry is a still (a single picture as a video track, not cover art). Track i shows
    testsrc2 with a different hue per track, so the streams differ in content.
    ``audio``: one AAC mono 440 Hz track lasting as long as the longest video.
    ``default``: the only video track flagged as default (None: no track is flagged).
    Container from the suffix (.mp4/.mov/.mkv).
    """
    path = Path(path)
    container = _CONTAINERS.get(path.suffix.lower())
    if container is None:
        raise ValueError(f"unsupported container suffix {path.suffix!r} (use .mp4/.mov/.mkv)")
    path.parent.mkdir(parents=True, exist_ok=True)
    seconds = max(frames for _, _, frames in tracks) / fps
    argv = _ff()
    for n, (width, height, frames) in enumerate(tracks):
        argv += ["-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r={fps}:d={frames / fps},hue=h={n * 90}"]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=f={AUDIO_TONES_HZ[0]}:r={AUDIO_RATE}:d={seconds}"]
    for n, (_, _, frames) in enumerate(tracks):
        argv += ["-map", f"{n}:v:0"]
        argv += [f"-disposition:v:{n}", "default" if default == n else "0"]
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25",
             "-flags:v", "+bitexact"]
    if audio:
        argv += ["-map", f"{len(tracks)}:a:0", "-c:a", "aac", "-b:a", "64k", "-ac", "1",
                 "-flags:a", "+bitexact", "-metadata:s:a:0", "language=eng"]
    argv += ["-map_metadata", "-1", "-fflags", "+bitexact", "-f", container, str(path)]
    _run(argv)
    return path


def prepend_still_track(src: str | Path, path: str | Path, *, width: int = 512, height: int = 512) -> Path:
    """Write ``path``: a one-frame ``width`` x ``height`` H.264 still (testsrc2) as track 0,
    then every stream of ``src``, copied. Container from the suffix (.mp4/.mov/.mkv)."""
    path = Path(path)
    container = _CONTAINERS.get(path.suffix.lower())
    if container is None:
        raise ValueError(f"unsupported container suffix {path.suffix!r} (use .mp4/.mov/.mkv)")
    _run(_ff("-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r=25:d=0.04", "-i", str(src),
             "-map", "0:v:0", "-map", "1", "-c", "copy", "-c:v:0", "libx264", "-pix_fmt:v:0", "yuv420p",
             "-disposition:v:0", "0", "-fflags", "+bitexact", "-f", container, str(path)))
    return path


def make_cover_art_clip(path: str | Path, *, seconds: float = 2.0, audio_tracks: int = 1) -> Path:
    """Write a make_clip() video (320x180, 30 fps) with a 64x64 PNG cover picture attached.

    The picture is a video stream with the attached_pic disposition, after the clip's own
    streams (MP4 keeps it in its iTunes tag list, Matroska as an attachment). A .mov is
    that MP4 with the QuickTime major brand ('qt  '), as Apple's tools write such files:
    FFmpeg's MOV muxer itself has no place for cover art.
    """
    path = Path(path)
    container = _CONTAINERS.get(path.suffix.lower())
    if container is None:
        raise ValueError(f"unsupported container suffix {path.suffix!r} (use .mp4/.mov/.mkv)")
    with tempfile.TemporaryDirectory(prefix="clips-") as td:
        plain = make_clip(Path(td) / f"plain{path.suffix}", seconds=seconds, audio_tracks=audio_tracks)
        cover = Path(td) / "cover.png"
        _run(_ff("-f", "lavfi", "-i", "testsrc2=s=64x64", "-frames:v", "1", "-f", "image2", str(cover)))
        argv = _ff("-i", str(plain), "-i", str(cover), "-map", "0", "-map", "1:v:0", "-c", "copy",
                   "-c:v:1", "png", "-disposition:v:1", "attached_pic", "-fflags", "+bitexact",
                   "-f", "mp4" if container == "mov" else container, str(path))
        _run(argv)
    if container == "mov":
        data = bytearray(path.read_bytes())
        assert data[4:8] == b"ftyp"
        data[8:12] = b"qt  "          # the major brand
        path.write_bytes(bytes(data))
    return path
