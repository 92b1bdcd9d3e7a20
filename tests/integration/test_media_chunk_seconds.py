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


# ---- submit: the default applies only when no chunk length was asked for ----------------


def _uhd_clip(tmp_path):
    """A tiny 4K 30 fps clip (3 frames): what submit probes."""
    from tests.clips import make_clip

    return make_clip(tmp_path / "uhd.mp4", width=3840, height=2160, fps=30, seconds=0.1, gop=3)


def test_submit_uses_the_resolution_default_when_no_length_is_given(tmp_path) -> None:
    from farm.config import load_settings
    from farm.jobs.submit import SubmitRequest, validate

    src = _uhd_clip(tmp_path)
    settings = load_settings({"FARM_HOME": str(tmp_path / "home")})
    assert settings.chunk_seconds is None
    info, _, _, chunk_frames = validate(SubmitRequest(video=src), settings)
    assert (info.video.width, info.video.height, float(info.video.fps)) == (3840, 2160, 30.0)
    expected = default_chunk_seconds(3840, 2160, 30)
    assert 10 <= expected <= 20
    assert chunk_frames == round(30 * expected)


def test_an_explicit_chunk_length_wins_over_the_default(tmp_path) -> None:
    from farm.config import load_settings
    from farm.jobs.submit import SubmitRequest, validate

    src = _uhd_clip(tmp_path)
    home = tmp_path / "home"
    plain = load_settings({"FARM_HOME": str(home)})
    from_env = load_settings({"FARM_HOME": str(home), "FARM_CHUNK_SECONDS": "2"})
    assert validate(SubmitRequest(video=src, chunk_seconds=1.0), plain)[3] == 30          # --chunk-seconds
    assert validate(SubmitRequest(video=src), from_env)[3] == 60                          # FARM_CHUNK_SECONDS
    assert validate(SubmitRequest(video=src, chunk_seconds=0.5), from_env)[3] == 15       # the flag beats env
    home.mkdir(exist_ok=True)
    (home / "farm.toml").write_text("[farm]\nchunk_seconds = 3\n")
    assert validate(SubmitRequest(video=src), load_settings({"FARM_HOME": str(home)}))[3] == 90  # config file
