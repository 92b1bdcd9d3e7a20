"""GET /preview: `farm preview` for CI and web front ends (farm.jobs.preview).

The video (`path`) and the images (`source`, `reference`) are files on the farm's storage,
named as POST /jobs's JSON names them (absolute, or relative to the storage root; confined
to it, and ones this client may read: farm.api.reading). Every other query parameter is one
of the preview's options (every face option, `models`, `consent`:
farm.jobs.preview.preview_options), given as text and checked by the option table's one
converter, or `frame` / `at`. A job-only option (codec, priority,
output, ...) is refused as an unknown parameter. The answer is the PNG `farm preview`
writes (image/png, the same bytes for the same inputs) with X-Farm-Frame, X-Farm-Time (s),
X-Farm-Faces and, when no face was found, X-Farm-Warning; an error is the API's usual
JSON {"detail", "hint"} (422 for bad input). The query parameters of the OpenAPI schema
are made from the option table when the app is made (include_preview).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from farm.api.auth import require_token
from farm.api.reading import reader_for
from farm.api.submission import read_options, read_path
from farm.errors import InputError
from farm.jobs.spec import REQUEST, check_options
from farm.options import Option, convert, openapi_properties

router = APIRouter(dependencies=[Depends(require_token)])

OWN_PARAMETERS: dict[str, Option] = {
    "frame": Option("int", None, "the frame to preview, by index (0 is the first; default 0)", minimum=0),
    "at": Option("float", None, "the frame on screen at this time, from the first frame", minimum=0.0, unit="s"),
}
"""The query parameters that are not job options (besides `path`, the video)."""


def preview_parameters() -> list[dict[str, Any]]:
    """The OpenAPI query parameters of GET /preview: path, frame, at and every option of
    the preview's table (farm.options.openapi_properties), as the table is now."""
    from farm.jobs.preview import preview_options

    params: list[dict[str, Any]] = [{"name": "path", "in": "query", "required": True, "schema": {"type": "string"},
                                     "description": "the video, on the farm's storage"}]
    for name, prop in {**openapi_properties(OWN_PARAMETERS), **openapi_properties(preview_options())}.items():
        description = prop.pop("description")
        if name in ("source", "reference"):
            description += " (a path on the farm's storage)"
        params.append({"name": name, "in": "query", "required": name == "source", "schema": prop,
                       "description": description, **({"explode": True} if prop.get("type") == "array" else {})})
    return params


def _query(request: Request) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(the video's path, the options given as text, frame/at) of the query; InputError for
    an unknown or repeated parameter."""
    from farm.jobs.preview import preview_options

    table = preview_options()
    path: str | None = None
    raw: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for name, value in request.query_params.multi_items():
        key = name.replace("-", "_")
        if key == "path":
            if path is not None:
                raise InputError("query parameter 'path' is given twice")
            path = value
        elif key in OWN_PARAMETERS:
            if key in own:
                raise InputError(f"query parameter {name!r} is given twice")
            own[key] = convert(key, OWN_PARAMETERS[key], value, "the query", text=True)
        elif key not in table:
            raise InputError(f"unknown query parameter {name!r}",
                             hint="GET /preview takes path, frame or at, and " + ", ".join(table)
                                  + " (a job's encoder, queue and output options mean nothing for one frame)")
        elif table[key].kind in ("paths", "pairs"):
            raw.setdefault(key, []).append(value)
        elif key in raw:
            raise InputError(f"query parameter {name!r} is given twice")
        else:
            raw[key] = value
    if path is None:
        raise InputError("the query needs 'path': the video, on the farm's storage")
    return path, check_options(raw, "the query", text=True), own


def _render(ctx: Any, video: Path, options: dict[str, Any], own: dict[str, Any]) -> tuple[Any, bytes]:
    from farm.jobs.preview import render_preview
    from farm.jobs.preview_sheet import render_sheet

    result = render_preview(video, options, ctx.settings, frame=own.get("frame"), at=own.get("at"), where=REQUEST)
    return result, render_sheet(result)[1]


@router.get("/preview", summary="One frame rendered as a job would, without a job (as `farm preview`)",
            response_class=Response,
            responses={200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "the PNG: original | result, faces boxed and numbered, the options "
                                            "and models under them; X-Farm-Frame, X-Farm-Time (s), X-Farm-Faces"},
                       422: {"description": "bad input (a file not on storage, a frame the video lacks, an option "
                                            "out of range); nothing was written"}})
async def preview(request: Request) -> Response:
    ctx = request.app.state.ctx
    path, options, own = _query(request)
    reader = reader_for(request)
    video = await run_in_threadpool(read_path, reader, path, "video")   # the rule looks ownership up in the database
    await run_in_threadpool(read_options, reader, options)   # the images, --map's too, and a models folder
    result, data = await run_in_threadpool(_render, ctx, video, options, own)
    headers = {"X-Farm-Frame": str(result.index), "X-Farm-Time": f"{result.time_s:.6f}",
               "X-Farm-Faces": str(len(result.boxes))}
    if result.warning:
        headers["X-Farm-Warning"] = result.warning.encode("ascii", "replace").decode("ascii")
    return Response(data, media_type="image/png", headers=headers)


def include_preview(app: FastAPI) -> None:
    """Add GET /preview to `app`, its query parameters made from the option table as it is now."""
    for route in router.routes:
        if getattr(route, "path", None) == "/preview":
            route.openapi_extra = {"parameters": preview_parameters()}
    app.include_router(router)
