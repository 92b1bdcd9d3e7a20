"""The images of a batch: images jobs whose chunks are groups of images (issue 16.2, 16.4).

A batch's images with the batch's options make images jobs (farm.state.images: the encoder
record says so) on the `gpu` queue, of growing size (job_parts: 10,000 images are 4 jobs),
each recorded whole and enqueued before the next part is checked, so the workers start
during the submit; a job's chunks hold up to IMAGES_PER_TASK images and at
most TASK_PIXELS pixels, so 10,000 small photos are 40 tasks (1,000 of 1080p: 17), claimed, beating, finished
and retried by the chunk machinery of every job (farm.state.chunks). Each image is a
batch item (kind `image`) naming its own row in job_images, where the worker records its
result. The face work is prepared once for the batch's images (farm.jobs.face_prep) and saved
with each job, as for a video.

Every image is checked from its header before anything is stored (farm.media.stills:
animated images, multi-page TIFF, deep colour other than 16-bit RGB(A) PNG/TIFF and unknown
modes are refused, each a failed item saying why and what to do), and its output like a video's (no symlink, not in
the farm's folders, the input's format, not an existing file unless --overwrite or an
earlier batch image wrote it, never one a live images job is to write: farm.jobs.reservation).
Resume is a video item's: the same output, input hash and options hash as an earlier done
image whose output exists is `resumed`; one still rendering is that image (no second
render); `force` renders them again. The inputs are read where they are (on a cluster,
shared storage): 10,000 photos are not copied at submit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

from farm.config import Settings
from farm.errors import FarmError, InputError, UnavailableError
from farm.jobs import batch as targets
from farm.jobs import reservation
from farm.state import batches, store
from farm.state import images as image_rows
from farm.state.db import Database
from farm.state.states import JOB_LIVE, JobState

FIRST_JOB_IMAGES = 256
"""Images in a batch's first images job; each next one holds JOB_GROWTH times more, the last the
rest (10,000 images: 4 jobs). The submit checks and records ~5x faster than a worker renders a
pass-through image (bench_images), so the workers start on the first job while the rest are
checked and recorded, and they do not run dry."""
JOB_GROWTH = 4
IMAGES_PER_TASK = 256
"""Small images: a task of 64x64 pass-through images costs ~65 ms of claim, finish and hand-over (bench_images)."""
TASK_PIXELS = 128 * 1000 * 1000
"""A task's pixel budget: about 60 images of 1080p, a few seconds of face work on a GPU."""
SAME_FORMAT = ({".jpg", ".jpeg"}, {".tif", ".tiff"})
Settle = Callable[[str | None], None]
"""Told an image item's fate once it is known: the images job's id that renders it, or None (refused)."""
CheckOne = Callable[[targets.Target], Settle | None]
"""A front end's own check of an image item (the API: input confined, output claimed); FarmError refuses
it. What it returns (if anything) is called once with the item's fate (the API: the claim noted with
its job, or released when the item ends refused after all)."""


def _same_format(a: Path, b: Path) -> bool:
    x, y = a.suffix.lower(), b.suffix.lower()
    return x == y or any(x in group and y in group for group in SAME_FORMAT)


def check_image_output(target: targets.Target, settings: Settings, overwrite: bool, made: set[str],
                       api: bool, places_ok: set[Path] | None = None) -> None:
    """InputError unless the image's output may be written (see the module's rules).
    `places_ok`: folders already found outside the farm's own places (checked once per folder)."""
    from farm.jobs.output_places import check_output_place

    out = target.output
    if not _same_format(out, target.input):
        raise InputError(f"output {out} must keep the input's format ({target.input.suffix})",
                         hint=f"use an output name ending in {target.input.suffix}")
    if out.is_symlink():
        raise InputError(f"output {out} is a symbolic link; the farm does not write through links",
                         hint="remove the link or choose another output")
    if places_ok is None or out.parent not in places_ok:
        check_output_place(out, settings, api=api)
        if places_ok is not None and out.name not in {".", ""}:
            places_ok.add(out.parent)
    if out.exists():
        if not out.is_file() or out.samefile(target.input):
            raise InputError(f"output {out} exists and is not a regular file other than the input; it is never "
                             "replaced", hint="choose another output folder")
        if not overwrite and str(out) not in made:
            raise InputError(f"output {out} already exists", hint="pass --overwrite or choose another --output")


def job_parts(n: int) -> list[slice]:
    """The slices of a batch's `n` images that make its images jobs: FIRST_JOB_IMAGES, then
    JOB_GROWTH times more each, the last one the rest."""
    out, at, size = [], 0, FIRST_JOB_IMAGES
    while at < n:
        out.append(slice(at, min(n, at + size)))
        at, size = at + size, size * JOB_GROWTH
    return out


def submit_images(db: Database, settings: Settings, batch_id: str, todo: list[tuple[int, targets.Target]],
                  options: Mapping[str, Any], opts_hash: str, *, force: bool, origins: Mapping[str, str] | None,
                  where: str, start: Callable[[], None], check_one: CheckOne | None = None,
                  token_id: int | None = None) -> list[str]:
    """Record the image items of a batch (positions given) in images jobs of growing size (parts),
    each job recorded whole in one transaction and handed to the broker before the next part is
    checked, so the first tasks run while the rest are checked and recorded; returns the jobs' ids.
    A job's refusal (a source without a face...) fails each image it would have held, and every
    later one. When one of the jobs is cancelled meanwhile (`farm cancel BATCH`), the images not
    yet recorded are refused items saying so (`farm retry BATCH` submits them again)."""
    made_jobs: list[str] = []
    settles: dict[int, Settle] = {}
    refusal: str | None = None
    prepared: tuple[Any, Any] | None = None
    places_ok: set[Path] = set()
    try:
        for part in job_parts(len(todo)):
            if made_jobs and _cancelled(db, made_jobs):
                why = f"batch {batch_id} was cancelled while its images were being submitted"
                _write_items(db, [dict(batch_id=batch_id, position=position, input_path=str(target.input),
                                       output_path=str(target.output) if target.output else None,
                                       kind=batches.REFUSED, error=f"{why} (`farm retry {batch_id}` submits it again)")
                                  for position, target in todo[part.start:]])
                break
            items, render = _check_part(db, settings, batch_id, todo[part], options, opts_hash, force=force,
                                        check_one=check_one, token_id=token_id, places_ok=places_ok, settles=settles)
            if render and refusal is None and prepared is None:
                try:
                    prepared = _prepare(render[0][1].input, options, origins, where, settings, start)
                except UnavailableError:
                    raise
                except FarmError as exc:   # the job's own refusal: each of its images fails with it
                    refusal = targets.refusal(exc)
            if render and prepared is not None:
                try:
                    made_jobs.append(_record_job(db, settings, batch_id, render, items, options, *prepared, token_id))
                    _settle(settles, render, made_jobs[-1])
                    continue
                except UnavailableError:
                    raise
                except FarmError as exc:
                    refusal = targets.refusal(exc)
            _write_items(db, items + [{**item, "kind": batches.REFUSED, "error": refusal} for item, _t, _p in render])
            _settle(settles, render, None)
    finally:   # a part cut short by an error: its checked images were never recorded
        for settle in settles.values():
            settle(None)
    if made_jobs and _cancelled(db, made_jobs):   # a cancel that came as the last job was recorded
        for job_id in made_jobs:
            try:
                store.request_cancel(db, job_id)
            except FarmError:
                pass   # done already
    return made_jobs


def _settle(settles: dict[int, Settle], render: list[tuple[dict[str, Any], targets.Target, int]],
            job_id: str | None) -> None:
    """Tell the front end the fate of each image of `render` it checked (farm.jobs.image_batch.Settle)."""
    for item, _target, _pixels in render:
        settle = settles.pop(item["position"], None)
        if settle is not None:
            settle(job_id)


def _cancelled(db: Database, job_ids: list[str]) -> bool:
    return any(store.get_job(db, job_id).cancel_requested for job_id in job_ids)


def refuse_single(db: Database, settings: Settings, target: targets.Target, options: Mapping[str, Any],
                  opts_hash: str, *, force: bool, token_id: int | None) -> None:
    """A batch of one image (`farm submit photo.jpg`): the InputError its item would be refused
    with (an existing output, a bad format...), raised before the batch is recorded, so that it
    is refused as a single video is (exit 2, nothing stored). Nothing is written."""
    errors: dict[int, FarmError] = {}
    _check_part(db, settings, "", [(0, target)], options, opts_hash, force=force, check_one=None,
                token_id=token_id, places_ok=set(), settles={}, errors=errors)
    if 0 in errors:
        exc = errors[0]
        raise InputError(exc.message, hint=exc.hint)


def _check_part(db: Database, settings: Settings, batch_id: str, todo: list[tuple[int, targets.Target]],
                options: Mapping[str, Any], opts_hash: str, *, force: bool, check_one: CheckOne | None,
                token_id: int | None, places_ok: set[Path], settles: dict[int, Settle],
                errors: dict[int, FarmError] | None = None
                ) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], targets.Target, int]]]:
    """(items not to render: refused, resumed or still rendering; (item, target, pixels) to render).
    `errors`: where to keep each refused item's error, by position (refuse_single)."""
    from farm.media.stills import check_still

    outputs = [str(t.output) for _, t in todo if t.reason is None]
    earlier = image_rows.earlier_images(db, outputs, client=token_id)
    made = image_rows.made_by_farm(db, outputs)
    taken = reservation.images_taken(db, outputs)   # a live images job's: refused (claim_images decides)
    overwrite = bool(options.get("overwrite"))
    max_side = max(settings.max_width, settings.max_height)
    items: list[dict[str, Any]] = []
    render: list[tuple[dict[str, Any], targets.Target, int]] = []
    for position, target in todo:
        item = dict(batch_id=batch_id, position=position, input_path=str(target.input),
                    output_path=str(target.output) if target.output else None)
        if target.reason is not None:
            items.append({**item, "output_path": None, "kind": batches.REFUSED, "error": target.reason})
            continue
        try:
            _fmt, _mode, (width, height) = check_still(target.input, max_side)
            item.update(input_sha256=targets.input_sha256(target.input), options_sha256=opts_hash)
        except FarmError as exc:
            items.append({**item, "kind": batches.REFUSED, "error": targets.refusal(exc)})
            (errors if errors is not None else {})[position] = exc
            continue
        except OSError as exc:
            why = f"cannot read {target.input}: {exc.strerror or exc}"
            items.append({**item, "kind": batches.REFUSED, "error": why})
            (errors if errors is not None else {})[position] = InputError(why, hint="check the file and its permissions")
            continue
        found = earlier.get((item["output_path"], item["input_sha256"], opts_hash))
        live = found is not None and found.job_state in {state.value for state in JOB_LIVE}
        if live and found.image_state == image_rows.PENDING:   # a re-run while it renders: that image
            items.append({**item, "kind": batches.IMAGE, "job_id": found.job_id, "image_id": found.image_id})
            continue
        if (found is not None and not force and found.image_state == image_rows.DONE
                and found.job_state == JobState.DONE.value and target.output.exists()):
            items.append({**item, "kind": batches.RESUMED, "job_id": found.job_id, "image_id": found.image_id})
            continue
        try:
            if (writer := taken.get(item["output_path"])) is not None:
                raise reservation.refusal(target.output, writer, "--output" if token_id is None else "output")
            check_image_output(target, settings, overwrite, made, api=token_id is not None, places_ok=places_ok)
            settle = check_one(target) if check_one is not None else None
            if settle is not None:
                settles[position] = settle
        except UnavailableError:
            raise
        except FarmError as exc:
            items.append({**item, "kind": batches.REFUSED, "error": targets.refusal(exc)})
            (errors if errors is not None else {})[position] = exc
            continue
        render.append(({**item, "kind": batches.IMAGE}, target, width * height))
    return items, render


def _write_items(db: Database, items: list[dict[str, Any]]) -> None:
    with db.transaction() as s:
        image_rows.add_items(s, items)


def group(render: list[tuple[dict[str, Any], targets.Target, int]]) -> list[list[int]]:
    """Indexes of `render` per task: at most IMAGES_PER_TASK images and TASK_PIXELS pixels each."""
    groups: list[list[int]] = []
    pixels = 0
    for n, (_item, _target, size) in enumerate(render):
        if not groups or len(groups[-1]) >= IMAGES_PER_TASK or (pixels + size > TASK_PIXELS and groups[-1]):
            groups.append([])
            pixels = 0
        groups[-1].append(n)
        pixels += size
    return groups


def _prepare(first: Path, options: Mapping[str, Any], origins: Mapping[str, str] | None, where: str,
             settings: Settings, start: Callable[[], None]) -> tuple[Any, Any]:
    """The images jobs' request and prepared faces (once for the batch's images): FarmError refuses them."""
    from farm.jobs.face_prep import prepare_faces
    from farm.jobs.spec import submit_request
    from farm.jobs.submit import check_consent, check_images

    req = submit_request(first, {**options, "output": None}, origins, where=where)
    if req.face_options.get("reference_frame") is not None:
        raise InputError("--reference-frame names a frame of a video; the batch's images need --reference IMAGE",
                         hint="give --reference IMAGE (a photo of the person to swap)")
    check_consent(req.consent, settings, req.option("consent"))
    check_images(req, settings)
    if not settings.embedded_broker:
        from farm.broker.transport import require as require_broker

        require_broker(settings)
    faces = prepare_faces(req, settings)
    start()
    return req, faces


def _record_job(db: Database, settings: Settings, batch_id: str, render: list[tuple[dict[str, Any], Any, int]],
                others: list[dict[str, Any]], options: Mapping[str, Any], req: Any, faces: Any,
                token_id: int | None = None) -> str:
    """Record one images job (`token_id`: the API client submitting it) with its items, then hand it over."""
    from farm.jobs.service import _hand_over
    from farm.jobs.submit import enqueue_job, new_job_id
    from farm.storage import Storage

    first = render[0][1].input
    job_id = new_job_id()
    storage = Storage(settings.storage_dir)
    faces.save(storage.identity(job_id))
    parts = group(render)
    specs, planned = [], []
    for index, members in enumerate(parts):
        head = render[members[0]][1]
        specs.append(store.ChunkSpec(index=index, first_frame=members[0], frames_planned=len(members),
                                     plan={"images": len(members)}, input_path=str(head.input),
                                     output_path=str(head.output)))
        planned += [(index, str(render[n][1].input), str(render[n][1].output)) for n in members]

    def rows(session: Any) -> None:
        reservation.claim_images(session, [out for _index, _in, out in planned], job_id)
        ids = image_rows.add_images(session, job_id, planned)
        order = [n for members in parts for n in members]
        image_rows.add_items(session, [{**render[n][0], "job_id": job_id, "image_id": image_id}
                                       for n, image_id in zip(order, ids, strict=True)] + others)

    out_root = os.path.commonpath([str(t.output.parent) for _, t, _ in render])
    try:
        store.create_job(db, job_id=job_id, chunks=specs, input_path=f"{len(render)} images of batch {batch_id}",
                         source_path=str(first), output_path=out_root, overwrite=bool(options.get("overwrite")),
                         keep_chunks=False, priority=req.priority, options=faces.options,
                         encoder=dict(image_rows.IMAGES_ENCODER), models=faces.label, frames_total=len(render),
                         fps=0.0, consent=req.consent.strip() if req.consent and req.consent.strip() else None,
                         batch_id=batch_id, api_token_id=token_id,
                         notes=[("images", f"{len(render)} images in {len(specs)} tasks")],
                         also=rows)
    except BaseException:
        storage.remove_job(job_id)
        raise
    _hand_over(settings, job_id, lambda: enqueue_job(settings, db, job_id))
    return job_id

