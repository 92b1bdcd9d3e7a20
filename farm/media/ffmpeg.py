"""The ffmpeg binary: where it is, how its command lines are built, how it is run.

Command lines are built by pure functions (tested by equality) and run as argument
lists, never through a shell. Every input that came from a user is opened with
`input_args`: the file protocol only and a forced, allowed demuxer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from farm.errors import MediaError
from farm.media.formats import ALLOWED_DEMUXERS, is_mov_family

#: How much of ffmpeg's stderr an error message carries, in characters.
STDERR_TAIL_CHARS = 2000


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: $FARM_FFMPEG, else imageio-ffmpeg's, else PATH's."""
    env = os.environ.get("FARM_FFMPEG")
    if env:
        return env
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:  # not installed or no binary for this platform
        pass
    found = shutil.which("ffmpeg")
    if not found:
        raise MediaError("no ffmpeg binary found", hint="install imageio-ffmpeg or set FARM_FFMPEG")
    return found


def run_ffmpeg(argv: list[str], *, what: str, timeout_s: float | None = None) -> None:
    """Run an ffmpeg argv (a list, no shell); raise MediaError with the stderr tail."""
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise MediaError(f"ffmpeg timed out after {timeout_s} s while trying to {what}") from None
    except OSError as exc:
        raise MediaError(f"cannot run ffmpeg ({argv[0]}) to {what}: {exc}") from None
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace")[-STDERR_TAIL_CHARS:].strip()
        raise MediaError(f"ffmpeg failed to {what} (exit {done.returncode}):\n{tail}")


def base_args(exe: str) -> list[str]:
    """The start of every ffmpeg command line: quiet, no stdin, overwrite."""
    return [exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]


def input_args(path: str | os.PathLike[str], demuxer: str) -> list[str]:
    """Open one input safely: local files only, the given (allowed) demuxer forced."""
    if demuxer not in ALLOWED_DEMUXERS:
        raise MediaError(f"demuxer {demuxer!r} is not allowed for inputs")
    return ["-protocol_whitelist", "file", "-f", demuxer, "-i", file_url(path)]


def file_url(path: str | os.PathLike[str]) -> str:
    """An absolute ``file:`` URL, so a name like ``concat:x`` is never a protocol."""
    return "file:" + str(Path(path).absolute())


@dataclass(frozen=True)
class FinalizeSpec:
    """What the final remux takes: the joined video, and everything else from the source.

    stream_map: output streams in order, each (input, stream index): input 0 is the
    joined video file, input 1 the source. meta_from: for each output stream, the
    source stream whose tags (language, title, handler) it gets. video_time_base: the
    source's video time base ('1001/30000') where the joined video's differs from it.
    write_colr: MP4/MOV always get a 'colr' box (the source's colour range is known).
    video_tag: the video's codec tag in the output (e.g. 'hvc1', which Apple players need).
    video_range_bsf: the bitstream filter that writes the source's range into the video's
    own headers (range_bsf), where it is known.
    """

    video_path: Path
    video_demuxer: str
    source_path: Path
    source_demuxer: str
    out_path: Path
    muxer: str
    stream_map: tuple[tuple[int, int], ...]
    meta_from: tuple[int, ...]
    metadata: tuple[tuple[str, str], ...] = ()
    video_timescale: int | None = None
    video_time_base: str | None = None
    write_colr: bool = False
    video_tag: str | None = None
    video_range_bsf: str | None = None
    free_tags: bool = True   # MP4/MOV: free-form tags (use_metadata_tags); False: iTunes tags (cover art)


def finalize_argv(exe: str, spec: FinalizeSpec) -> list[str]:
    """ffmpeg argv: joined video + source audio/subtitles/data/attachments, all copied.

    -copyts keeps every timestamp as it is in the inputs (the joined video already
    carries the source's pts), so a non-zero start time and the audio offset survive.
    """
    argv = base_args(exe)
    argv += input_args(spec.video_path, spec.video_demuxer)
    argv += input_args(spec.source_path, spec.source_demuxer)
    for inp, idx in spec.stream_map:
        argv += ["-map", f"{inp}:{idx}"]
    argv += ["-c", "copy", "-copyts", "-map_metadata", "1", "-map_chapters", "1"]
    for out_idx, src_idx in enumerate(spec.meta_from):
        argv += [f"-map_metadata:s:{out_idx}", f"1:s:{src_idx}"]
    video_idx = spec.stream_map.index((0, 0))
    bsfs = [f"setts=time_base={spec.video_time_base}"] if spec.video_time_base else []
    bsfs += [spec.video_range_bsf] if spec.video_range_bsf else []
    if bsfs:
        argv += [f"-bsf:{video_idx}", ",".join(bsfs)]
    if spec.video_tag:
        argv += [f"-tag:{video_idx}", spec.video_tag]
    for key, value in spec.metadata:
        argv += ["-metadata", f"{key}={value}"]
    if is_mov_family(spec.muxer):
        flags = ("+use_metadata_tags" if spec.free_tags else "") + ("+write_colr" if spec.write_colr else "")
        if flags:
            argv += ["-movflags", flags]
        if spec.video_timescale:
            argv += ["-video_track_timescale", str(spec.video_timescale),
                     "-movie_timescale", str(spec.video_timescale)]
    if spec.muxer == "mpegts":
        argv += ["-mpegts_copyts", "1"]   # else the muxer shifts every timestamp by its delay
    argv += ["-f", spec.muxer, file_url(spec.out_path)]
    return argv


def range_bsf(codec: str, colour_range: int) -> str | None:
    """The bitstream filter that makes an H.264/HEVC stream declare `colour_range` (1 tv,
    2 pc) in its VUI; None for an unknown range or another codec.

    x264 (and FFmpeg's NVENC wrapper, by its source) writes no VUI signal type for a limited
    range with no colour description, so such a stream declares no range of its own; where
    the container has no place for one (MOV's 'colr' is 'nclc', without a range; AVI,
    MPEG-TS, NUT, 3GP) the output would declare none. The filter rewrites only the parameter sets (video_format stays 5,
    unspecified); nothing is re-encoded.
    """
    if colour_range not in (1, 2) or codec not in ("h264", "hevc"):
        return None
    return f"{codec}_metadata=video_full_range_flag={colour_range - 1}"
