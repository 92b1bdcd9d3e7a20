"""Shared fixtures: real databases (SQLite and PostgreSQL), a real private Redis, a farm home.

PostgreSQL tests use the server at FARM_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test)
and create a throw-away database per test session; they are skipped only when no
server answers (CI's .ci/run starts one).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from farm.config import Settings, load_settings
from farm.state.db import Database, upgrade_schema

PG_ADMIN_URL = os.environ.get("FARM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} (CI must have it)")
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    import psycopg

    name = f"farm_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty job database: SQLite in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    else:
        url = request.getfixturevalue("pg_url")
        database = Database(url)
        with database.engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    upgrade_schema(database)
    yield database
    database.dispose()


@pytest.fixture
def farm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FARM_HOME short enough for a unix socket path (108 bytes at most)."""
    home = Path("/tmp") / f"farm-test-{uuid.uuid4().hex[:8]}"
    home.mkdir()
    yield home
    import shutil

    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def settings(farm_home: Path) -> Settings:
    return load_settings({"FARM_HOME": str(farm_home)})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `slow` run only when asked for (`-m slow`); the README's command skips them."""
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: opt in with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
