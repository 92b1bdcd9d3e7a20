"""The worker's chunk path in one process, as a Celery child runs it: faces batched across
frames through a dynamic-batch model, and model sessions made once per process (lazily,
on the first chunk) and kept across chunks and jobs. Demo pack on the CPU, a private
Redis (the chunk runner enqueues the finalize task there), SQLite, real video."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from farm.broker.celery_app import create_app
from farm.broker.embedded import down, start_redis
from farm.config import load_settings
from farm.jobs.submit import SubmitRequest, submit
from farm.media.chunk_codec import BATCH_FRAMES, EncoderSettings, transcode_chunk
from farm.media.plan import ChunkPlan
from farm.models.packs import clear_pack_cache
from farm.pipeline.stage import PassThrough, StageChain
from farm.state import records, store
from farm.state.db import Database, upgrade_schema
from farm.workers.chunk_runner import batch_for, run_chunk
from farm.workers.context import WorkerContext
from tests import clips

WORKER = "gpu0@test"


@pytest.fixture
def farm(farm_home: Path):
    """(settings, db, app): the demo pack on the CPU, SQLite, a private Redis."""
    settings = load_settings({"FARM_HOME": str(farm_home), "FARM_MODELS": "demo", "FARM_PROVIDERS": "cpu"})
    start_redis(settings)
    db = Database(settings.database)
    upgrade_schema(db)
    app = create_app(settings)
    clear_pack_cache()
    yield settings, db, app
    clear_pack_cache()
    app.close()
    db.dispose()
    down(settings)


FRAMES = 16   # frames of the test clip (4 batches of BATCH_FRAMES)


def face_job(settings, db, tmp_path: Path, name: str, **face_options) -> str:
    """Submit a short clip with a moving face as a one-chunk face job (demo pack)."""
    src = clips.make_clip(tmp_path / f"{name}.mp4", width=480, height=270, seconds=FRAMES / 30, moving_face=True,
                          gop=FRAMES)
    face = clips.make_face_image(tmp_path / "face.jpg")
    req = SubmitRequest(video=src, sources=[face], chunk_seconds=1.0, models="demo",
                        face_options={"faces": "all", "enhance": True, "detect_max_side": 320, **face_options})
    job_id = submit(req, settings, db)
    assert store.get_job(db, job_id).chunk_count == 1
    return job_id


def decoded(path: str | Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray() for f in c.decode(video=0)]


def one_thread_x264(monkeypatch) -> None:
    """libx264 with frame threads is not bit-exact from run to run on a busy machine (the
    same frames handed to it gave two different streams, about one run in two with the
    2 cores loaded; with one thread, never). This test is about the stages' pictures,
    so both of its encodes use one x264 thread."""
    import farm.media.chunk_codec as chunk_codec

    real_open = chunk_codec._open_encoder

    def open_one_thread(*args, **kwargs):
        stream = real_open(*args, **kwargs)
        stream.codec_context.thread_count = 1
        return stream

    monkeypatch.setattr(chunk_codec, "_open_encoder", open_one_thread)


def test_a_face_chunk_batches_frames_through_the_recogniser(farm, tmp_path, monkeypatch):
    settings, db, app = farm
    face = clips.make_face_image(tmp_path / "face.jpg")
    job_id = face_job(settings, db, tmp_path, "ref", faces="reference", reference=str(face), similarity=0.2,
                      enhance=False)
    clear_pack_cache()   # submit loaded the pack in this process; a worker starts cold

    import farm.faces.recognise as recognise

    runs: list[int] = []
    real_run = recognise.run

    def counting_run(session, feed):
        runs.append(next(iter(feed.values())).shape[0])
        return real_run(session, feed)

    monkeypatch.setattr(recognise, "run", counting_run)
    one_thread_x264(monkeypatch)
    ctx = WorkerContext(settings, app)
    assert run_chunk(ctx, job_id, 0, WORKER).startswith("done")

    job = store.get_job(db, job_id)
    chunk = job.chunks[0]
    assert chunk.state == "done" and chunk.frames_planned == FRAMES
    batched = list(runs)
    # the recogniser (ArcFace, dynamic batch) saw the faces of several frames per run
    assert batched and max(batched) > 1 and max(batched) <= BATCH_FRAMES
    assert len(batched) <= -(-chunk.frames_planned // BATCH_FRAMES)

    # the same chunk frame by frame (no process_batch): one recogniser run per frame with a face
    runs.clear()
    chain = ctx.chain_for(job)
    assert batch_for(chain) is not None
    single = tmp_path / "single.mov"
    with chain:
        transcode_chunk(chunk.input_path, single, records.load(ChunkPlan, chunk.plan),
                        records.load(EncoderSettings, job.encoder), chain.process)
    assert runs and set(runs) == {1} and sum(runs) == sum(batched)

    # and the pictures are the same, frame for frame
    a, b = decoded(chunk.output_path), decoded(single)
    assert len(a) == len(b) == FRAMES
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    # the faces were really swapped (the demo swapper paints stripes): not a no-op chain
    plain = tmp_path / "plain.mov"
    transcode_chunk(chunk.input_path, plain, records.load(ChunkPlan, chunk.plan),
                    records.load(EncoderSettings, job.encoder), lambda f: f)
    assert any(not np.array_equal(x, y) for x, y in zip(a, decoded(plain)))


def test_pass_through_keeps_the_frame_by_frame_path() -> None:
    assert batch_for(StageChain([PassThrough()])) is None


def test_models_load_once_per_worker_process_on_the_first_chunk(farm, tmp_path, monkeypatch):
    settings, db, app = farm
    first = face_job(settings, db, tmp_path, "first")
    second = face_job(settings, db, tmp_path, "second")
    clear_pack_cache()   # submit loaded the pack in this process; a worker starts cold

    from celery.signals import worker_process_init

    import farm.models.sessions as sessions
    from farm.broker.tasks import register_tasks

    made: list[tuple[str, Path]] = []
    real_create = sessions.create_session

    def spy(model_path, providers, cache_dir=None, *args, **kwargs):
        made.append((Path(model_path).name, Path(cache_dir)))
        return real_create(model_path, providers, cache_dir, *args, **kwargs)

    monkeypatch.setattr(sessions, "create_session", spy)
    register_tasks(app, settings)
    worker_process_init.send(sender=None)          # what a prefork child runs at start: no models
    assert made == []
    task = app.tasks["farm.process_chunk"]

    assert task.apply(args=[first, 0]).get().startswith("done")
    after_first = list(made)
    names = [n for n, _ in after_first]
    assert names, "the first chunk created no session"
    assert len(names) == len(set(names)), f"a model session was made twice: {names}"
    assert task.apply(args=[second, 0]).get().startswith("done")   # another job, same process
    assert made == after_first, "the second job loaded models again"
    assert {store.get_job(db, j).chunks[0].state for j in (first, second)} == {"done"}

    # TensorRT engines and timing caches live on shared storage, beside every node's jobs
    trt = settings.storage_dir / "trt-cache"
    assert {cache for _, cache in made} == {trt}
    options = sessions.tensorrt_options(trt, "0" * 64, "inswapper_128", "sm90")
    assert Path(options["trt_engine_cache_path"]).is_relative_to(settings.storage_dir)
