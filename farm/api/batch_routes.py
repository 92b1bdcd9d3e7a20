"""The batch routes: POST /batches (a folder or glob on storage), GET /batches/{id}, and
cancel/retry of a batch; the same options and Idempotency-Key rules as POST /jobs.

Body (JSON): {"path": "<folder or glob on storage>", "output": "<folder under outputs/>",
"force": false, ...job options}. The folder or the glob's folder part must lie inside the
storage; the walk reads only what the token may read (farm.api.reading: another client's
files are left out, as if absent); each item's input is confined and checked again (a link
out of storage refuses that item) and each item's output is claimed for the token as a
job's is (farm.api.outputs): without "output", each goes beside its input as `name.farm.ext`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from farm.api import idempotency, outputs
from farm.api.auth import require_token
from farm.api.ownership import own_batch
from farm.api.reading import Reader, reader_for
from farm.api.submission import confine, read_options
from farm.api.uploads import read_limited
from farm.errors import InputError, JobNotFound
from farm.jobs.outcomes import batch_json
from farm.jobs.output_places import API_OUTPUTS_DIR, is_within
from farm.jobs.service import Submitted, submit_job
from farm.state import batches
from farm.state.tokens import TokenView

if TYPE_CHECKING:
    from farm.api.app import ApiContext

log = logging.getLogger("farm.api")
batch_router = APIRouter()
BODY_LIMIT_BYTES = 1024 * 1024


@dataclasses.dataclass
class BatchRequest:
    path: str                      # the folder or glob, absolute, inside storage
    options: dict[str, Any]
    output_dir: Path | None
    force: bool
    sha256: str


def parse_batch(body: bytes, reader: Reader) -> BatchRequest:
    """The JSON body as a BatchRequest, every path confined to storage and every image one the
    client may read (InputError: HTTP 422)."""
    from farm.jobs.batch import _glob_base, is_glob
    from farm.jobs.spec import check_options

    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("path"), str):
        raise InputError("the JSON body needs 'path': a folder or a glob on the farm's storage",
                         hint='e.g. {"path": "incoming/shoot-12", "output": "outputs/shoot-12", "passthrough": true}')
    data = dict(data)
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    raw, force = data.pop("path"), data.pop("force", False)
    if not isinstance(force, bool):
        raise InputError("'force' must be true or false")
    storage = reader.storage
    path = raw if Path(raw).is_absolute() else str(storage.root / raw)
    if is_glob(path):
        confine(storage, str(_glob_base(path)), "path")
    else:
        path = str(confine(storage, path, "path"))
    options = check_options(data, "the JSON body")
    read_options(reader, options)
    output = options.pop("output", None)
    output_dir = confine(storage, output, "output") if output is not None else None
    return BatchRequest(path, options, output_dir, force, digest)


def _submit_one(ctx: ApiContext, reader: Reader, given: bool):
    """Submit one item as the reader's token: its input confined and one the token may read,
    its output claimed (released again when the item is refused)."""
    token_id = reader.token_id

    def submit(req: Any) -> Submitted:
        reader.check(ctx.storage.confine(Path(req.video)), "video")
        claim = outputs.claim_output(ctx.settings, ctx.db, token_id, req.output, given=given, own_folder=None,
                                     overwrite=req.overwrite)
        try:
            submitted = submit_job(dataclasses.replace(req, api_token_id=token_id, output=claim.path),
                                   ctx.settings, ctx.db)
        except BaseException:
            outputs.release(ctx.db, claim)
            raise
        outputs.record_job(ctx.db, claim, token_id, submitted.job.id)
        return submitted

    return submit


def _check_image(ctx: ApiContext, reader: Reader, given: bool, overwrite: bool):
    """An image item as the reader's token submits it: its input confined to storage and one the
    token may read, its output claimed as a job's is (farm.api.outputs); InputError refuses
    that item alone."""
    token_id = reader.token_id

    def check(target: Any) -> Callable[[str | None], None]:
        reader.check(ctx.storage.confine(Path(target.input)), "image")
        claim = outputs.claim_output(ctx.settings, ctx.db, token_id, target.output, given=given, own_folder=None,
                                     overwrite=overwrite)

        def settle(job_id: str | None) -> None:   # farm.jobs.image_batch.Settle
            if job_id is None:
                outputs.release(ctx.db, claim)
            else:
                outputs.record_job(ctx.db, claim, token_id, job_id)

        return settle

    return check


def _create(ctx: ApiContext, req: BatchRequest, reader: Reader, key: str | None) -> batches.BatchView:
    from farm.jobs.batch import check_output_dir
    from farm.jobs.batch_service import submit_batch
    from farm.jobs.spec import REQUEST, submit_request

    submit_request(Path("batch"), req.options, where=REQUEST)   # a missing source etc.: refused once
    named = ctx.storage.root / API_OUTPUTS_DIR
    if req.output_dir is not None and not is_within(req.output_dir, named):   # checked before it is made
        raise InputError(f"output {req.output_dir}: a batch's output folder named over the API goes under {named}/",
                         hint=f'e.g. "output": "{API_OUTPUTS_DIR}/<project>" (or leave it out: beside each input)')
    out_dir = check_output_dir(str(req.output_dir), [req.path]) if req.output_dir is not None else None
    return submit_batch([req.path], req.options, ctx.settings, ctx.db, where=REQUEST, force=req.force,
                        submit_one=_submit_one(ctx, reader, given=req.output_dir is not None),
                        idempotency_key=key, token_id=reader.token_id, output_dir=out_dir,
                        check_image=_check_image(ctx, reader, req.output_dir is not None,
                                                 bool(req.options.get("overwrite"))), keep=reader.keep)


@batch_router.post("/batches", status_code=201,
                   summary="Submit a batch: every video (one job each) and image (images jobs, in tasks of "
                           "many) of a folder or glob on storage",
                   responses={200: {"description": "an earlier request with this Idempotency-Key made this batch"},
                              409: {"description": "the Idempotency-Key was used for a different request"},
                              422: {"description": "bad input (no such folder, a glob matching nothing, bad "
                                                   "options); nothing was stored"}})
async def create_batch(request: Request, token: TokenView = Depends(require_token),
                       idempotency_key: Optional[str] = Header(None, alias="Idempotency-Key")) -> JSONResponse:
    ctx = request.app.state.ctx
    if idempotency_key is not None:
        idempotency.check_key(idempotency_key)
    reader = reader_for(request)
    req = await run_in_threadpool(parse_batch, await read_limited(request, BODY_LIMIT_BYTES), reader)
    reservation = None
    if idempotency_key is not None:
        reservation = await run_in_threadpool(idempotency.reserve, ctx.db, token.id, idempotency_key, req.sha256)
        if reservation.job_id is not None:
            batch = await run_in_threadpool(batches.get_batch, ctx.db, reservation.job_id)
            return JSONResponse(batch_json(batch), status_code=200,
                                headers={"Location": f"/batches/{batch.id}", "Idempotent-Replayed": "true"})
    try:
        batch = await run_in_threadpool(_create, ctx, req, reader, idempotency_key)
    except BaseException:
        if reservation is not None:
            await run_in_threadpool(idempotency.release, ctx.db, reservation)
        raise
    if reservation is not None:
        await run_in_threadpool(idempotency.complete, ctx.db, reservation, batch.id)
    log.info("batch %s (%d items) submitted over the API by token %r", batch.id, len(batch.items), token.name)
    return JSONResponse(batch_json(batch), status_code=201, headers={"Location": f"/batches/{batch.id}"})


def _batch_id(batch_id: str) -> str:
    if not batches.is_batch_id(batch_id) or len(batch_id) > 32:
        raise JobNotFound(f"no batch {batch_id!r}")
    return batch_id


@batch_router.get("/batches/{batch_id}", summary="A batch: its state, counts and every item")
def get_batch(request: Request, batch_id: str) -> dict[str, Any]:
    return batch_json(own_batch(request, _batch_id(batch_id)))


@batch_router.post("/batches/{batch_id}/cancel", summary="Cancel every queued or running job of a batch",
                   responses={409: {"description": "no item is queued or running"}})
def cancel_batch(request: Request, batch_id: str) -> dict[str, Any]:
    from farm.jobs.batch_service import cancel_batch as cancel

    ctx = request.app.state.ctx
    cancel(ctx.settings, ctx.db, own_batch(request, _batch_id(batch_id)).id)
    return batch_json(batches.get_batch(ctx.db, batch_id))


@batch_router.post("/batches/{batch_id}/retry", summary="Run a batch's failed, cancelled and refused items again",
                   responses={409: {"description": "every item is done or skipped"}})
def retry_batch(request: Request, batch_id: str, token: TokenView = Depends(require_token)) -> dict[str, Any]:
    from farm.jobs.batch_service import retry_batch as retry

    ctx = request.app.state.ctx
    batch = own_batch(request, _batch_id(batch_id))
    given = batch.output_dir is not None
    reader = reader_for(request)
    lines = retry(ctx.settings, ctx.db, batch_id, submit_one=_submit_one(ctx, reader, given=given),
                  check_image=_check_image(ctx, reader, given, bool(batch.options.get("overwrite"))),
                  token_id=token.id)
    return {**batch_json(batches.get_batch(ctx.db, batch_id)), "messages": lines}
