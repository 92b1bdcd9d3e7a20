"""A real worker context (demo pack, ONNX Runtime on the CPU) running real chunks of real jobs,
without a broker: the identity saved at submit is what every chunk swaps in (never
recomputed from the user's files), and the registry shows the providers the sessions
report, kept across pass-through chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import farm.faces.chain
import farm.faces.identity
import farm.jobs.submit
import farm.workers.chunk_runner
from farm.config import load_settings
from farm.jobs.submit import SubmitRequest, submit
from farm.models.packs import clear_pack_cache
from farm.state import registry, store
from farm.state.db import Database, upgrade_schema
from farm.workers.context import WorkerContext
from tests import clips

WORKER = "cpu0@test"


@pytest.fixture
def worker(farm_home: Path, monkeypatch: pytest.MonkeyPatch):
    """(settings, db, worker context, enqueued calls) with no broker: enqueues are recorded."""
    settings = load_settings({"FARM_HOME": str(farm_home), "FARM_PROVIDERS": "cpu"})
    db = Database(settings.database)
    upgrade_schema(db)
    enqueued: list[tuple] = []
    monkeypatch.setattr(farm.jobs.submit, "enqueue_job", lambda *a, **k: 0)
    monkeypatch.setattr(farm.workers.chunk_runner, "enqueue_chunk", lambda *a, **k: enqueued.append(("chunk", *a[1:3])))
    monkeypatch.setattr(farm.workers.chunk_runner, "enqueue_finalize", lambda *a, **k: enqueued.append(("finalize", a[1])))
    clear_pack_cache()
    ctx = WorkerContext(settings, app=None)
    ctx.report_start(WORKER)
    yield settings, db, ctx, enqueued
    clear_pack_cache()
    db.dispose()


def _worker_row(db: Database) -> registry.WorkerView:
    return next(w for w in registry.list_workers(db) if w.hostname == WORKER)


def test_every_chunk_swaps_in_the_identity_saved_at_submit(worker, tmp_path, monkeypatch):
    settings, db, ctx, enqueued = worker
    # Given a face job of several chunks, submitted with the demo pack
    video = clips.make_clip(tmp_path / "face.mp4", width=480, height=270, seconds=1.2, moving_face=True, gop=6)
    source = clips.make_face_image(tmp_path / "source.jpg")
    req = SubmitRequest(video=video, sources=[source], models="demo", chunk_seconds=0.4,
                        face_options={"faces": "all"})
    job_id = submit(req, settings, db)
    job = store.get_job(db, job_id)
    assert job.chunk_count >= 2
    with np.load(ctx.storage.identity(job_id)) as data:
        saved = data["source"].copy()
    # and the user's source image is gone right after submit returned
    source.unlink()
    # and any recomputation of an identity would fail the test
    def recompute(*_a, **_k):
        raise AssertionError("a worker recomputed an identity")

    monkeypatch.setattr(farm.faces.identity, "compute_identity", recompute)
    monkeypatch.setattr(farm.faces.chain, "compute_identity", recompute)
    used: list[np.ndarray] = []
    real_build = farm.faces.chain.build_chain

    def spy(options, sessions, source_latent, reference_embedding=None, face_map=None):
        used.append(np.array(source_latent, copy=True))
        return real_build(options, sessions, source_latent, reference_embedding, face_map)

    monkeypatch.setattr(farm.faces.chain, "build_chain", spy)
    # When a worker runs every chunk
    results = [farm.workers.chunk_runner.run_chunk(ctx, job_id, i, worker=WORKER) for i in range(job.chunk_count)]
    # Then each chunk is done, with the same saved identity
    assert all(r.startswith("done") for r in results), results
    assert len(used) == job.chunk_count
    for latent in used:
        assert np.array_equal(latent, saved)
    assert ("finalize", job_id) in enqueued
    assert all(c.state == "done" for c in store.get_job(db, job_id).chunks)
    # and the worker row shows what the sessions report, not what was asked ("cpu")
    assert _worker_row(db).providers == "CPUExecutionProvider"


def test_pass_through_chunks_keep_the_providers_in_use(worker, tmp_path):
    settings, db, ctx, _ = worker
    video = clips.make_clip(tmp_path / "face.mp4", width=480, height=270, seconds=0.4, moving_face=True)
    plain = SubmitRequest(video=video, output=tmp_path / "plain.mp4")
    # Given a fresh worker: nothing is in use yet, and a pass-through chunk does not invent any
    assert _worker_row(db).providers == ""
    first = submit(plain, settings, db)
    assert farm.workers.chunk_runner.run_chunk(ctx, first, 0, worker=WORKER).startswith("done")
    assert _worker_row(db).providers == ""
    # When it has run a face chunk, then a pass-through chunk
    face = clips.make_face_image(tmp_path / "source.jpg")
    swapped = submit(SubmitRequest(video=video, sources=[face], models="demo", output=tmp_path / "s.mp4"),
                     settings, db)
    assert farm.workers.chunk_runner.run_chunk(ctx, swapped, 0, worker=WORKER).startswith("done")
    assert _worker_row(db).providers == "CPUExecutionProvider"
    second = submit(SubmitRequest(video=video, output=tmp_path / "plain2.mp4"), settings, db)
    assert farm.workers.chunk_runner.run_chunk(ctx, second, 0, worker=WORKER).startswith("done")
    # Then the row still shows the providers the sessions reported
    assert _worker_row(db).providers == "CPUExecutionProvider"
