"""A chunk whose input file is gone from storage: the chunk's error says the file is missing
and what that means (deleted, or a node that does not see the shared storage), never
"check the file's permissions". Real job, real worker code path (run_chunk), SQLite, a
private Redis, real video."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from farm.broker.celery_app import create_app
from farm.broker.embedded import down, start_redis
from farm.config import load_settings
from farm.errors import InputError, UnavailableError
from farm.jobs.submit import SubmitRequest, submit
from farm.media.formats import sniff_demuxer
from farm.state import store
from farm.state.db import Database, upgrade_schema
from farm.workers.chunk_runner import run_chunk
from farm.workers.context import WorkerContext
from tests import clips


@pytest.fixture
def farm(farm_home: Path):
    settings = load_settings({"FARM_HOME": str(farm_home), "FARM_PROVIDERS": "cpu", "FARM_MAX_ATTEMPTS": "1"})
    start_redis(settings)
    db = Database(settings.database)
    upgrade_schema(db)
    app = create_app(settings)
    yield settings, db, app
    app.close()
    db.dispose()
    down(settings)


def test_a_missing_chunk_input_is_reported_as_missing_not_as_permissions(farm, tmp_path):
    settings, db, app = farm
    src = clips.make_clip(tmp_path / "in.mp4", width=160, height=90, seconds=1.0, gop=10)
    job_id = submit(SubmitRequest(video=src, chunk_seconds=0.5), settings, db)
    chunk = store.get_job(db, job_id).chunks[0]
    Path(chunk.input_path).unlink()
    outcome = run_chunk(WorkerContext(settings, app), job_id, 0, "cpu0@test")
    error = store.get_job(db, job_id).chunks[0].error or ""
    assert outcome.startswith("error") and error, (outcome, error)
    assert "permissions" not in error, error
    assert chunk.input_path in error and "does not exist" in error, error
    assert "FARM_STORAGE" in error and "submit the video again" in error, error


def test_sniffing_a_missing_file_says_it_does_not_exist(tmp_path):
    with pytest.raises(InputError) as caught:
        sniff_demuxer(tmp_path / "gone.mp4")
    text = str(caught.value)
    assert "does not exist" in text and "permissions" not in text, text


def test_sniffing_a_folder_says_it_is_a_folder(tmp_path):
    with pytest.raises(InputError) as caught:
        sniff_demuxer(tmp_path)
    text = str(caught.value)
    assert "is a folder" in text and "permissions" not in text, text


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_sniffing_an_unreadable_file_still_points_at_permissions(tmp_path):
    path = tmp_path / "locked.mp4"
    path.write_bytes(b"\0" * 64)
    path.chmod(0)
    with pytest.raises(InputError, match="permissions"):
        sniff_demuxer(path)


def test_the_missing_input_error_is_a_storage_error_another_node_may_not_have(tmp_path):
    """Retryable (a node without the shared storage is not the job's fault): UnavailableError."""
    from farm.media.chunk_codec import require_chunk_input

    with pytest.raises(UnavailableError):
        require_chunk_input(tmp_path / "jobs" / "x" / "chunks" / "in" / "0.mp4")
