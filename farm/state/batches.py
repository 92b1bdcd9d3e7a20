"""Batch records: a batch, its items, and the one answer to "what state is this batch in".

An item is one target of the batch. Its kind says where its state comes from:

    job       a job renders it: the job's state (failed, though the job is done, for a face
              job that changed no face in any frame: nothing was swapped)
    refused   refused at submit (unreadable, not a video, output taken...): failed, its error kept
    resumed   its output exists from an earlier job with the same input and options hashes:
              done, job_id is that earlier job (nothing new is rendered)
    image     an image of an images job (farm.jobs.image_batch): its own result (state, error,
              faces changed: failed when a face job changed no face), else its job's state
    skipped   not a target (hidden, unknown extension): listed, never counted

A resumed or image item names its image (image_id); a re-run's item may name an earlier
batch's image (resumed, or one still rendering: no second render).

A batch is `running` while any item's job is live, then `done` (failures are listed with
it; exit code 1 when any item failed) or `cancelled` when an item was cancelled and none
failed. batch_state is that rule; the CLI, its JSON and the API all read it from here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import select

from farm.errors import JobNotFound
from farm.state import images as image_rows
from farm.state.db import Batch, BatchItem, Chunk, Database, Job
from farm.state.states import JOB_LIVE, JobState
from farm.state.store import JobView, face_job, job_snapshot

JOB, REFUSED, RESUMED, SKIPPED, IMAGE = "job", "refused", "resumed", "skipped", "image"


@dataclass
class ItemView:
    item_id: int
    position: int
    input: str
    output: str | None
    kind: str
    job_id: str | None
    error: str | None
    input_sha256: str | None = None
    options_sha256: str | None = None
    job: JobView | None = None
    image: image_rows.ImageView | None = None

    @property
    def faceless(self) -> bool:
        """A face job, done, whose workers changed no face in any frame (for an image: in the
        image): the item failed (its output is the input re-encoded), though the job is done."""
        job = self.job
        if self.image is not None:   # an image item, or one resumed from an earlier image
            return (job is not None and face_job(job) and self.image is not None
                    and self.image.state == image_rows.DONE and self.image.faces_changed == 0)
        return (job is not None and job.state == JobState.DONE.value and face_job(job)
                and job.changed is not None and job.changed[1] == 0)

    @property
    def live(self) -> bool:
        """Still to be rendered: its job is live (an image: and its own result is not in yet)."""
        if self.job is None or self.kind not in (JOB, IMAGE) or not self.job.live:
            return False
        return self.kind == JOB or self.image is None or self.image.state == image_rows.PENDING

    @property
    def state(self) -> str:
        if self.kind == SKIPPED:
            return SKIPPED
        if self.kind == REFUSED or self.faceless:
            return JobState.FAILED.value
        if self.kind == RESUMED:
            return JobState.DONE.value
        if self.kind == IMAGE and self.image is not None and self.image.state != image_rows.PENDING:
            return self.image.state
        if self.kind == IMAGE and self.job is not None and self.job.state == JobState.DONE.value:
            return JobState.FAILED.value   # a done job that never wrote this image's result
        return self.job.state if self.job is not None else JobState.FAILED.value

    @property
    def failure(self) -> str | None:
        """Why the item failed (its refusal, no face changed, or its job's error), None unless it failed."""
        if self.state != JobState.FAILED.value:
            return None
        if self.kind == REFUSED:
            return self.error
        if self.faceless and self.image is not None:
            return (f"no face was changed in {self.input}: {self.output} is the input, labelled unaltered "
                    "(check --faces/--reference/--similarity, or try a lower --min-score)")
        if self.faceless:
            return (f"no face was changed in any of its {self.job.frames_total} frames: {self.output} is the input "
                    "re-encoded (check --faces/--reference/--similarity, or try a lower --min-score)")
        if self.image is not None and self.image.error:
            return self.image.error
        if self.kind == IMAGE and self.job is not None and self.job.state == JobState.DONE.value:
            return f"its images job {self.job.id} ended without a result for it"
        return self.job.error if self.job else "its job is gone"


@dataclass
class BatchView:
    id: str
    created_at: dt.datetime
    options: dict[str, Any]
    root: str
    output_dir: str | None
    items: list[ItemView] = field(default_factory=list)     # the targets, in order
    skipped: list[ItemView] = field(default_factory=list)   # listed, not rendered
    token_id: int | None = None   # the API client that submitted it (None: `farm submit`)

    def count(self, state: str) -> int:
        return sum(1 for i in self.items if i.state == state)

    @property
    def live(self) -> int:
        return sum(1 for i in self.items if i.live)

    @property
    def frames(self) -> tuple[int, int]:
        """(frames done, frames total) over the items a job of this batch renders; an image
        is one frame, done once its result is in."""
        jobs = [i.job for i in self.items if i.kind == JOB and i.job is not None]
        shots = [i for i in self.items if i.kind == IMAGE]
        done = sum(1 for i in shots if i.image is not None and i.image.state != image_rows.PENDING)
        return sum(j.frames_done for j in jobs) + done, sum(j.frames_total for j in jobs) + len(shots)

    @property
    def state(self) -> str:
        return batch_state(self)


def batch_state(batch: BatchView) -> str:
    """running while any item's job is live; then cancelled if an item was cancelled and none
    failed; else done (failed items are listed with it)."""
    if batch.live:
        return JobState.RUNNING.value
    if batch.count(JobState.CANCELLED.value) and not batch.count(JobState.FAILED.value):
        return JobState.CANCELLED.value
    return JobState.DONE.value


def new_batch_id() -> str:
    """'b-' and 10 hex digits: never a job id (12 hex digits), so `farm status ID` tells them apart."""
    import uuid

    return "b-" + uuid.uuid4().hex[:10]


def is_batch_id(text: str) -> bool:
    return text.startswith("b-")


def create_batch(db: Database, batch_id: str, *, options: dict[str, Any], root: str, output_dir: str | None,
                 idempotency_key: str | None = None, token_id: int | None = None) -> None:
    with db.transaction() as s:
        s.add(Batch(id=batch_id, options=options, root=root, output_dir=output_dir,
                    idempotency_key=idempotency_key, token_id=token_id))


def add_item(db: Database, batch_id: str, position: int, input_path: str, output_path: str | None, kind: str, *,
             job_id: str | None = None, error: str | None = None, input_sha256: str | None = None,
             options_sha256: str | None = None) -> None:
    """Record one item (its own transaction: a batch stopped while submitting keeps what it recorded)."""
    with db.transaction() as s:
        s.add(BatchItem(batch_id=batch_id, position=position, input_path=input_path, output_path=output_path,
                        kind=kind, job_id=job_id, error=error[:4000] if error else None,
                        input_sha256=input_sha256, options_sha256=options_sha256))


def set_item_job(db: Database, item_id: int, job_id: str | None, error: str | None = None,
                 hashes: dict[str, str | None] | None = None) -> None:
    """A refused item submitted again (retry): its new job, or its new refusal (and the
    hashes of its input and options as they are now)."""
    with db.transaction() as s:
        item = s.get(BatchItem, item_id, with_for_update=True)
        item.kind, item.job_id, item.error = (JOB, job_id, None) if job_id else (REFUSED, None, (error or "")[:4000])
        for key, value in (hashes or {}).items():
            setattr(item, key, value)


def drop_items(db: Database, item_ids: list[int]) -> None:
    """Remove items (refused images submitted again make new ones in their places)."""
    from sqlalchemy import delete

    with db.transaction() as s:
        s.execute(delete(BatchItem).where(BatchItem.id.in_(item_ids)))


def earlier_job_for(db: Database, output_path: str, input_sha256: str, options_sha256: str,
                    states: Iterable[JobState], client: int | None = None) -> str | None:
    """The newest job in `states` of a batch item that renders `output_path` from an input and
    options with these hashes, or None. Done: the item is resumed when its output is still
    there; live: the item is that job (a re-run while it renders starts no second one).
    `client`: an API token, whose batch joins only its own jobs (None: any job, as the
    farm's own commands see)."""
    query = (select(Job.id).join(BatchItem, BatchItem.job_id == Job.id)
             .where(BatchItem.output_path == output_path, BatchItem.input_sha256 == input_sha256,
                    BatchItem.options_sha256 == options_sha256, BatchItem.kind.in_([JOB, RESUMED]),
                    Job.state.in_([st.value for st in states]), Job.output_path == output_path))
    if client is not None:
        query = query.where(Job.api_token_id == client)
    with db.transaction() as s:
        return s.execute(query.order_by(BatchItem.id.desc()).limit(1)).scalar()


def made_by_farm(db: Database, output_path: str) -> bool:
    """Whether a done job of a batch published `output_path` (a re-run may replace it)."""
    with db.transaction() as s:
        return s.execute(select(Job.id).where(Job.output_path == output_path, Job.batch_id.is_not(None),
                                              Job.state == JobState.DONE.value).limit(1)).scalar() is not None


ITEM_FIELDS = (BatchItem.id, BatchItem.position, BatchItem.input_path, BatchItem.output_path, BatchItem.kind,
               BatchItem.job_id, BatchItem.error, BatchItem.input_sha256, BatchItem.options_sha256, BatchItem.image_id)


def get_batch(db: Database, batch_id: str) -> BatchView:
    """The batch, its items and their jobs (with chunks), read in one transaction."""
    with db.transaction() as s:
        row = s.get(Batch, batch_id)
        if row is None:
            raise JobNotFound(f"no batch {batch_id!r}", hint="`farm jobs` lists jobs; a batch id starts with b-")
        items = s.execute(select(*ITEM_FIELDS).where(BatchItem.batch_id == batch_id)   # rows, not objects
                          .order_by(BatchItem.position, BatchItem.id)).all()
        ids = sorted({i.job_id for i in items if i.job_id})
        jobs = {j.id: j for j in s.execute(select(Job).where(Job.id.in_(ids))).scalars()} if ids else {}
        chunks: dict[str, list[Chunk]] = {}
        if ids:
            for c in s.execute(select(Chunk).where(Chunk.job_id.in_(ids))).scalars():
                chunks.setdefault(c.job_id, []).append(c)
        views = {jid: job_snapshot(j, chunks.get(jid, [])) for jid, j in jobs.items()}
        shots = image_rows.by_ids(s, [i.image_id for i in items if i.image_id is not None])
        batch = BatchView(row.id, row.created_at, dict(row.options), row.root, row.output_dir, token_id=row.token_id)
        for i in items:
            view = ItemView(i.id, i.position, i.input_path, i.output_path, i.kind, i.job_id, i.error,
                            i.input_sha256, i.options_sha256, views.get(i.job_id) if i.job_id else None,
                            shots.get(i.image_id) if i.image_id is not None else None)
            (batch.skipped if i.kind == SKIPPED else batch.items).append(view)
        return batch


def live_job_ids(batch: BatchView) -> list[str]:
    """The batch's live jobs, each once (an images job is many items)."""
    ids = [i.job.id for i in batch.items if i.kind in (JOB, IMAGE) and i.job is not None
           and JobState(i.job.state) in JOB_LIVE]
    return list(dict.fromkeys(ids))
