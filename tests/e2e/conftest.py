"""Fixtures of the end-to-end tests: the real `farm` CLI on a fresh FARM_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.farmcli import FarmCLI


@pytest.fixture
def cli(farm_home: Path):
    """`farm ...` on this test's FARM_HOME; the local farm it started is stopped after the test."""
    farm = FarmCLI(farm_home)
    yield farm
    farm.down()
