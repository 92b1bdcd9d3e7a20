"""The images of an images job (farm.jobs.image_batch): one row each, its own result.

A batch's images render in one job whose chunks are groups of images; each image keeps
its own state (pending, done, failed), error and the faces its chain changed, written by
the worker in the transaction that finishes its chunk (farm.state.chunks.finish_chunk's
`also`), so a chunk that runs twice writes the same results twice and nothing else.
A job of this kind is told apart by its encoder record: IMAGES_ENCODER.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import insert, select, update

from farm.state.db import BatchItem, Database, Job, JobImage

IMAGES_ENCODER = {"kind": "images"}
"""The encoder record of an images job: each image is written in its own format (farm.media.stills)."""
PENDING, DONE, FAILED = "pending", "done", "failed"
LOOKUP_BATCH = 500   # output paths per IN (...) query


def is_images_job(job: Any) -> bool:
    return (getattr(job, "encoder", None) or {}).get("kind") == IMAGES_ENCODER["kind"]


@dataclass(frozen=True)
class ImageView:
    id: int
    job_id: str
    chunk_index: int
    input: str
    output: str
    state: str
    error: str | None
    faces_changed: int | None


@dataclass(frozen=True)
class ImageResult:
    """What a worker found for one image."""

    image_id: int
    state: str
    error: str | None = None
    faces_changed: int | None = None


def add_images(session: Any, job_id: str, planned: list[tuple[int, str, str]]) -> list[int]:
    """Rows for [(chunk index, input, output)] in an open transaction; their ids, in order
    (one multi-row INSERT ... RETURNING, not an ORM object each: 10,000 images are one write)."""
    rows = [{"job_id": job_id, "chunk_index": c, "input_path": i, "output_path": o, "state": PENDING}
            for c, i, o in planned]
    if not rows:
        return []
    done = session.execute(insert(JobImage).returning(JobImage.id, sort_by_parameter_order=True), rows)
    return [row[0] for row in done]


ITEM_COLUMNS = ("batch_id", "position", "input_path", "output_path", "kind", "job_id", "error", "input_sha256",
                "options_sha256", "image_id")


def add_items(session: Any, items: Iterable[dict[str, Any]]) -> None:
    """Batch item rows in an open transaction, in one executemany."""
    rows = [{key: item.get(key) for key in ITEM_COLUMNS} for item in items]
    for row in rows:
        row["error"] = row["error"][:4000] if row["error"] else None
    if rows:
        session.execute(insert(BatchItem), rows)


def of_chunk(db: Database, job_id: str, index: int) -> list[ImageView]:
    """The images of one task, in order (plain rows: no ORM object an image)."""
    with db.transaction() as s:
        rows = s.execute(select(*IMAGE_COLUMNS).where(JobImage.job_id == job_id, JobImage.chunk_index == index)
                         .order_by(JobImage.id))
        return [ImageView(*r) for r in rows]


def record_results(session: Any, results: Iterable[ImageResult]) -> None:
    """Each image's result, in the transaction that finishes its chunk."""
    rows = [{"id": r.image_id, "state": r.state, "error": (r.error or "")[:4000] or None,
             "faces_changed": r.faces_changed} for r in results]
    if rows:   # one executemany (an UPDATE by primary key per row), not one statement each
        session.execute(update(JobImage), rows)


IMAGE_COLUMNS = (JobImage.id, JobImage.job_id, JobImage.chunk_index, JobImage.input_path, JobImage.output_path,
                 JobImage.state, JobImage.error, JobImage.faces_changed)
"""ImageView's fields, in order (read as plain rows: a batch of 10,000 images is polled while it renders)."""


def by_ids(session: Any, ids: Iterable[int]) -> dict[int, ImageView]:
    ids = sorted(set(ids))
    found: dict[int, ImageView] = {}
    for at in range(0, len(ids), LOOKUP_BATCH):
        rows = session.execute(select(*IMAGE_COLUMNS).where(JobImage.id.in_(ids[at:at + LOOKUP_BATCH])))
        found.update((r[0], ImageView(*r)) for r in rows)
    return found


@dataclass(frozen=True)
class Earlier:
    """The newest image of an earlier batch item that renders this output from these hashes."""

    job_id: str
    image_id: int
    image_state: str
    job_state: str


def earlier_images(db: Database, outputs: list[str], client: int | None = None) -> dict[tuple[str, str, str], Earlier]:
    """(output, input sha256, options sha256) -> the newest earlier image item for it, over
    the given outputs (the resume of an image batch: one query per LOOKUP_BATCH outputs).
    `client`: an API token, whose batch resumes only its own jobs (None: any job)."""
    found: dict[tuple[str, str, str], Earlier] = {}
    with db.transaction() as s:
        for at in range(0, len(outputs), LOOKUP_BATCH):
            query = (select(BatchItem.output_path, BatchItem.input_sha256, BatchItem.options_sha256, JobImage.job_id,
                            JobImage.id, JobImage.state, Job.state)
                     .join(JobImage, JobImage.id == BatchItem.image_id).join(Job, Job.id == JobImage.job_id)
                     .where(BatchItem.output_path.in_(outputs[at:at + LOOKUP_BATCH])))
            if client is not None:
                query = query.where(Job.api_token_id == client)
            rows = s.execute(query.order_by(BatchItem.id)).all()
            for out, ih, oh, job_id, image_id, image_state, job_state in rows:   # the newest wins
                found[(out, ih, oh)] = Earlier(job_id, image_id, image_state, job_state)
    return found


def made_by_farm(db: Database, outputs: list[str]) -> set[str]:
    """The outputs among `outputs` that a done image of a batch wrote (a re-run may replace them)."""
    made: set[str] = set()
    with db.transaction() as s:
        for at in range(0, len(outputs), LOOKUP_BATCH):
            made.update(s.execute(select(JobImage.output_path).where(
                JobImage.output_path.in_(outputs[at:at + LOOKUP_BATCH]), JobImage.state == DONE)).scalars())
    return made
