"""NVENC/NVDEC detection: absent hardware means the software encoder, chosen and logged."""

from __future__ import annotations

import logging

import pytest

from farm.media import hwaccel


@pytest.fixture(autouse=True)
def fresh_probes():
    hwaccel.forget_probes()
    yield
    hwaccel.forget_probes()


def test_absent_nvenc_keeps_the_software_encoder_and_logs_it(monkeypatch, caplog) -> None:
    # Given an FFmpeg whose h264_nvenc does not open (no GPU, or a GPU without NVENC)
    monkeypatch.setattr(hwaccel, "open_probe", lambda name, pix_fmt: "PermissionError: no device")
    with caplog.at_level(logging.INFO, logger="farm.media.hwaccel"):
        choice = hwaccel.choose_chunk_encoder("libx264", "veryfast", 18, "yuv420p", {})
        again = hwaccel.choose_chunk_encoder("libx264", "veryfast", 18, "yuv420p", {})
    # Then the software encoder is used with the job's preset and crf, and that is logged once
    assert choice == again
    assert choice.codec == "libx264" and not choice.hardware
    assert choice.options == {"preset": "veryfast", "crf": "18"}
    lines = [r.getMessage() for r in caplog.records if "video encoder" in r.getMessage()]
    assert len(lines) == 1 and "libx264 in software" in lines[0] and "does not open" in lines[0]


def test_encoder_missing_from_the_build_is_not_probed(monkeypatch) -> None:
    monkeypatch.setattr(hwaccel, "encoder_in_build", lambda name: False)
    monkeypatch.setattr(hwaccel, "open_probe", lambda *a: pytest.fail("probed an encoder not in the build"))
    choice = hwaccel.choose_chunk_encoder("libx265", "fast", 20, "yuv420p", {"x265-params": "log-level=error"})
    assert choice.codec == "libx265" and "not in this FFmpeg build" in choice.reason


def test_usable_nvenc_is_chosen_with_mapped_options(monkeypatch, caplog) -> None:
    monkeypatch.setattr(hwaccel, "open_probe", lambda name, pix_fmt: None)
    with caplog.at_level(logging.INFO, logger="farm.media.hwaccel"):
        choice = hwaccel.choose_chunk_encoder("libx265", "fast", 20, "yuv420p",
                                              {"x265-params": "log-level=error", "bf": "0"})
    assert choice.hardware and choice.codec == "hevc_nvenc"
    assert choice.options == {"preset": "p4", "tune": "hq", "rc": "vbr", "cq": "20", "b": "0", "bf": "0"}
    assert any("hevc_nvenc" in r.getMessage() for r in caplog.records)


def test_software_policy_10bit_and_hdr10_keep_software(monkeypatch) -> None:
    monkeypatch.setattr(hwaccel, "open_probe", lambda name, pix_fmt: None)
    assert not hwaccel.choose_chunk_encoder("libx264", "veryfast", 18, "yuv420p", {}, "software").hardware
    ten_bit = hwaccel.choose_chunk_encoder("libx265", "fast", 20, "yuv420p10le", {})
    assert not ten_bit.hardware and "does not take yuv420p10le" in ten_bit.reason
    hdr = hwaccel.choose_chunk_encoder("libx265", "fast", 20, "yuv420p",
                                       {"x265-params": "log-level=error:hdr10=1:master-display=G(1,2)"})
    assert not hdr.hardware and "HDR10" in hdr.reason
    assert hwaccel.nvdec_hwaccel("software") is None


def test_the_real_probe_never_fails() -> None:
    # On this machine (no NVIDIA GPU in CI) the real probe answers "no" without raising;
    # on a machine with NVENC it answers "yes". Either way it is a verdict, not an error.
    choice = hwaccel.choose_chunk_encoder("libx264", "veryfast", 18, "yuv420p", {})
    assert choice.codec in ("libx264", "h264_nvenc")
    hwaccel.nvdec_hwaccel("auto", "h264")     # None without CUDA, an HWAccel with it; never raises
