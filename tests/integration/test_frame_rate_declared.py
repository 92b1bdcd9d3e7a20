"""An output declares its source's frame rate, and its video lasts as long as the source's.

Real renders through the farm's media path (probe -> plan -> split -> chunk transcode ->
join -> verify), in two chunks, checked with Debian's ffprobe 5.1 (tests/media_checks.py).
Two drifts are pinned here. A 24000/1001 Matroska source, whose timestamps are whole
milliseconds: its output's DefaultDuration (which ffprobe reads as the stream's
r_frame_rate and avg_frame_rate) was derived by ffmpeg from the joined MP4's 1 ms sample
durations (10000/417 fps for 50 frames) instead of being the source's. And every H.264
output: x264 declared its time base's tick as the frame rate ("24000 fps" for a 1/24000
MP4), so ffprobe 5.1 read no packet durations and the last frame ended a frame early.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from farm.media.chunk_codec import choose_encoder, transcode_chunk
from farm.media.join import join_chunks
from farm.media.plan import plan_chunks
from farm.media.probe import probe
from farm.media.split import split_chunks
from farm.media.verify import verify_output
from tests import media_checks as mc

META = {"comment": "synthetic media made by farm; job=frame-rate", "farm_job_id": "frame-rate"}

#: Frames of each clip: 50 at 24000/1001 fps last 2085.4 ms, not a whole number of ms.
FRAMES = 50

#: case -> (suffix, frame rate, with an audio track)
CASES = {
    "film_mkv_with_audio": (".mkv", "24000/1001", True),
    "ntsc_mkv": (".mkv", "30000/1001", False),
    "film_mov": (".mov", "24000/1001", False),
    "ntsc_mp4_with_audio": (".mp4", "30000/1001", True),
}


def ffmpeg_made(path: Path, rate: str, audio: bool) -> Path:
    """A clip as a plain `ffmpeg ... out` makes it (Debian's ffmpeg 5.1): FRAMES frames at `rate`."""
    argv = [mc.ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", f"testsrc2=s=320x180:r={rate}"]
    if audio:
        argv += ["-f", "lavfi", "-i", "sine=f=440:r=48000", "-c:a", "aac", "-shortest"]
    argv += ["-frames:v", str(FRAMES), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(argv, check=True, capture_output=True)
    return path


def render(src: Path, work: Path) -> Path:
    """The farm's media path with an identity stage chain, in two chunks."""
    info = probe(src)
    plans = plan_chunks(info, -(-info.video.frame_count // 2))
    assert len(plans) == 2
    inputs = split_chunks(src, info, plans, work / "in")
    settings = choose_encoder(info.video)
    (work / "out").mkdir(parents=True, exist_ok=True)
    outputs = []
    for plan, seg in zip(plans, inputs):
        out = work / "out" / seg.name
        assert transcode_chunk(seg, out, plan, settings, lambda frame: frame) == plan.frame_count
        outputs.append(out)
    final = work / f"final{src.suffix}"
    join_chunks(outputs, src, info, final, META)
    verify_output(info, final, META)      # the farm's own check before publishing
    return final


def video_end_s(path: Path) -> float:
    """Where the video's last frame ends (s): its packets' largest pts + duration, as
    ffprobe reads them; AssertionError if ffprobe reads a packet without a duration."""
    out = subprocess.run([mc.ffprobe_exe(), "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "packet=pts_time,duration_time", "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, text=True).stdout
    rows = [line.split(",")[:2] for line in out.split()]
    missing = [pts for pts, duration in rows if duration == "N/A"]
    assert not missing, f"{path.name}: {len(missing)} of {len(rows)} packets have no duration"
    return max(float(pts) + float(duration) for pts, duration in rows)


def video_duration_s(path: Path) -> float:
    """The video stream's duration in seconds: MP4/MOV's from the track, Matroska's DURATION tag."""
    stream = mc.video_stream(path)
    if stream.get("duration") not in (None, "N/A"):
        return float(stream["duration"])
    tag = {k.lower(): v for k, v in (stream.get("tags") or {}).items()}["duration"]
    h, m, s = re.fullmatch(r"(\d+):(\d+):([\d.]+)", tag).groups()   # type: ignore[union-attr]
    return int(h) * 3600 + int(m) * 60 + float(s)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_output_declares_the_sources_frame_rate(case: str, tmp_path: Path) -> None:
    # Given an NTSC-rate clip (23.976 or 29.97 fps) whose length is not a whole number of ms
    suffix, rate, audio = CASES[case]
    src = ffmpeg_made(tmp_path / f"source{suffix}", rate, audio)
    given = mc.video_stream(src)
    assert (given["r_frame_rate"], given["avg_frame_rate"]) == (rate, rate)
    # When it is rendered in two chunks
    out = render(src, tmp_path / "work")
    # Then the output's video declares the same frame rate ...
    got = mc.video_stream(out)
    assert (got["r_frame_rate"], got["avg_frame_rate"]) == (rate, rate), got
    # ... shows the same frames at the same times, and lasts as long, within a frame
    mc.assert_same_frame_times(src, out)
    frame_s = 1 / (24000 / 1001 if rate == "24000/1001" else 30000 / 1001)
    assert abs(video_duration_s(out) - video_duration_s(src)) < frame_s
    assert abs(video_duration_s(out) - FRAMES * frame_s) < frame_s
    # ... and its last frame ends where the source's does (to the millisecond)
    assert abs(video_end_s(out) - video_end_s(src)) <= 0.0011
