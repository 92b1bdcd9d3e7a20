"""Unit tests start no process: one that tries fails here (it belongs in tests/integration)."""

from __future__ import annotations

import subprocess

import pytest


@pytest.fixture(autouse=True)
def no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError(f"a unit test started a process {args[:1]}: move it to tests/integration")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
