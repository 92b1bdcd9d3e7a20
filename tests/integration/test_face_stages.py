"""Face stages plug in, and the output label says what they changed (issue 13.3, 12.8).

Real jobs in one process (real submit, the worker's run_chunk, real finalize; the demo
pack on ONNX Runtime's CPU provider; real clips, ffmpeg, SQLite and c2pa), the broker
calls recorded instead of sent. A stage that is not part of farm (tests/tint_stage.py)
joins the chain with one registry entry and brings its option, model role and label
with it; a clip with no face in it is labelled unaltered, one with a face altered with
its counts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import av
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import farm.jobs.submit
import farm.workers.chunk_runner
from farm.errors import InputError
from farm.faces import stages
from farm.faces.options import FACE_OPTIONS, validate_options
from farm.jobs.submit import SubmitRequest, submit
from farm.models.manifest import (
    MANIFEST_FILE,
    ModelEntry,
    TensorSpec,
    dump_manifest,
    load_manifest,
)
from farm.models.packs import load_pack
from farm.provenance.check import verify_file
from farm.state import chunks, store
from farm.state.db import Database, upgrade_schema
from farm.workers.finalize import run_finalize
from tests import clips, media_checks
from tests.tint_stage import TintStage

WORKER = "cpu0@test"




def render(settings, db, ctx, video: Path, out: Path, models: str = "demo", precision: str = "auto",
           **face_options) -> store.JobView:
    """Submit a face job, run each of its chunks as a worker does, then finalize it."""
    face = clips.make_face_image(out.parent / "source.jpg")
    req = SubmitRequest(video=video, sources=[face], models=models, output=out, chunk_seconds=0.5,
                        precision=precision, face_options={"faces": "all", "detect_max_side": 320, **face_options})
    job_id = submit(req, settings, db)
    job = store.get_job(db, job_id)
    for index in range(job.chunk_count):
        assert farm.workers.chunk_runner.run_chunk(ctx, job_id, index, WORKER).startswith("done")
    assert run_finalize(ctx, job_id, "fin") == "done", store.get_job(db, job_id).error
    return store.get_job(db, job_id)


def tinter_pack(settings, folder: Path) -> tuple[Path, str]:
    """A directory pack: the demo pack plus a "tinter" model (1 - x on [1,3,128,128]); (dir, its sha256)."""
    demo = load_pack("demo", models_dir=settings.models_path)
    shutil.copytree(demo.root, folder)
    spec = [1, 3, 128, 128]
    graph = helper.make_graph(
        [helper.make_node("Sub", ["one", "crop"], ["tinted"])], "tinter",
        [helper.make_tensor_value_info("crop", TensorProto.FLOAT, spec)],
        [helper.make_tensor_value_info("tinted", TensorProto.FLOAT, spec)],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()
    onnx.checker.check_model(onnx.load_from_string(data))
    (folder / "tinter.onnx").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    entry = ModelEntry(name="test-tinter", role="tinter", file="tinter.onnx", urls=(), sha256=sha, size=len(data),
                       inputs=(TensorSpec("crop", tuple(spec), "float32"),),
                       outputs=(TensorSpec("tinted", tuple(spec), "float32"),))
    manifest = load_manifest(folder / MANIFEST_FILE)
    manifest = dataclasses.replace(manifest, models=manifest.models + (entry,))
    (folder / MANIFEST_FILE).write_text(dump_manifest(manifest), encoding="utf-8")
    return folder, sha


def pictures(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray() for f in c.decode(video=0)]


def test_a_new_stage_is_one_file_and_one_registry_entry(inproc, tmp_path, monkeypatch):
    settings, db, ctx = inproc
    video = clips.make_clip(tmp_path / "face.mp4", width=480, height=270, seconds=16 / 30, moving_face=True, gop=16)
    pack, sha = tinter_pack(settings, tmp_path / "pack")
    # Given farm as it is: no stage reads a "tint" option
    with pytest.raises(InputError, match="unknown face option 'tint'"):
        validate_options({"tint": True})
    plain = render(settings, db, ctx, video, tmp_path / "plain" / "out.mp4", models=str(pack))
    # When the stage's module is added to the registry with one entry, after swap
    after_swap = [s.name for s in stages.FACE_STAGES].index("swap") + 1
    monkeypatch.setattr(stages, "FACE_STAGES", [*stages.FACE_STAGES[:after_swap], TintStage,
                                                *stages.FACE_STAGES[after_swap:]])
    # Then its option is in the table, naming its stage, validated like the others
    assert FACE_OPTIONS["tint"].stage == "tint" and validate_options({})["tint"] is False
    with pytest.raises(InputError, match="tint"):
        validate_options({"tint": "maybe"})
    # and its model role is required by a job that asks for it, and only then
    loaded = load_pack(str(pack), models_dir=settings.models_path)
    assert "tinter" in stages.required_roles(validate_options({"tint": "yes"}), loaded)
    assert "tinter" not in stages.required_roles(validate_options({}), loaded)
    # and a real job runs it in its chunks, between swap and enhance
    job = render(settings, db, ctx, video, tmp_path / "tint" / "out.mp4", models=str(pack), tint=True)
    assert ctx.chain_for(job).names == ["detect", "select", "swap", "tint", "enhance"]
    assert sum(c.faces_changed for c in job.chunks) > 0
    tinted, before = pictures(Path(job.output_path)), pictures(Path(plain.output_path))
    assert len(tinted) == len(before) == 16 and any(not np.array_equal(a, b) for a, b in zip(tinted, before))
    # and the job's label names its model and the stage
    assert job.models["models"]["tinter"] == {"name": "test-tinter", "sha256": sha}
    assert job.models["stages"] == ["swap", "tint", "enhance"]
    tags = media_checks.container_tags(job.output_path)
    assert "faces altered by swap + tint + enhance in " in tags["comment"], tags
    assert f"test-tinter sha256:{sha}" in tags["farm_models"], tags
    assert "tinter" not in plain.models["models"] and "tint" not in plain.models["stages"]


def test_a_clip_without_a_face_is_labelled_unaltered(inproc, tmp_path):
    settings, db, ctx = inproc
    video = clips.make_clip(tmp_path / "noface.mp4", width=320, height=180, seconds=1.0)
    job = render(settings, db, ctx, video, tmp_path / "out" / "noface.farm.mp4")
    assert [(c.frames_changed, c.faces_changed) for c in job.chunks] == [(0, 0)] * job.chunk_count
    tags = media_checks.container_tags(job.output_path)
    assert "no face found; unaltered" in tags["comment"] and "faces altered" not in tags["comment"], tags
    assert tags["farm_faces_altered"] == "0"
    report = verify_file(Path(job.output_path))
    assert report.exit_code == 0 and report.faces_altered is False and report.faces_changed == 0
    assert report.passthrough is False and report.models   # the face models ran, and found nothing


def test_a_clip_with_a_face_says_in_how_many_frames(inproc, tmp_path):
    settings, db, ctx = inproc
    video = clips.make_clip(tmp_path / "face.mp4", width=480, height=270, seconds=1.0, moving_face=True)
    job = render(settings, db, ctx, video, tmp_path / "out" / "face.farm.mp4")
    frames = sum(c.frames_changed for c in job.chunks)
    faces = sum(c.faces_changed for c in job.chunks)
    assert 0 < frames <= job.frames_total and faces >= frames
    tags = media_checks.container_tags(job.output_path)
    expected = f"faces altered by swap + enhance in {frames} of {job.frames_total} frames ({faces} faces)"
    assert expected in tags["comment"] and tags["farm_faces_altered"] == "1", tags
    report = verify_file(Path(job.output_path))
    assert report.faces_altered is True and (report.frames_changed, report.faces_changed) == (frames, faces)


def migrate(db: Database, action: str, revision: str) -> None:
    """Run Alembic's upgrade or downgrade to `revision` on the job database."""
    from alembic import command
    from alembic.config import Config

    from farm.state.db import migrations_dir

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, revision)


def test_chunks_rendered_before_the_counts_keep_the_altered_label(db):
    from farm.workers.finalize import output_label

    def chunk(i: int) -> store.ChunkSpec:
        return store.ChunkSpec(index=i, first_frame=10 * i, frames_planned=10, plan={"index": i},
                               input_path=f"/s/in/{i}", output_path=f"/s/out/{i}")

    store.create_job(db, job_id="old1", chunks=[chunk(0), chunk(1)], input_path="/in.mp4",
                     source_path="/s/source.mp4", output_path="/out.mp4", frames_total=20, fps=30.0,
                     options={"faces": "all"}, models={"pack": "demo", "demo": True})
    for i in range(2):
        chunks.claim_chunk(db, "old1", i, "w", 3, stale_after_s=120)
        chunks.finish_chunk(db, "old1", i, "w", changed=(0, 0))
    assert "no face found; unaltered" in output_label(store.get_job(db, "old1"))
    from farm.state.db import SCHEMA_HEAD

    # Given a database from before migration 0006 (its chunk rows have no counts)
    migrate(db, "downgrade", "0005")
    # When it is upgraded
    assert upgrade_schema(db) == SCHEMA_HEAD
    # Then its chunks read as not counted, and the job keeps the label it would have had
    job = store.get_job(db, "old1")
    assert [(c.frames_changed, c.faces_changed) for c in job.chunks] == [(None, None)] * 2
    assert "faces altered with model pack demo" in output_label(job)
