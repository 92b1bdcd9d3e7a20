"""One live job per output (farm.jobs.reservation): a second job for the output of a queued,
running or finalizing job is refused at submit, with or without overwrite, naming that job;
of two submits racing for one output exactly one records its job; a retry that would make a
job live beside another one writing its output is refused; and once a later job replaced a done
job's output, that job's cancel and status say so instead of pointing at the file as its own
(farm.jobs.published).

Real parts: SQLite and PostgreSQL (the `db` fixture), real ffmpeg clips, real chunk and finalize
work in this process; no broker (what would be enqueued is dropped)."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

import farm.jobs.submit
import farm.workers.chunk_runner
from farm.config import load_settings
from farm.errors import EXIT_REFUSED, InputError, StateError
from farm.jobs.batch_service import submit_batch
from farm.jobs.service import cancel_job, retry_job, submit_job
from farm.jobs.spec import check_options
from farm.jobs.submit import SubmitRequest
from farm.state import batches, store
from farm.state.db import Job
from farm.workers.chunk_runner import run_chunk
from farm.workers.context import WorkerContext
from farm.workers.finalize import run_finalize
from tests import clips, media_checks


@pytest.fixture
def local(farm_home: Path, db, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001
    """(settings, db, worker context) on the `db` fixture's database, with no broker."""
    settings = load_settings({"FARM_HOME": str(farm_home), "FARM_DATABASE_URL": db.url, "FARM_PROVIDERS": "cpu"})
    monkeypatch.setattr(farm.jobs.submit, "enqueue_job", lambda *a, **k: 0)
    monkeypatch.setattr(farm.workers.chunk_runner, "enqueue_chunk", lambda *a, **k: None)
    monkeypatch.setattr(farm.workers.chunk_runner, "enqueue_finalize", lambda *a, **k: None)
    (farm_home / "out").mkdir()
    return settings, db, WorkerContext(settings, app=None)


def request(video: Path, output: Path, **extra) -> SubmitRequest:  # noqa: ANN003
    return SubmitRequest(video=video, output=output, chunk_seconds=0.5, face_options={"passthrough": True}, **extra)


def clip(home: Path, name: str) -> Path:
    return clips.make_clip(home / "in" / name, width=160, height=90, seconds=0.5, gop=15)


def run_to_done(ctx: WorkerContext, job_id: str) -> None:
    for chunk in store.get_job(ctx.db, job_id).chunks:
        assert run_chunk(ctx, job_id, chunk.index, "gpu0@test").startswith("done")
    assert run_finalize(ctx, job_id, "cpu0@test") == "done"


def job_ids(db) -> list[str]:  # noqa: ANN001
    with db.transaction() as s:
        return sorted(s.execute(Job.__table__.select().with_only_columns(Job.id)).scalars())


def test_the_output_of_a_live_job_is_refused_to_a_second_job_with_or_without_overwrite(local, farm_home):
    settings, db, ctx = local
    out = farm_home / "out" / "race.mp4"
    first = submit_job(request(clip(farm_home, "long.mp4"), out), settings, db).job
    other = clip(farm_home, "other.mp4")
    for overwrite in (False, True):
        with pytest.raises(InputError) as refused:
            submit_job(request(other, out, overwrite=overwrite), settings, db)
        assert f"output {out} is the output of job {first.id}, which is queued" in refused.value.message
        assert refused.value.exit_code == EXIT_REFUSED
        assert f"wait for job {first.id} to end, cancel it, or choose another --output" == refused.value.hint
    assert job_ids(db) == [first.id]   # nothing stored for the refused ones
    assert sorted(p.name for p in (settings.storage_dir / "jobs").iterdir()) == [first.id]
    link = farm_home / "link"   # the same file through a link to its folder is the same output
    link.symlink_to(out.parent)
    with pytest.raises(InputError, match=f"job {first.id}"):
        submit_job(request(other, link / "race.mp4", overwrite=True), settings, db)

    run_to_done(ctx, first.id)   # once it is done, its output may be replaced (overwrite), as any file
    later = submit_job(request(other, out, overwrite=True), settings, db).job
    run_to_done(ctx, later.id)
    assert media_checks.container_tags(out)["farm_job_id"] == later.id


def test_a_done_jobs_cancel_retry_and_status_say_when_a_later_job_replaced_its_output(local, farm_home):
    from farm.cli.watch import job_notes

    settings, db, ctx = local
    out = farm_home / "out" / "shared.mp4"
    first = submit_job(request(clip(farm_home, "a.mp4"), out), settings, db).job
    run_to_done(ctx, first.id)
    with pytest.raises(StateError) as own:
        cancel_job(settings, db, first.id)
    assert own.value.hint == f"delete {out} if you do not want it" and "now holds" not in own.value.message
    assert not any("note:" in line.plain for line in job_notes(store.get_job(db, first.id)))

    later = submit_job(request(clip(farm_home, "b.mp4"), out, overwrite=True), settings, db).job
    run_to_done(ctx, later.id)
    replaced = f"its output was published at {out}, which now holds job {later.id}'s output"
    with pytest.raises(StateError) as cancel:
        cancel_job(settings, db, first.id)
    assert replaced in cancel.value.message and cancel.value.hint is None   # no advice to delete job B's file
    with pytest.raises(StateError) as retry:
        retry_job(settings, db, first.id)
    assert replaced in retry.value.message
    assert any(replaced in line.plain for line in job_notes(store.get_job(db, first.id)))
    out.unlink()
    assert "is no longer there" in " ".join(line.plain for line in job_notes(store.get_job(db, later.id)))


def test_of_two_submits_racing_for_one_output_exactly_one_records_its_job(local, farm_home):
    settings, db, _ctx = local
    out = farm_home / "out" / "race.mp4"
    videos = [clip(farm_home, f"v{n}.mp4") for n in range(2)]
    both_checked = threading.Barrier(2, timeout=60)   # each passed the early check before either records
    results: list[object] = [None, None]

    def submit(n: int) -> None:
        try:
            results[n] = submit_job(request(videos[n], out, overwrite=True), settings, db,
                                    before_store=both_checked.wait).job.id
        except InputError as exc:
            results[n] = exc

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    made = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, InputError)]
    assert len(made) == 1 and len(refused) == 1, results
    assert f"is the output of job {made[0]}" in refused[0].message
    assert job_ids(db) == made
    assert sorted(p.name for p in (settings.storage_dir / "jobs").iterdir()) == made   # the loser's files removed


def test_a_retry_is_refused_while_another_live_job_is_to_write_its_output(local, farm_home):
    settings, db, _ctx = local
    out = farm_home / "out" / "again.mp4"
    first = submit_job(request(clip(farm_home, "a.mp4"), out), settings, db).job
    cancel_job(settings, db, first.id)
    second = submit_job(request(clip(farm_home, "b.mp4"), out), settings, db).job   # the first is not live
    with pytest.raises(StateError) as refused:
        retry_job(settings, db, first.id)
    assert f"job {first.id} cannot run again now: its output {out} is the output of job {second.id}" in \
        refused.value.message
    assert store.get_job(db, first.id).state == "cancelled"
    cancel_job(settings, db, second.id)
    assert retry_job(settings, db, first.id).job.state == "queued"


def test_an_image_output_that_a_live_images_job_is_to_write_is_refused_to_another_batch(local, farm_home):
    import numpy as np
    from PIL import Image

    settings, db, _ctx = local
    folder = farm_home / "photos"
    folder.mkdir()
    for k in range(3):
        Image.fromarray(np.full((8, 8, 3), k * 40, np.uint8)).save(folder / f"p{k}.png")
    out = farm_home / "out" / "photos"
    first = submit_batch([str(folder)], check_options({"passthrough": True, "output": str(out)}, "test"),
                         settings, db)
    (job_id,) = {i.job_id for i in first.items}
    other = check_options({"passthrough": True, "consent": "form 7", "output": str(out), "overwrite": True}, "test")
    second = submit_batch([str(folder)], other, settings, db)   # other options: not the same render
    assert [i.kind for i in second.items] == [batches.REFUSED] * 3
    assert all(f"is the output of job {job_id}, which is queued" in i.error for i in second.items), second.items
    cancel_job(settings, db, job_id)
    third = submit_batch([str(folder)], other, settings, db)
    assert [i.kind for i in third.items] == [batches.IMAGE] * 3


@pytest.mark.parametrize("muxer,suffix", [("mp4", ".mp4"), ("matroska", ".mkv"), ("avi", ".avi"),
                                          ("mpegts", ".ts"), ("3gp", ".3gp")])
def test_the_job_that_made_a_file_is_read_from_its_label_in_each_container(tmp_path, muxer, suffix):
    """farm.media.labels.job_of reads what finalize writes: farm_job_id, or the label's head
    (AVI keeps only the comment, MPEG-TS only the service name, 3GP only its dscp box)."""
    from types import SimpleNamespace

    from farm.media.ffmpeg import ffmpeg_exe
    from farm.media.labels import NO_LABEL, job_of
    from farm.workers.finalize import output_metadata

    src = clips.make_clip(tmp_path / "src.mp4", width=64, height=36, seconds=0.2)
    job = SimpleNamespace(id="0123abcd4567", models={}, options={"faces": "off"})
    tags = [arg for key, value in output_metadata(job, muxer).items() for arg in ("-metadata", f"{key}={value}")]
    for name, given in (("out", tags), ("plain", ["-map_metadata", "-1"])):
        subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(src), "-c", "copy", *given,
                        "-movflags", "use_metadata_tags", "-f", muxer, str(tmp_path / f"{name}{suffix}")], check=True)
    assert job_of(tmp_path / f"out{suffix}") == "0123abcd4567"
    assert job_of(tmp_path / f"plain{suffix}") == NO_LABEL
    assert job_of(tmp_path / f"missing{suffix}") is None
