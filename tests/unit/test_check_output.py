"""farm.jobs.submit.check_output's refusals of an output folder say what to do (a hint),
as every refusal does (a user-side audit found these two without one)."""

from __future__ import annotations

import os

import pytest

from farm.errors import InputError
from farm.jobs.submit import SubmitRequest, check_output


def refused(req: SubmitRequest, settings) -> InputError:
    with pytest.raises(InputError) as caught:
        check_output(req, settings)
    return caught.value


def test_a_missing_output_folder_is_refused_with_a_hint(tmp_path, settings):
    video = tmp_path / "clip.mov"
    video.write_bytes(b"")
    missing = tmp_path / "nope" / "deeper"
    exc = refused(SubmitRequest(video=video, output=missing / "x.mov"), settings)
    assert f"the output folder {missing} does not exist" in exc.message
    assert exc.hint and "create it" in exc.hint and "--output" in exc.hint, exc.hint


def test_a_read_only_output_folder_is_refused_with_a_hint(tmp_path, settings, monkeypatch):
    video = tmp_path / "clip.mov"
    video.write_bytes(b"")
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access   # root may write anywhere: the folder's permission is what os.access says
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(ro) else real_access(p, mode))
    exc = refused(SubmitRequest(video=video, output=ro / "x.mov"), settings)
    assert f"the output folder {ro} is not writable" in exc.message
    assert exc.hint and "write to" in exc.hint and "permissions" in exc.hint, exc.hint
