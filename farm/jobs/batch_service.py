"""The batch service: submit, cancel and retry a batch, for the CLI and the API alike.

A batch is a list of jobs submitted through the job service (farm.jobs.service.submit_job),
one call per item. An item that is refused (a broken or unreadable file, an output that
exists and no earlier batch item wrote) is recorded as a failed item with its error and the rest go
on; only a farm that is unavailable (UnavailableError: database, broker, storage) stops
the submit, as it would stop any job (what was recorded stays; re-running resumes).

Images are not one job each: every image of the batch is an item of an images job
(farm.jobs.image_batch: a few jobs of growing size), recorded in bulk after the videos.

Resume: an item whose output exists and whose earlier done job had the same input hash and
options hash (farm.jobs.batch) is recorded as resumed, and no job is made; `force` renders
it again. An output a done batch job published may be replaced by a re-render (its input
or options changed, or `force`); any other existing output needs `overwrite`, as for a job.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from farm.config import Settings
from farm.errors import FarmError, StateError, UnavailableError
from farm.jobs import batch as targets
from farm.jobs.service import Submitted, cancel_job, retry_job, submit_job
from farm.state import batches
from farm.state.db import Database
from farm.state.states import JOB_LIVE, JobState

if TYPE_CHECKING:
    from farm.jobs.image_batch import CheckOne

SubmitOne = Callable[[Any], Submitted]
"""Submits one SubmitRequest (the API's also claims its output for the token)."""


def _plain(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options as JSON: paths as text."""
    return {k: ([str(p) for p in v] if isinstance(v, list) else str(v) if isinstance(v, Path) else v)
            for k, v in options.items() if v is not None}


def submit_batch(paths: list[str], options: Mapping[str, Any], settings: Settings, db: Database, *,
                 origins: Mapping[str, str] | None = None, where: str = "command line", force: bool = False,
                 submit_one: SubmitOne | None = None, before_store: Callable[[], None] | None = None,
                 on_step: Callable[[str], None] | None = None, idempotency_key: str | None = None,
                 token_id: int | None = None, output_dir: Path | None = None,
                 check_image: CheckOne | None = None, keep: targets.Keep = targets._all) -> batches.BatchView:
    """Expand `paths`, record the batch and submit every item; returns the batch as recorded.

    `options` are checked job options (farm.jobs.spec.check_options); their `output`, if
    any, is the batch's output folder (or pass `output_dir`). InputError for bad targets
    (no such file, a glob that matches nothing, a bad output folder): nothing is recorded.
    `check_image(target)`: a front end's own check of each image item (farm.jobs.image_batch.CheckOne);
    `keep`: the paths it may read (farm.jobs.batch). An API batch (`token_id`) resumes or
    joins only its token's earlier jobs.
    """
    from farm.jobs.image_batch import submit_images
    from farm.jobs.spec import submit_request

    options = dict(options)
    raw_output = options.pop("output", None)
    out_file = targets.output_file(paths, str(raw_output) if raw_output is not None else None)
    out_dir = output_dir or (None if out_file else
                             targets.check_output_dir(str(raw_output) if raw_output is not None else None, paths))
    expanded = targets.expand(paths, out_dir, out_file, keep)
    if not expanded.items:   # an empty folder is refused as a glob that matches nothing is
        raise targets.nothing_to_render(paths, expanded.skipped)
    opts_hash = targets.options_sha256(_plain(options))
    if len(paths) == 1 and len(expanded.items) == 1 and targets.is_image(expanded.items[0].input):
        from farm.jobs.image_batch import refuse_single   # `farm submit photo.jpg`: refused as a video is

        refuse_single(db, settings, expanded.items[0], options, opts_hash, force=force, token_id=token_id)
    if out_dir is not None:
        targets.make_output_dir(out_dir)
    step = on_step or (lambda _msg: None)
    started = False

    def start() -> None:
        nonlocal started
        if before_store is not None and not started:
            before_store()
        started = True

    batch_id = batches.new_batch_id()
    batches.create_batch(db, batch_id, options=_plain(options), root=" ".join(paths),
                         output_dir=str(out_dir) if out_dir else None, idempotency_key=idempotency_key,
                         token_id=token_id)
    send = submit_one or (lambda req: submit_job(req, settings, db, before_store=start))
    images: list[tuple[int, targets.Target]] = []
    for position, target in enumerate(expanded.items):
        if targets.is_image(target.input):
            images.append((position, target))
            continue
        step(f"item {position + 1}/{len(expanded.items)}: {target.input}")
        record = dict(position=position, input_path=str(target.input),
                      output_path=str(target.output) if target.output else None)
        if target.reason is not None:   # no output of its own: a retry never writes over another item's
            batches.add_item(db, batch_id, kind=batches.REFUSED, error=target.reason,
                             **{**record, "output_path": None})
            continue
        try:
            in_hash = targets.input_sha256(target.input)
        except OSError as exc:
            batches.add_item(db, batch_id, kind=batches.REFUSED, **record,
                             error=f"cannot read {target.input}: {exc.strerror or exc}")
            continue
        hashes = dict(input_sha256=in_hash, options_sha256=opts_hash)
        live = batches.earlier_job_for(db, str(target.output), in_hash, opts_hash, JOB_LIVE, client=token_id)
        if live is not None:   # a re-run while it renders: that job is this item
            batches.add_item(db, batch_id, kind=batches.JOB, job_id=live, **record, **hashes)
            continue
        if not force and target.output.exists():
            earlier = batches.earlier_job_for(db, str(target.output), in_hash, opts_hash, [JobState.DONE],
                                              client=token_id)
            if earlier is not None:
                batches.add_item(db, batch_id, kind=batches.RESUMED, job_id=earlier, **record, **hashes)
                continue
        try:
            job_id = _submit_item(target, options, origins, where, batch_id, send, db, submit_request)
        except UnavailableError:
            raise
        except FarmError as exc:
            batches.add_item(db, batch_id, kind=batches.REFUSED, error=targets.refusal(exc), **record, **hashes)
            continue
        batches.add_item(db, batch_id, kind=batches.JOB, job_id=job_id, **record, **hashes)
    if images:
        step(f"{len(images)} images")
        submit_images(db, settings, batch_id, images, options, opts_hash, force=force,
                      origins=origins, where=where, start=start, check_one=check_image, token_id=token_id)
    for position, target in enumerate(expanded.skipped, start=len(expanded.items)):
        batches.add_item(db, batch_id, position, str(target.input), None, batches.SKIPPED, error=target.reason)
    return batches.get_batch(db, batch_id)


def _submit_item(target: targets.Target, options: Mapping[str, Any], origins: Mapping[str, str] | None, where: str,
                 batch_id: str, send: SubmitOne, db: Database, submit_request: Callable[..., Any]) -> str:
    """Submit one item's job; its mirrored output folder is made first and removed again
    (when empty) if the item is refused."""
    out = target.output
    made = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
    overwrite = bool(options.get("overwrite")) or (out.exists() and batches.made_by_farm(db, str(out)))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        req = submit_request(target.input, {**options, "output": out, "overwrite": overwrite}, origins, where=where)
        return send(dataclasses.replace(req, batch_id=batch_id)).job.id
    except BaseException:
        for folder in made:   # deepest first
            try:
                os.rmdir(folder)
            except OSError:
                break
        raise


def cancel_batch(settings: Settings, db: Database, batch_id: str) -> list[str]:
    """Cancel every live job of the batch; returns their ids. StateError when none is live.

    The batch is read again after the cancels: an images job that a submit still running
    recorded meanwhile is cancelled too (that submit, seeing a cancelled job of its own,
    records no further one: farm.jobs.image_batch.submit_images)."""
    batch = batches.get_batch(db, batch_id)
    live = batches.live_job_ids(batch)
    if not live:
        raise StateError(f"batch {batch_id} is {batch.state}: no item is queued or running, so there is "
                         "nothing to cancel", hint=f"`farm status {batch_id}` lists its items")
    done: list[str] = []
    while todo := [job_id for job_id in live if job_id not in done]:
        for job_id in todo:
            try:
                cancel_job(settings, db, job_id)
            except StateError:
                pass   # it finished meanwhile
            done.append(job_id)
        live = batches.live_job_ids(batches.get_batch(db, batch_id))
    return done


@dataclass
class BatchRetry:
    """What retry_batch_items did: one line per item run or submitted again, or not, and why."""

    batch_id: str
    on_line: Callable[[str], None] | None = None   # told each line as it is known
    lines: list[str] = field(default_factory=list)
    again: int = 0       # jobs run again and items submitted again
    refused: int = 0     # items whose retry was refused: refused again at submit, a job that cannot run now
    cannot: int = 0      # failed items of done jobs (no face changed, an image that failed): nothing to run again

    def say(self, line: str) -> None:
        self.lines.append(line)
        if self.on_line is not None:
            self.on_line(line)

    def nothing_done(self) -> StateError | None:
        """The refusal (exit 2, HTTP 409) when no item was run, or submitted, again."""
        if self.again or self.refused:
            return None
        why = "every item is done or skipped"
        if self.cannot:
            shown = "; ".join(self.lines[:3]) + (f"; and {len(self.lines) - 3} more" if len(self.lines) > 3 else "")
            why = f"its {self.cannot} failed item(s) have done jobs, which cannot run again ({shown})"
        return StateError(f"batch {self.batch_id} has nothing to retry: {why}",
                          hint="submit the targets again (with other options, or --force) to render them again")


def _retry_images(settings: Settings, db: Database, batch: batches.BatchView, refused: list[batches.ItemView],
                  start: Callable[[], None], check_image: CheckOne | None, token_id: int | None,
                  done: BatchRetry) -> None:
    """Refused images submitted again, in their places: their items are made anew (an image,
    or refused again)."""
    from farm.jobs.image_batch import submit_images

    batches.drop_items(db, [i.item_id for i in refused])
    todo = [(i.position, targets.Target(Path(i.input), Path(i.output))) for i in refused]
    submit_images(db, settings, batch.id, todo, batch.options, targets.options_sha256(batch.options), force=False,
                  origins=None, where="command line" if token_id is None else "the request", start=start,
                  check_one=check_image, token_id=token_id)
    now = {i.position: i for i in batches.get_batch(db, batch.id).items}
    for i in refused:
        again = now[i.position]
        if again.kind == batches.REFUSED:
            done.refused += 1
            done.say(f"{i.input}: refused again: {again.error}")
        else:
            done.again += 1
            done.say(f"{i.input}: submitted again in images job {again.job_id}")


def retry_batch(settings: Settings, db: Database, batch_id: str, **how: Any) -> list[str]:
    """retry_batch_items' lines (the API's answer: `how` is its keywords); StateError when no
    item was run or submitted again."""
    done = retry_batch_items(settings, db, batch_id, **how)
    refusal = done.nothing_done()
    if refusal is not None:
        raise refusal
    return done.lines


def retry_batch_items(settings: Settings, db: Database, batch_id: str, *,
                      before_enqueue: Callable[[], None] | None = None, submit_one: SubmitOne | None = None,
                      check_image: CheckOne | None = None, token_id: int | None = None,
                      on_line: Callable[[str], None] | None = None) -> BatchRetry:
    """Run again what did not finish: each failed or cancelled job from what it has left, each
    live job's lost work, and each refused item submitted again (refused again if still bad).
    A failed item whose job is done (no face changed; an image that failed in its done images
    job) is not run again, and says so; an item whose retry is refused (a live job now writes
    its output) does not stop the others. A front end's `submit_one` and `check_image` (claiming
    each output for `token_id`, over the API) act as at submit. Each line goes to `on_line` as it
    is known; see BatchRetry.nothing_done for when nothing was done."""
    from farm.jobs.spec import submit_request

    batch = batches.get_batch(db, batch_id)
    done = BatchRetry(batch_id, on_line)
    started = False

    def start() -> None:
        nonlocal started
        if before_enqueue is not None and not started:
            before_enqueue()
        started = True

    send = submit_one or (lambda req: submit_job(req, settings, db, before_store=start))
    retried: set[str] = set()
    images: list[batches.ItemView] = []
    for item in batch.items:
        job = item.job if item.kind in (batches.IMAGE, batches.JOB) else None
        if job is not None and job.state == JobState.DONE.value:
            if item.state == JobState.FAILED.value:   # its job cannot run again
                done.cannot += 1
                done.say(f"{item.input}: not retried: {item.failure}; its job {job.id} is done (submit it again "
                         "with other options, or --force, for a new render)")
        elif job is not None and job.id not in retried:   # an images job is many items: retried once
            retried.add(job.id)
            try:
                done.say(retry_job(settings, db, job.id, before_enqueue=start).message)
                done.again += 1
            except UnavailableError:
                raise
            except FarmError as exc:
                done.refused += 1
                done.say(f"{item.input}: not retried: {targets.refusal(exc)}")
        elif item.kind == batches.REFUSED and item.output is not None and targets.is_image(Path(item.input)):
            images.append(item)   # submitted again together, as one images job
        elif item.kind == batches.REFUSED and item.output is not None:
            target = targets.Target(Path(item.input), Path(item.output))
            try:
                hashes = {"input_sha256": targets.input_sha256(target.input),
                          "options_sha256": targets.options_sha256(batch.options)}
            except OSError:
                hashes = None   # unreadable still: submit says so
            try:
                job_id = _submit_item(target, batch.options, None, "command line", batch_id, send, db, submit_request)
            except UnavailableError:
                raise
            except FarmError as exc:
                batches.set_item_job(db, item.item_id, None, targets.refusal(exc), hashes)
                done.refused += 1
                done.say(f"{item.input}: refused again: {exc.message}")
                continue
            batches.set_item_job(db, item.item_id, job_id, hashes=hashes)
            done.again += 1
            done.say(f"{item.input}: submitted again as job {job_id}")
    if images:
        _retry_images(settings, db, batch, images, start, check_image, token_id, done)
    return done
