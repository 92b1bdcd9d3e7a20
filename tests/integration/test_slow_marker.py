"""`slow` is opt-in: the README's test command skips a test marked slow, `-m slow` runs it.
Real pytest subprocesses on a throwaway test file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_slow_test_runs_only_with_m_slow(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    shutil.copy(ROOT / "tests" / "conftest.py", tests / "conftest.py")
    (tests / "__init__.py").write_text("")
    (tests / "test_marked.py").write_text(
        "import pytest\n\n@pytest.mark.slow\ndef test_long():\n    assert False, 'ran'\n\n"
        "def test_quick():\n    assert True\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: long-running tests\n")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *args, "tests"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)

    plain = run()
    assert plain.returncode == 0 and "1 passed, 1 skipped" in plain.stdout and "opt in with -m slow" in plain.stdout
    opted = run("-m", "slow")
    assert opted.returncode == 1 and "ran" in opted.stdout
