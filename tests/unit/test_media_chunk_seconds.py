"""default_chunk_seconds: chunks of ~30 s of GPU work, bounded."""

from fractions import Fraction

from farm.media.plan import (
    MAX_CHUNK_SECONDS,
    MIN_CHUNK_SECONDS,
    TARGET_CHUNK_WORK_S,
    assumed_gpu_fps,
    default_chunk_seconds,
)


def test_chunk_seconds_follow_resolution_and_frame_rate() -> None:
    assert default_chunk_seconds(1920, 1080, 30) == MAX_CHUNK_SECONDS
    uhd = default_chunk_seconds(3840, 2160, Fraction(30000, 1001))
    assert 10 <= uhd <= 20
    assert default_chunk_seconds(3840, 2160, 60) < uhd            # more frames per second of video
    assert default_chunk_seconds(7680, 4320, 30) < uhd            # more pixels per frame
    assert default_chunk_seconds(7680, 4320, 240) == MIN_CHUNK_SECONDS
    assert default_chunk_seconds(3840, 2160, 0) == default_chunk_seconds(3840, 2160, 30)


def test_unclamped_chunks_hold_the_target_gpu_work() -> None:
    seconds = default_chunk_seconds(3840, 2160, 30)
    work_s = seconds * 30 / assumed_gpu_fps(3840, 2160)
    assert abs(work_s - TARGET_CHUNK_WORK_S) < 1.0
