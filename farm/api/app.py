"""The FastAPI application: built from Settings by create_app (no app bound at import time).

Errors are translated at this boundary: the farm's own errors to HTTP status codes
(bad input 422, no such job 404, a state that does not allow it 409, the farm
unavailable 503), an over-limit body to 413; the body is always {"detail", "hint"}.
Before any answer, what the app did not read of the request body is read and dropped
(farm.api.drain), so that clients that send the whole body before reading (urllib) read it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from farm import __version__
from farm.api.batch_routes import batch_router
from farm.api.drain import DrainUnreadBody
from farm.api.faces_route import include_faces
from farm.api.idempotency import KeyConflict
from farm.api.preview_route import include_preview
from farm.api.routes import batch_body, create_body, router
from farm.api.uploads import PayloadTooLarge, UnsupportedBody
from farm.config import Settings
from farm.errors import (
    ConfigError,
    FarmError,
    InputError,
    JobNotFound,
    ModelError,
    ProviderError,
    StateError,
    UnavailableError,
)
from farm.jobs.output_places import API_OUTPUTS_DIR
from farm.state.db import Database
from farm.storage import Storage

log = logging.getLogger("farm.api")

# most specific first
STATUS_FOR_ERROR: tuple[tuple[type[FarmError], int], ...] = (
    (JobNotFound, 404),
    (StateError, 409),
    (KeyConflict, 409),
    (UnsupportedBody, 415),
    (InputError, 422),
    (ModelError, 422),
    (ConfigError, 500),
    (UnavailableError, 503),
    (ProviderError, 503),
    (FarmError, 500),
)


@dataclass
class ApiContext:
    """What every route needs, built once per app."""

    settings: Settings
    db: Database
    storage: Storage
    max_upload_bytes: int


def status_for(exc: FarmError) -> int:
    return next(code for cls, code in STATUS_FOR_ERROR if isinstance(exc, cls))


def create_app(settings: Settings, db: Database | None = None, *, max_upload_bytes: int | None = None) -> FastAPI:
    """The API over `settings`' database and storage; uploads are refused past `max_upload_bytes`
    (default: the input limit, settings.max_input_bytes)."""
    app = FastAPI(title="farm", version=__version__,
                  description="The render farm's HTTP API for CI. Every /jobs route needs "
                              "`Authorization: Bearer <token>` (`farm tokens create NAME`).")
    app.state.ctx = ApiContext(settings=settings, db=db or Database(settings.database),
                               storage=Storage(settings.storage_dir),
                               max_upload_bytes=max_upload_bytes or settings.max_input_bytes)
    bodies = {"/jobs": create_body, "/batches": batch_body}   # the option table as it is now
    for route in [*router.routes, *batch_router.routes]:   # batch_router is included lazily
        path = getattr(route, "path", None)
        if path in bodies and "POST" in getattr(route, "methods", ()):
            route.openapi_extra = bodies[path]()
    app.include_router(router)
    include_preview(app)   # GET /preview, its query parameters from the option table
    include_faces(app)     # GET /faces, likewise
    app.add_middleware(DrainUnreadBody)
    (app.state.ctx.storage.root / API_OUTPUTS_DIR).mkdir(parents=True, exist_ok=True)   # outputs clients name

    @app.get("/health", summary="Liveness (no token needed)", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.exception_handler(FarmError)
    async def _farm_error(request: Request, exc: FarmError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.warning("%s: %s", type(exc).__name__, exc.message)
        return JSONResponse({"detail": exc.message, "hint": exc.hint}, status_code=status)

    @app.exception_handler(PayloadTooLarge)
    async def _too_large(request: Request, exc: PayloadTooLarge) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "hint": "send a smaller file, or raise the server's limit"},
                            status_code=413)

    return app
