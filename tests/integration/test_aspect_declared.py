"""An output declares its source's sample aspect ratio (the shape of its pixels).

Faces are detected and pasted in stored pixels, so a non-square-pixel source (720x480
NTSC at 32:27 or 8:9, 1440x1080 HDV at 4:3) is shown at its shape only if the output
declares the same SAR. The chunk encoders were never given it: every output declared
none (a 16:9 DVD clip came out 3:2) and verify did not look. Real renders through the
farm's media path in two chunks (test_frame_rate_declared.render), checked with
Debian's ffprobe 5.1: the stream's SAR (the container's where it has one, as players
read it) and the first frame's (the bitstream's, H.264/HEVC VUI).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from farm.errors import VerifyError
from farm.media.probe import probe
from farm.media.verify import verify_output
from tests import media_checks as mc
from tests.integration.test_frame_rate_declared import render

#: Frames of each clip: enough for two chunks.
FRAMES = 12

#: case -> (suffix, size, SAR given to ffmpeg's setsar, encoder, what ffprobe reads)
CASES = {
    "ntsc_wide_mp4": (".mp4", "720x480", "32/27", "libx264", "32:27"),
    "ntsc_narrow_mkv": (".mkv", "720x480", "8/9", "libx264", "8:9"),
    "hdv_ts": (".ts", "1440x1080", "4/3", "libx264", "4:3"),
    "pal_wide_hevc_mov": (".mov", "720x576", "64/45", "libx265", "64:45"),
    "ntsc_wide_avi": (".avi", "720x480", "32/27", "libx264", "32:27"),
    "square_mp4": (".mp4", "320x180", "1/1", "libx264", "1:1"),
    "undeclared_mkv": (".mkv", "320x180", "0/1", "libx264", None),
}


def ffmpeg_made(path: Path, size: str, sar: str, encoder: str) -> Path:
    """A clip as a plain `ffmpeg ... -vf setsar=SAR out` makes it: FRAMES frames at 25 fps
    (no B-frames for AVI, which the farm refuses with them)."""
    argv = [mc.ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", f"testsrc2=s={size}:r=25",
            "-frames:v", str(FRAMES), "-vf", f"setsar={sar}", "-c:v", encoder, "-pix_fmt", "yuv420p"]
    if encoder == "libx264":
        argv += ["-preset", "veryfast"] + (["-bf", "0"] if path.suffix == ".avi" else [])
    else:
        argv += ["-preset", "ultrafast", "-x265-params", "log-level=error"]
    subprocess.run([*argv, str(path)], check=True, capture_output=True)
    return path


def declared(path: Path) -> tuple[str | None, str | None, str | None]:
    """(stream SAR, stream DAR, first frame's SAR) as ffprobe reads them; None: undeclared."""
    stream = mc.video_stream(path)
    frames = json.loads(subprocess.run(
        [mc.ffprobe_exe(), "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1",
         "-show_entries", "frame=sample_aspect_ratio", "-of", "json", str(path)],
        check=True, capture_output=True, text=True).stdout)["frames"]

    def value(text: str | None) -> str | None:
        return None if text in (None, "N/A", "0:1") else text

    return (value(stream.get("sample_aspect_ratio")), value(stream.get("display_aspect_ratio")),
            value(frames[0].get("sample_aspect_ratio")))


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_output_declares_the_sources_sample_aspect_ratio(case: str, tmp_path: Path) -> None:
    # Given a clip whose pixels are declared square, not square, or of no declared shape
    suffix, size, sar, encoder, expected = CASES[case]
    src = ffmpeg_made(tmp_path / f"source{suffix}", size, sar, encoder)
    given = declared(src)
    assert (given[0], given[2]) == (expected, expected), given
    # When it is rendered in two chunks (verify_output passes)
    out = render(src, tmp_path / "work")
    # Then the output declares the same SAR, so it is shown at the same shape,
    # in its container and in its bitstream alike
    assert declared(out) == given


def test_verify_refuses_an_output_declaring_another_shape_of_pixel(tmp_path: Path) -> None:
    # Given an anamorphic clip, and a copy of it whose H.264 stream says square pixels
    src = ffmpeg_made(tmp_path / "source.mp4", "720x480", "32/27", "libx264")
    square = tmp_path / "square.mp4"
    subprocess.run([mc.ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-i", str(src), "-c", "copy",
                    "-bsf:v", "h264_metadata=sample_aspect_ratio=1/1", "-aspect", "3:2", str(square)],
                   check=True, capture_output=True)
    assert declared(square)[0] == "1:1"
    # When that copy is verified as the clip's output, Then it is refused, saying why
    with pytest.raises(VerifyError, match="sample aspect ratio 1:1, source 32:27"):
        verify_output(probe(src), square)
    # ... and the clip itself passes as its own output
    verify_output(probe(src), src)
