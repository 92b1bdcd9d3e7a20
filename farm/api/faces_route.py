"""GET /faces: `farm faces` for CI and web front ends (farm.jobs.faces_survey).

The video (`path`) is a file on the farm's storage, named as POST /jobs's JSON names it
(absolute, or relative to the storage root; confined to it, and one this client may read:
farm.api.reading). The other query parameters are the survey's options (every, threshold,
models and the detect stage's options: farm.jobs.faces_survey.survey_options), given as
text and checked by the option table's one converter, and `format`. The answer is the
table `farm faces --json` prints, with each person's mean embedding (raw recogniser space,
as in faces.json) and, base64, the contact sheet (`sheet_png`) and each reference crop
(`crop_png`); with format=png, the contact sheet alone (image/png, X-Farm-People). Nothing
is written on storage. An error is the API's usual JSON {"detail", "hint"} (422 for bad input).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from farm.api.auth import require_token
from farm.api.reading import reader_for
from farm.api.submission import read_options, read_path
from farm.errors import InputError
from farm.options import openapi_properties

router = APIRouter(dependencies=[Depends(require_token)])

FORMATS = ("json", "png")


def faces_parameters() -> list[dict[str, Any]]:
    """The OpenAPI query parameters of GET /faces: path, format and the survey's options."""
    from farm.jobs.faces_survey import survey_options

    params: list[dict[str, Any]] = [
        {"name": "path", "in": "query", "required": True, "schema": {"type": "string"},
         "description": "the video, on the farm's storage"},
        {"name": "format", "in": "query", "required": False, "schema": {"type": "string", "enum": list(FORMATS)},
         "description": "json (default: the table, embeddings and images) or png (the contact sheet alone)"}]
    for name, prop in openapi_properties(survey_options()).items():
        params.append({"name": name, "in": "query", "required": False, "schema": prop,
                       "description": prop.pop("description")})
    return params


def _query(request: Request) -> tuple[str, str, dict[str, Any]]:
    """(the video's path, the format, the options checked); InputError for an unknown or
    repeated parameter."""
    from farm.jobs.faces_survey import check_survey_options, survey_options

    table = survey_options()
    own: dict[str, str] = {}
    raw: dict[str, Any] = {}
    for name, value in request.query_params.multi_items():
        key = name.replace("-", "_")
        if key in ("path", "format"):
            if key in own:
                raise InputError(f"query parameter {key!r} is given twice")
            own[key] = value
        elif key not in table:
            raise InputError(f"unknown query parameter {name!r}",
                             hint="GET /faces takes path, format and " + ", ".join(table))
        elif key in raw:
            raise InputError(f"query parameter {name!r} is given twice")
        else:
            raw[key] = value
    if "path" not in own:
        raise InputError("the query needs 'path': the video, on the farm's storage")
    form = own.get("format", "json")
    if form not in FORMATS:
        raise InputError(f"format {form!r} is not one of " + ", ".join(FORMATS))
    return own["path"], form, check_survey_options(raw, "the query", cli=False, text=True)


def _survey(ctx: Any, video: Path, options: dict[str, Any]) -> tuple[dict[str, Any], bytes, int]:
    from farm.jobs.faces_output import faces_file, table_json
    from farm.jobs.faces_sheet import sheet_png
    from farm.jobs.faces_survey import run_survey

    survey = run_survey(video, options, ctx.settings)
    sheet, data = sheet_png(survey)
    body = table_json(survey, sheet)
    body["recognizer"] = faces_file(survey)["recognizer"]
    body["sheet_png"] = base64.b64encode(data).decode("ascii")
    for entry, person in zip(body["people"], survey.people):
        entry["embedding"] = [round(float(v), 7) for v in person.embedding]
        entry["crop_png"] = base64.b64encode(person.best().crop).decode("ascii")
    return body, data, len(survey.people)


@router.get("/faces", summary="Who is in a video: faces of sampled frames grouped into people (as `farm faces`)",
            responses={200: {"content": {"application/json": {}, "image/png": {}},
                             "description": "the table (people, time on screen, frame ranges, mean embeddings) "
                                            "with the contact sheet and crops as base64 PNG; format=png: the sheet"},
                       422: {"description": "bad input (a file not on storage, an option out of range)"}})
async def faces(request: Request) -> Response:
    ctx = request.app.state.ctx
    path, form, options = _query(request)
    reader = reader_for(request)
    video = await run_in_threadpool(read_path, reader, path, "video")   # the rule looks ownership up in the database
    await run_in_threadpool(read_options, reader, options)   # a models folder
    body, data, people = await run_in_threadpool(_survey, ctx, video, options)
    if form == "png":
        return Response(data, media_type="image/png", headers={"X-Farm-People": str(people)})
    return JSONResponse(body)


def include_faces(app: FastAPI) -> None:
    """Add GET /faces to `app`, its query parameters made from the option table as it is now."""
    for route in router.routes:
        if getattr(route, "path", None) == "/faces":
            route.openapi_extra = {"parameters": faces_parameters()}
    app.include_router(router)
