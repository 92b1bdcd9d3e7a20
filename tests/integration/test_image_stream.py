"""A batch's images are submitted in images jobs of growing size (farm.jobs.image_batch.job_parts),
each recorded whole before it is handed to the broker, so the first tasks run while the rest
are checked and recorded; a cancel that comes meanwhile stops the submit (issue 16.4)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import farm.jobs.submit
from farm.jobs import image_batch
from farm.jobs.batch_service import cancel_batch, submit_batch
from farm.jobs.spec import check_options
from farm.state import batches, store
from farm.state.db import Job


def photos(folder, n: int) -> None:
    folder.mkdir()
    for k in range(n):
        Image.fromarray(np.full((8, 8, 3), k * 20, np.uint8)).save(folder / f"p{k}.png")


@pytest.fixture
def small_parts(monkeypatch):
    monkeypatch.setattr(image_batch, "FIRST_JOB_IMAGES", 2)
    monkeypatch.setattr(image_batch, "JOB_GROWTH", 2)


def test_job_parts_grow_and_cover_every_image_once():
    sizes = [p.stop - p.start for p in image_batch.job_parts(10_000)]
    assert sizes == [256, 1024, 4096, 4624] and image_batch.job_parts(0) == []
    assert [p.stop - p.start for p in image_batch.job_parts(256)] == [256]


def test_each_images_job_is_recorded_whole_before_it_is_enqueued_and_before_the_next_is_checked(
        inproc, tmp_path, small_parts, monkeypatch):
    settings, db, _ctx = inproc
    photos(tmp_path / "in", 9)
    seen: list[tuple[str, int, int, int]] = []

    def enqueue(settings_, db_, job_id):   # what the broker would get: the database already holds it all
        job = store.get_job(db, job_id)
        with db.transaction() as s:
            jobs = s.query(Job).count()
            batch_id = s.get(Job, job_id).batch_id
        items = [i for i in batches.get_batch(db, batch_id).items if i.job is not None and i.job.id == job_id]
        seen.append((job_id, job.frames_total, len(items), jobs))
        return 0

    monkeypatch.setattr(farm.jobs.submit, "enqueue_job", enqueue)
    options = check_options({"passthrough": True, "output": str(tmp_path / "out")}, "test")
    batch = submit_batch([str(tmp_path / "in")], options, settings, db)
    assert [(frames, items, jobs) for _id, frames, items, jobs in seen] == [(2, 2, 1), (4, 4, 2), (3, 3, 3)]
    assert sorted(i.position for i in batch.items) == list(range(9))
    assert all(i.kind == batches.IMAGE for i in batch.items)
    assert {i.job.id for i in batch.items} == {job_id for job_id, *_ in seen}


def test_a_cancel_while_the_images_are_submitted_cancels_what_was_recorded_and_records_no_more(
        inproc, tmp_path, small_parts, monkeypatch):
    settings, db, _ctx = inproc
    photos(tmp_path / "in", 9)

    def enqueue(settings_, db_, job_id):   # `farm cancel BATCH` arrives as the first job is handed over
        with db.transaction() as s:
            batch_id = s.get(Job, job_id).batch_id
        cancel_batch(settings, db, batch_id)
        return 0

    monkeypatch.setattr(farm.jobs.submit, "enqueue_job", enqueue)
    options = check_options({"passthrough": True, "output": str(tmp_path / "out")}, "test")
    batch = submit_batch([str(tmp_path / "in")], options, settings, db)
    jobs = {i.job.id: i.job.state for i in batch.items if i.job is not None}
    assert list(jobs.values()) == ["cancelled"]
    refused = [i for i in batch.items if i.kind == batches.REFUSED]
    assert len(refused) == 7 and all("was cancelled while its images were being submitted" in i.error
                                     and f"farm retry {batch.id}" in i.error for i in refused)
