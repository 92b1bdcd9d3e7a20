"""Fixtures shared by the integration tests of the option table's front ends."""

from __future__ import annotations

import pytest


@pytest.fixture
def submit_with_faces():
    """`farm submit` declared with the whole option table, face options included, as main()
    does for the submit command; back to the plain declaration afterwards."""
    import farm.cli.main as cli

    cli.register_submit()
    yield
    cli.register_submit(faces=False)
