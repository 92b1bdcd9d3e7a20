"""Which encoders a worker can produce (NVENC detection, disabled encoders), and NVDEC.

The job's encoder is decided at submit; these probes only answer "can this process
produce it?", never pick another encoder.
"""

from __future__ import annotations

import logging

import pytest

from farm.media import hwaccel


@pytest.fixture(autouse=True)
def fresh_probes():
    hwaccel.forget_probes()
    yield
    hwaccel.forget_probes()


def test_absent_nvenc_is_a_reason_logged_once(monkeypatch, caplog) -> None:
    # Given an FFmpeg whose h264_nvenc does not open (no GPU, or a GPU without NVENC)
    monkeypatch.setattr(hwaccel, "open_probe", lambda name, pix_fmt: "PermissionError: no device")
    with caplog.at_level(logging.INFO, logger="farm.media.hwaccel"):
        problem = hwaccel.encoder_problem("h264_nvenc", "yuv420p")
        again = hwaccel.encoder_problem("h264_nvenc", "yuv420p")
    # Then the worker says why it cannot produce it, and logs that once
    assert problem == again and "h264_nvenc does not open here" in problem and "no device" in problem
    lines = [r.getMessage() for r in caplog.records if "video encoder" in r.getMessage()]
    assert len(lines) == 1 and "not usable here" in lines[0]


def test_encoder_missing_from_the_build_is_not_probed(monkeypatch) -> None:
    monkeypatch.setattr(hwaccel, "encoder_in_build", lambda name: False)
    monkeypatch.setattr(hwaccel, "open_probe", lambda *a: pytest.fail("probed an encoder not in the build"))
    assert "not in this FFmpeg build" in hwaccel.encoder_problem("hevc_nvenc", "yuv420p")


def test_pixel_formats_the_encoder_does_not_take_are_refused_without_probing(monkeypatch) -> None:
    monkeypatch.setattr(hwaccel, "open_probe", lambda *a: pytest.fail("probed a format the encoder cannot take"))
    assert "does not take yuv420p10le" in hwaccel.encoder_problem("hevc_nvenc", "yuv420p10le")


def test_disabled_encoders_are_refused_on_this_worker_only(monkeypatch) -> None:
    # FARM_DISABLED_ENCODERS: a node whose NVENC is broken (tests use it to stand for a
    # node without an encoder)
    disabled = hwaccel.parse_encoder_list(" libx265, H264_NVENC ,")
    assert disabled == {"libx265", "h264_nvenc"}
    assert "disabled on this worker" in hwaccel.encoder_problem("libx265", "yuv420p", disabled)
    assert hwaccel.encoder_problem("libx265", "yuv420p") is None       # the real probe: x265 opens here
    assert hwaccel.encoder_problem("libx264", "yuv444p10le", disabled) is None


def test_the_real_probe_never_fails() -> None:
    # On this machine (no NVIDIA GPU in CI) the real probe answers "no" without raising;
    # on a machine with NVENC it answers "yes". Either way it is a verdict, not an error.
    problem = hwaccel.encoder_problem("h264_nvenc", "yuv420p")
    assert problem is None or "h264_nvenc" in problem
    assert hwaccel.nvdec_hwaccel("software") is None
    hwaccel.nvdec_hwaccel("auto", "h264")     # None without CUDA, an HWAccel with it; never raises


# ---- NVDEC: a hardware decoder that cannot open falls back to software decode ----------


@pytest.fixture
def chunk(tmp_path):
    from farm.media.plan import plan_chunks
    from farm.media.probe import probe
    from farm.media.split import split_chunks
    from tests.clips import make_clip

    src = make_clip(tmp_path / "src.mp4", seconds=1.0, gop=10, bframes=2)
    info = probe(src)
    plan = plan_chunks(info, 1000)[0]
    return info, plan, split_chunks(src, info, [plan], tmp_path / "in")[0]


class FakeHWAccel:
    """Stands for the HWAccel nvdec_hwaccel returns on a machine with a CUDA device."""


def failing_hw_open(monkeypatch):
    """Make av.open fail as FFmpeg does without a usable CUDA device, for hwaccel opens only."""
    import errno

    import av

    real_open = av.open
    attempts = []

    def fake_open(*args, **kwargs):
        if kwargs.get("hwaccel") is not None:
            attempts.append(kwargs["hwaccel"])
            raise av.FFmpegError(errno.ENODEV, "No such device")
        return real_open(*args, **kwargs)

    monkeypatch.setattr(av, "open", fake_open)
    return attempts


def test_a_failing_hardware_decoder_falls_back_to_software_and_says_so(chunk, tmp_path, monkeypatch, caplog):
    import av

    import farm.media.chunk_codec as chunk_codec
    from farm.media.chunk_codec import choose_encoder, transcode_chunk

    info, plan, seg = chunk
    settings = choose_encoder(info.video)
    software = tmp_path / "software.mov"
    transcode_chunk(seg, software, plan, settings, lambda f: f)   # no GPU here: software decode
    # Given a worker where NVDEC looks available but opening the hardware decoder fails
    hw = FakeHWAccel()
    monkeypatch.setattr(chunk_codec, "nvdec_hwaccel", lambda hardware="auto", codec=None: hw)
    attempts = failing_hw_open(monkeypatch)
    # When the chunk is transcoded
    out = tmp_path / "fallback.mov"
    with caplog.at_level(logging.WARNING, logger="farm.media.decode"):
        frames = transcode_chunk(seg, out, plan, settings, lambda f: f)
    # Then the hardware open was tried, the chunk was decoded in software, and the log says so
    assert attempts == [hw]
    assert frames == plan.frame_count == 30
    lines = [r.getMessage() for r in caplog.records if r.name == "farm.media.decode"]
    assert len(lines) == 1 and "hardware decoding of" in lines[0] and "decoding in software" in lines[0]
    assert "No such device" in lines[0]
    with av.open(str(out)) as a, av.open(str(software)) as b:
        pa = [f.to_ndarray() for f in a.decode(video=0)]
        pb = [f.to_ndarray() for f in b.decode(video=0)]
    assert len(pa) == len(pb) == 30 and all((x == y).all() for x, y in zip(pa, pb))


def test_a_hardware_decoder_failing_after_frames_is_an_error_not_a_silent_restart(chunk, monkeypatch):
    from farm.errors import MediaError
    from farm.media import decode

    _, plan, seg = chunk
    real = decode._decode_frames

    def hw_dies_after_two(in_path, plan, hwaccel):
        if hwaccel is None:
            yield from real(in_path, plan, None)
            return
        for n, frame in enumerate(real(in_path, plan, None)):
            if n == 2:
                raise MediaError("decoding failed: CUDA error")
            yield frame

    monkeypatch.setattr(decode, "_decode_frames", hw_dies_after_two)
    got = []
    with pytest.raises(MediaError, match="CUDA error"):
        for frame in decode.iter_chunk_frames(seg, plan, FakeHWAccel()):
            got.append(frame.pts)
    assert len(got) == 2   # frames already handed on are never decoded twice
