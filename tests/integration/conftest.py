"""Fixtures shared by integration tests: the option table's front ends, in-process jobs."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def submit_with_faces():
    """`farm submit` declared with the whole option table, face options included, as main()
    does for the submit command; back to the plain declaration afterwards."""
    import farm.cli.main as cli

    cli.register_submit()
    yield
    cli.register_submit(faces=False)


@pytest.fixture
def api_app(farm_home: Path):
    """(settings, db, app): a migrated job database under farm_home and the HTTP API on it."""
    from farm.api.app import create_app
    from farm.config import load_settings
    from farm.state.db import Database, upgrade_schema

    settings = load_settings({"FARM_HOME": str(farm_home)})
    db = Database(settings.database)
    upgrade_schema(db)
    yield settings, db, create_app(settings, db)
    db.dispose()


@pytest.fixture
def inproc(farm_home: Path, monkeypatch: pytest.MonkeyPatch):
    """(settings, db, worker context) with no broker: what would be enqueued is dropped."""
    import farm.jobs.submit
    import farm.workers.chunk_runner
    from farm.config import load_settings
    from farm.models.packs import clear_pack_cache
    from farm.state.db import Database, upgrade_schema
    from farm.workers.context import WorkerContext

    settings = load_settings({"FARM_HOME": str(farm_home), "FARM_PROVIDERS": "cpu"})
    db = Database(settings.database)
    upgrade_schema(db)
    monkeypatch.setattr(farm.jobs.submit, "enqueue_job", lambda *a, **k: 0)
    monkeypatch.setattr(farm.workers.chunk_runner, "enqueue_chunk", lambda *a, **k: None)
    monkeypatch.setattr(farm.workers.chunk_runner, "enqueue_finalize", lambda *a, **k: None)
    clear_pack_cache()
    yield settings, db, WorkerContext(settings, app=None)
    clear_pack_cache()
    db.dispose()
