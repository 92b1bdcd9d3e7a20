"""The job routes: create, list, show, cancel, retry, download."""

from __future__ import annotations

import dataclasses
import json
import logging
import mimetypes
import re
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from farm.api import idempotency, outputs
from farm.api.auth import require_token
from farm.api.ownership import own_job
from farm.api.reading import reader_for
from farm.api.submission import Submission, from_form, from_json, read_path
from farm.api.uploads import UnsupportedBody, read_limited, read_multipart
from farm.errors import InputError, JobNotFound, StateError
from farm.jobs import service as job_service
from farm.jobs.outcomes import exit_code_for, job_json
from farm.jobs.output_places import API_UPLOADS_DIR
from farm.jobs.service import Submitted, submit_job
from farm.state import store
from farm.state.states import JobState
from farm.state.tokens import TokenView

if TYPE_CHECKING:
    from farm.api.app import ApiContext

log = logging.getLogger("farm.api")

JSON_BODY_LIMIT_BYTES = 1024 * 1024
JOB_ID_PATTERN = r"^[0-9a-f]{1,32}$"

router = APIRouter(dependencies=[Depends(require_token)])


def job_detail(job: store.JobView) -> dict[str, Any]:
    """job_json plus per-chunk progress (with the frames and faces each done chunk changed),
    the exit code the CLI would give, and the download link."""
    out = job_json(job)
    out["progress"] = round(job.frames_done / job.frames_total, 4) if job.frames_total else 0.0
    out["exit_code"] = exit_code_for(job.state) if job.terminal else None
    out["output_url"] = f"/jobs/{job.id}/output" if job.state == JobState.DONE.value else None
    out["chunk_progress"] = [
        {"index": c.index, "state": c.state, "attempts": c.attempts, "worker": c.worker,
         "frames": c.frames_planned, "frames_done": c.frames_planned if c.state == "done" else c.frames_done,
         "seconds": round(c.seconds, 3) if c.seconds is not None else None, "error": c.error,
         "frames_changed": c.frames_changed if c.state == "done" else None,
         "faces_changed": c.faces_changed if c.state == "done" else None}
        for c in job.chunks
    ]
    return out


def _check_id(job_id: str) -> str:
    if not re.match(JOB_ID_PATTERN, job_id):
        raise JobNotFound(f"no job {job_id!r}")
    return job_id


def create_body() -> dict[str, Any]:
    """The OpenAPI request body of POST /jobs: every job option of the table
    (farm.options.job_options), as a multipart form with the video (and images) uploaded,
    or as JSON naming files on storage. Made when the app is made (farm.api.app)."""
    from farm.options import openapi_properties

    form = {"video": {"type": "string", "format": "binary", "description": "the video to process"},
            **openapi_properties(files=("source",))}
    form["reference"] = {"type": "string", "format": "binary",
                         "description": "image of the face to replace (faces=reference), uploaded or a path on storage"}
    form["output"]["description"] = "a path on storage, under outputs/ (default: beside the upload)"
    as_json = {"path": {"type": "string", "description": "the video, on the farm's storage"}, **openapi_properties()}
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["video"], "properties": form}},
        "application/json": {"schema": {"type": "object", "required": ["path"], "properties": as_json,
                                         "additionalProperties": False}},
    }}}


def batch_body() -> dict[str, Any]:
    """The OpenAPI request body of POST /batches: a folder or glob on storage, an output
    folder, `force`, and every job option of the table (as POST /jobs' JSON body)."""
    from farm.options import openapi_properties

    props = {"path": {"type": "string", "description": "a folder (walked recursively) or a quoted glob on the "
                                                       "farm's storage"},
             **openapi_properties(),
             "force": {"type": "boolean", "default": False,
                       "description": "render every item again, even one done earlier with the same input and options"}}
    props["output"] = {"type": "string", "description": "a folder on storage, under outputs/: the outputs mirror the "
                                                        "input tree (default: each beside its input)"}
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"type": "object", "required": ["path"], "properties": props,
                                         "additionalProperties": False}}}}}


@router.post("/jobs", status_code=201,
             summary="Submit a job (multipart upload, or JSON naming a video on storage)",
             responses={200: {"description": "an earlier request with this Idempotency-Key made this job"},
                        409: {"description": "the Idempotency-Key was used for a different request"},
                        413: {"description": "the body is over the upload limit; nothing was stored"},
                        422: {"description": "bad input; nothing was stored"}})
async def create_job(request: Request, token: TokenView = Depends(require_token),
                     idempotency_key: Optional[str] = Header(None, alias="Idempotency-Key")) -> JSONResponse:
    ctx = request.app.state.ctx
    folder = ctx.storage.root / API_UPLOADS_DIR / uuid.uuid4().hex
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    done = False   # a job was submitted: its upload folder holds its output
    try:
        if idempotency_key is not None:
            idempotency.check_key(idempotency_key)
        if ctype == "multipart/form-data":
            form = await read_multipart(request, folder / "in", ctx.max_upload_bytes, ctx.settings.max_image_bytes)
            sub: Submission = await run_in_threadpool(from_form, form, reader_for(request), folder)
        elif ctype == "application/json":
            body = await read_limited(request, JSON_BODY_LIMIT_BYTES)
            sub = await run_in_threadpool(from_json, body, reader_for(request))
        else:
            raise UnsupportedBody("send multipart/form-data (an upload) or application/json (a path on storage)")
        reservation = None
        if idempotency_key is not None:
            reservation = await run_in_threadpool(idempotency.reserve, ctx.db, token.id, idempotency_key, sub.sha256)
            if reservation.job_id is not None:
                job = await run_in_threadpool(store.get_job, ctx.db, reservation.job_id)
                return JSONResponse(job_detail(job), status_code=200,
                                    headers={"Location": f"/jobs/{job.id}", "Idempotent-Replayed": "true"})
        try:
            submitted = await run_in_threadpool(_submit, ctx, sub, token.id)
        except BaseException:
            if reservation is not None:
                await run_in_threadpool(idempotency.release, ctx.db, reservation)
            raise
        done = True
        job = submitted.job
        if reservation is not None:
            await run_in_threadpool(idempotency.complete, ctx.db, reservation, job.id)
        log.info("job %s submitted over the API by token %r", job.id, token.name)
        if submitted.warning:
            log.warning("%s", submitted.warning)
        return JSONResponse({**job_detail(job), "warning": submitted.warning}, status_code=201,
                            headers={"Location": f"/jobs/{job.id}"})
    finally:
        # the upload was ingested (hard link or copy) into the job's folder; keep only the output folder
        shutil.rmtree(folder / "in", ignore_errors=True)
        if not done:
            shutil.rmtree(folder, ignore_errors=True)


def _submit(ctx: ApiContext, sub: Submission, token_id: int) -> Submitted:
    """Submit as token `token_id` (farm.jobs.service.submit_job), once its output is allowed
    and claimed (farm.api.outputs); a job recorded but refused by the broker is submitted,
    with its warning."""
    claim = outputs.claim_output(ctx.settings, ctx.db, token_id, sub.request.output, given=sub.output_given,
                                 own_folder=sub.own_folder, overwrite=sub.request.overwrite)
    req = dataclasses.replace(sub.request, api_token_id=token_id, output=claim.path)
    try:
        submitted = submit_job(req, ctx.settings, ctx.db)
    except BaseException:
        outputs.release(ctx.db, claim)
        raise
    outputs.record_job(ctx.db, claim, token_id, submitted.job.id)
    return submitted


@router.get("/limits", summary="The largest upload and image this farm takes (bytes)")
def limits(request: Request) -> dict[str, int]:
    """So that a client checks its files before sending them: a body over the limit is refused
    from its Content-Length, but a client that sends the whole body before reading an answer
    (urllib) sees that refusal only when the body is small enough to be read and dropped."""
    ctx = request.app.state.ctx
    return {"max_upload_bytes": ctx.max_upload_bytes, "max_image_bytes": ctx.settings.max_image_bytes,
            "max_image_side": ctx.settings.max_image_side}


@router.get("/jobs", summary="List jobs, newest first")
def list_jobs(request: Request, limit: int = Query(50, ge=1, le=1000),
              state: Optional[list[str]] = Query(None, description="only jobs in these states"),
              ) -> list[dict[str, Any]]:
    valid = {s.value for s in JobState}
    for s in state or []:
        if s not in valid:
            raise InputError(f"unknown state {s!r}", hint="one of " + ", ".join(sorted(valid)))
    return [job_json(j) for j in store.list_jobs(request.app.state.ctx.db, limit=limit, states=state,
                                                 api_token_id=request.state.token_id)]   # this client's own


@router.get("/jobs/{job_id}", summary="A job: state, per-chunk progress, output location, error")
def get_job(request: Request, job_id: str) -> dict[str, Any]:
    return job_detail(store.get_job(request.app.state.ctx.db, own_job(request, _check_id(job_id))))


@router.post("/jobs/{job_id}/cancel", summary="Cancel a job: workers stop between frames; nothing is published",
             responses={409: {"description": "the job is done: nothing to cancel"}})
def cancel_job(request: Request, job_id: str) -> dict[str, Any]:
    ctx = request.app.state.ctx
    job = job_service.cancel_job(ctx.settings, ctx.db, own_job(request, _check_id(job_id)))
    log.info("job %s cancelled over the API by token %r", job_id, request.state.token_name)
    return job_detail(job)


@router.post("/jobs/{job_id}/retry",
             summary="Run a job again from what is left: a failed or cancelled job's unfinished chunks "
                     "(or its finalize); a queued or running job's chunks the broker lost",
             responses={200: {"description": "the job; `message` says what was queued again, `warning` "
                                             "is set when the broker refused it (the farm queues it later)"},
                        409: {"description": "the job is done: nothing to retry"}})
def retry_job(request: Request, job_id: str) -> dict[str, Any]:
    ctx = request.app.state.ctx
    retried = job_service.retry_job(ctx.settings, ctx.db, own_job(request, _check_id(job_id)))
    log.info("job %s retried over the API by token %r: %s", job_id, request.state.token_name, retried.message)
    if retried.warning:
        log.warning("%s", retried.warning)
    return {**job_detail(retried.job), "message": retried.message, "warning": retried.warning}


@router.get("/jobs/{job_id}/output", summary="Download the output of a done job",
            response_class=FileResponse, responses={409: {"description": "the job is not done"}})
def download_output(request: Request, job_id: str) -> Response:
    ctx = request.app.state.ctx
    job = store.get_job(ctx.db, own_job(request, _check_id(job_id)))
    if job.state != JobState.DONE.value:
        raise StateError(f"job {job_id} is {job.state}; only a done job has an output")
    try:
        path = ctx.storage.confine(Path(job.output_path))
    except InputError:
        raise StateError(f"the output of job {job_id} is outside the farm's storage ({job.output_path}); "
                         "the API serves only outputs on storage") from None
    if not path.is_file():
        raise JobNotFound(f"the output of job {job_id} ({job.output_path}) is no longer there")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, filename=Path(job.output_path).name)


@router.post("/verify", summary="Check a file's signed C2PA manifest (as `farm verify`)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                     "file": {"type": "string", "format": "binary", "description": "the video to check"}}}},
                 "application/json": {"schema": {"type": "object", "required": ["path"], "properties": {
                     "path": {"type": "string", "description": "a file on the farm's storage"}}}}}}},
             responses={200: {"description": "the report: status valid|invalid|no manifest, exit_code 0|1|2 "
                                              "as `farm verify`, signer, job, models, consent, problems"}})
async def verify_upload(request: Request) -> dict[str, Any]:
    from farm.cli.verify_command import farm_root
    from farm.provenance.check import verify_file

    ctx = request.app.state.ctx
    folder = ctx.storage.root / API_UPLOADS_DIR / f"verify-{uuid.uuid4().hex}"
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if ctype == "multipart/form-data":
            form = await read_multipart(request, folder, ctx.max_upload_bytes)
            files = [f for f in form.files if f.field == "file"]
            if len(files) != 1 or form.fields or len(form.files) != 1:
                raise InputError("send exactly one file, as the multipart file field 'file'")
            path, shown = files[0].path, files[0].filename
        elif ctype == "application/json":
            body = json.loads(await read_limited(request, JSON_BODY_LIMIT_BYTES) or b"null")
            if not isinstance(body, dict) or not isinstance(body.get("path"), str):
                raise InputError("the JSON body needs 'path': a file on the farm's storage")
            path = await run_in_threadpool(read_path, reader_for(request), body["path"], "file")
            shown = body["path"]
        else:
            raise UnsupportedBody("send multipart/form-data (field 'file') or application/json ({\"path\": ...})")
        report = await run_in_threadpool(verify_file, path, farm_root(ctx.settings))
        report.path = shown
        return report.as_json()
    except ValueError as exc:
        raise InputError(f"the request body is not valid JSON: {exc}") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


from farm.api.batch_routes import batch_router  # noqa: E402 - POST /batches, GET /batches/{id}: same token rule

router.include_router(batch_router)
