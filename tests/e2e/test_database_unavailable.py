"""A job database that cannot be opened: the real CLI says which one (password masked) and
what is wrong, in a few lines without a traceback, and exits 4 (unavailable)."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import EXIT_UNAVAILABLE
from tests.conftest import PG_ADMIN_URL
from tests.e2e.farmcli import FarmCLI

PASSWORD = "s3cret-pw"


def _pg(user: str, port: int, database: str) -> str:
    host = PG_ADMIN_URL.split("@", 1)[1].split("/", 1)[0].split(":")[0]
    return f"postgresql://{user}:{PASSWORD}@{host}:{port}/{database}"


def _jobs_with(farm_home: Path, url: str):
    return FarmCLI(farm_home, {"FARM_DATABASE_URL": url}).run("jobs", timeout_s=60)


def _assert_short_unavailable(proc, url_shown: str, *said: str) -> None:
    text = proc.stdout + proc.stderr
    assert proc.returncode == EXIT_UNAVAILABLE, text
    assert "Traceback" not in text, text
    assert len(text.strip().splitlines()) <= 4, text
    assert PASSWORD not in text, text
    assert url_shown in text, text
    for words in said:
        assert words in text, text


@pytest.mark.parametrize("case", ["wrong-port", "unknown-database", "unknown-role"])
def test_an_unusable_postgresql_url_is_named_masked_and_exits_4(farm_home, pg_url, case):
    user, port, database, said = {
        "wrong-port": ("postgres", 1, "x", "Connection refused"),
        "unknown-database": ("postgres", 5432, "farm_no_such_db", 'database "farm_no_such_db" does not exist'),
        "unknown-role": ("farm_no_such_role", 5432, "test", 'role "farm_no_such_role" does not exist'),
    }[case]
    url = _pg(user, port, database)
    proc = _jobs_with(farm_home, url)
    _assert_short_unavailable(proc, url.replace(PASSWORD, "***"), "cannot open the job database", said,
                              "FARM_DATABASE_URL")


@pytest.mark.parametrize("where", ["parent-is-a-file", "cannot-create-file"])
def test_an_unopenable_sqlite_path_is_named_and_exits_4(farm_home, where):
    if where == "parent-is-a-file":
        (farm_home / "plain-file").write_text("not a folder")
        path, said = farm_home / "plain-file" / "farm.db", "is not a folder"
    else:
        path, said = Path("/proc/farm-test.db"), "unable to open database file"
    url = f"sqlite:///{path}"
    proc = _jobs_with(farm_home, url)
    _assert_short_unavailable(proc, url, "cannot open the job database", said)
