"""Submit a job: validate, ingest, split, record (record), then enqueue (enqueue_job).

Every check that can refuse the job runs before anything is stored; if a later
step fails, what was written for the job is removed again, so a refused or broken
submit leaves nothing behind (exit code 2 for bad input).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from farm.broker.celery_app import create_app, enqueue_chunk
from farm.config import Settings
from farm.errors import FarmError, InputError, UnavailableError
from farm.jobs import reservation
from farm.jobs.output_places import default_output, output_suffix
from farm.jobs.spec import CLI, SPEC, option_name
from farm.media.chunk_codec import choose_encoder
from farm.media.intermediate import chunk_file_name
from farm.media.join import muxer_for_encoder, streams_not_kept
from farm.media.media_info import MediaInfo, ProbeLimits
from farm.media.plan import default_chunk_frames, default_chunk_seconds, plan_chunks
from farm.media.probe import probe
from farm.media.source_range import reads_in_place, source_ranges
from farm.media.split import split_chunks
from farm.state import chunks, records, store
from farm.state.db import Database
from farm.step_clock import StepClock
from farm.storage import Storage, ingest

log = logging.getLogger("farm.jobs.submit")


@dataclass
class SubmitRequest:
    """Everything `farm submit` (or the API) asks for."""

    video: Path
    sources: list[Path] = field(default_factory=list)
    output: Path | None = None
    overwrite: bool = False
    keep_chunks: bool = False
    chunk_seconds: float | None = None
    codec: str | None = None
    preset: str | None = None
    crf: int | None = None
    priority: int = 5
    models: str | None = None
    precision: str = "auto"           # farm.models.precision: made a Plan at submit, stored in job.models
    face_options: dict[str, Any] = field(default_factory=dict)
    api_token_id: int | None = None   # the HTTP API token submitting it; None: a local user (CLI)
    consent: str | None = None        # a reference to the subjects' consent (release form, ticket, hash)
    origins: dict[str, str] = field(default_factory=dict)   # option -> where it was given (farm.jobs.spec)
    where: str = CLI                  # where the request is made: farm.jobs.spec.CLI or REQUEST (the API)
    batch_id: str | None = None       # the batch this job is an item of (farm.jobs.batch_service)

    def __post_init__(self) -> None:
        # a typed request: the face options converted and checked once, defaults filled in
        # (a pass-through job, with no source, does no face work and keeps none)
        from farm.faces.options import validate_options

        self.face_options = validate_options(dict(self.face_options)) if self.sources else {}

    def option(self, key: str) -> str:
        """Option `key` named as the user gave it: `--output` on the command line, `output`
        in a spec file or an API request (farm.jobs.spec.option_name)."""
        return option_name(key, self.origins.get(key, self.where))


def check_output(req: SubmitRequest, settings: Settings) -> Path:
    """The output path, absolute, or InputError: the output keeps the input's container, is
    not a symlink (dangling or not: the rename at publish would replace the link, not write
    where it points), not in the farm's own folders (farm.jobs.output_places), and does not
    exist unless `overwrite` (then it must be a regular file other than the input)."""
    from farm.jobs.output_places import check_output_place

    video = req.video.absolute()
    out = Path(os.path.abspath((req.output or default_output(video)).expanduser()))
    suffix = output_suffix(video)
    if out.suffix.lower() != suffix.lower():
        why = " (WebM holds VP8/VP9/AV1 only; farm encodes H.264 or HEVC, in Matroska)" if suffix != video.suffix else ""
        raise InputError(f"output {out} must keep the input's container ({suffix}){why}",
                         hint=f"use an output name ending in {suffix}")
    if out.is_symlink():
        dangling = "" if out.exists() else ", which points nowhere"
        raise InputError(f"output {out} is a symbolic link (to {os.readlink(out)}{dangling}); "
                         "the farm does not write through links",
                         hint=f"give the real path as {req.option('output')}, or remove the link")
    check_output_place(out, settings, api=req.api_token_id is not None)
    if out.exists() and not req.overwrite:
        raise InputError(f"output {out} already exists",
                         hint=f"pass {req.option('overwrite')} or choose another {req.option('output')}")
    if out.exists() and not out.is_file():
        raise InputError(f"output {out} exists and is not a regular file; it is never replaced",
                         hint=f"choose another {req.option('output')}")
    if out.exists() and out.samefile(video):
        raise InputError(f"output {out} is the input file itself; the input is never modified",
                         hint=f"choose another {req.option('output')}")
    if not out.parent.is_dir():
        raise InputError(f"the output folder {out.parent} does not exist",
                         hint=f"create it first (mkdir -p {out.parent}), or choose another {req.option('output')}")
    if not os.access(out.parent, os.W_OK):
        raise InputError(f"the output folder {out.parent} is not writable",
                         hint=f"choose a folder you can write to as {req.option('output')}, "
                              "or fix its permissions")
    return out


def probe_limits(settings: Settings) -> ProbeLimits:
    return ProbeLimits(max_width=settings.max_width, max_height=settings.max_height,
                       max_frames=settings.max_frames, max_bytes=settings.max_input_bytes)


def validate(req: SubmitRequest, settings: Settings) -> tuple[MediaInfo, Path, Any, int]:
    """All checks that may refuse the job; nothing is written. Returns (info, output, encoder, chunk_frames)."""
    video = req.video.expanduser()
    # the options' types and ranges were checked once, against the option table, when the
    # request was made (farm.jobs.spec.check_options); settings.chunk_seconds by load_settings
    chunk_seconds = req.chunk_seconds if req.chunk_seconds is not None else settings.chunk_seconds
    check_consent(req.consent, settings, req.option("consent"))
    info = probe(video, limits=probe_limits(settings))
    output = check_output(dataclasses.replace(req, video=video), settings)
    check_images(req, settings)
    try:
        encoder = choose_encoder(info.video, codec=req.codec, preset=req.preset, crf=req.crf)
    except InputError as exc:   # its pixel format, an encoder's limits: said of this input, by name
        raise InputError(f"{video.absolute()}: {exc.message}", hint=exc.hint) from None
    if chunk_seconds is None:
        chunk_seconds = chunk_seconds_for(info)
    chunk_frames = default_chunk_frames(info.video.fps, chunk_seconds)
    return info, output, encoder, chunk_frames


CONSENT_MAX_CHARS = 1000
"""A consent reference names a document (a form, a ticket, a hash); it is not the document."""


def check_consent(consent: str | None, settings: Settings, name: str = "--consent") -> None:
    """InputError unless the consent reference is short, printable text, and given when
    require_consent (FARM_REQUIRE_CONSENT) is set; `name` is the option as the user gives it."""
    if consent is None or not consent.strip():
        if settings.require_consent:
            raise InputError("this farm requires a consent reference for every job (require_consent is set)",
                             hint=f"pass {name} TEXT: the release form, ticket or document hash "
                                  "recording the consent of the people whose faces are used")
        return
    if len(consent) > CONSENT_MAX_CHARS or not consent.isprintable():
        raise InputError(f"{name} must be at most {CONSENT_MAX_CHARS} printable characters on one line",
                         hint="give a reference to the consent record (a ticket id, a URL, a sha256), not the text")


def check_images(req: SubmitRequest, settings: Settings) -> None:
    """Each source and reference image read and measured from its header now, before the model
    pack loads, so a missing, unreadable or non-image file is refused at once (exit 2), named,
    with a hint that points at the option that gave it."""
    from farm.user_files import read_image_file

    reference = req.face_options.get("reference")
    images = [(path, "source image", "source") for path in req.sources]
    images += [(reference, "reference image", "reference")] if reference else []
    for path, what, key in images:
        given_as = req.option(key) + (" in the spec file" if req.origins.get(key) == SPEC else "")
        read_image_file(Path(path).expanduser(), what, settings.max_image_bytes, settings.max_image_side, given_as)


def chunk_seconds_for(info: MediaInfo) -> float:
    """The default chunk length in seconds of video when none was asked for (--chunk-seconds,
    FARM_CHUNK_SECONDS or the config file): ~30 s of GPU work per chunk, from the
    resolution and frame rate (farm.media.plan.default_chunk_seconds)."""
    seconds = default_chunk_seconds(info.video.width, info.video.height, info.video.fps)
    log.info("chunk length %.1f s (default for %dx%d at %.3g fps)", seconds, info.video.width,
             info.video.height, float(info.video.fps))
    return seconds


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def submit(req: SubmitRequest, settings: Settings, db: Database,
           on_step: Callable[[str], None] | None = None,
           before_store: Callable[[], None] | None = None) -> str:
    """Record the job and hand it to the broker; returns the new job id. A broker that
    refuses the hand-over raises FarmError (the job stays recorded); the CLI and the API
    call farm.jobs.service.submit_job instead, which reports that as a warning."""
    job_id = record(req, settings, db, on_step, before_store)
    (on_step or (lambda _msg: None))("enqueueing")
    enqueue_job(settings, db, job_id)
    return job_id


def record(req: SubmitRequest, settings: Settings, db: Database,
           on_step: Callable[[str], None] | None = None,
           before_store: Callable[[], None] | None = None) -> str:
    """Validate, ingest, split and record the job (queued, nothing handed to the broker yet);
    returns its id, so that the caller knows the job it made whatever the broker does next.

    before_store: called once every check has passed, before anything is written (the
    CLI starts the embedded local farm there, so a refused job starts nothing).
    """
    step = on_step or (lambda _msg: None)
    video = req.video.expanduser().absolute()
    step(f"probing {video}")
    clock = StepClock()
    info, output, encoder, chunk_frames = validate(req, settings)
    reservation.check_free(db, output, req.option("output"))   # a live job's output: refused now, not at its end
    clock.lap("probe")
    if not settings.embedded_broker:
        from farm.broker.transport import require as require_broker

        require_broker(settings)      # refuse now, with nothing stored, rather than half-submit
    from farm.jobs.face_prep import prepare_faces  # face options, model pack, identity

    faces = prepare_faces(req, settings)
    clock.lap("broker+faces")
    if before_store is not None:
        before_store()
        clock.lap("start farm")
    storage = Storage(settings.storage_dir)
    job_id = new_job_id()
    not_kept = streams_not_kept(info, muxer_for_encoder(info, encoder.codec))

    def claim_output(session: Any) -> None:   # in the transaction that records the job: the race's guard
        reservation.claim(session, output, job_id, req.option("output"))

    try:
        step("ingesting onto storage")
        source = storage.source(job_id, video.suffix.lower())
        ingested = ingest(video, source, expect_size=info.size_bytes)
        clock.lap("ingest")
        faces.save(storage.identity(job_id))
        from farm.faces.tracking import chunk_context_frames

        context = chunk_context_frames(faces.options, float(info.video.fps)) if faces.enabled else (0, 0)
        plans = plan_chunks(info, chunk_frames, *context)   # frames stages see before/after each chunk
        step(f"splitting into {len(plans)} chunks")
        if reads_in_place(info):   # each chunk reads its segment from the source by range: no copies
            plans = source_ranges(info, plans)
            in_paths = [source] * len(plans)
        else:
            in_paths = split_chunks(source, info, plans, storage.chunk_in(job_id, 0, ".x").parent)
        clock.lap("plan+split")
        out_ext = Path(chunk_file_name(0, info.video.codec)).suffix
        specs = [
            store.ChunkSpec(index=p.index, first_frame=p.first_frame, frames_planned=p.frame_count,
                            plan=records.dump(p), input_path=str(path),
                            output_path=str(storage.chunk_out(job_id, p.index, out_ext)))
            for p, path in zip(plans, in_paths)
        ]
        store.create_job(
            db, job_id=job_id, chunks=specs, input_path=str(video), source_path=str(source),
            output_path=str(output), overwrite=req.overwrite, keep_chunks=req.keep_chunks,
            priority=req.priority, options=faces.options, encoder=records.dump(encoder), models=faces.label,
            frames_total=info.video.frame_count, fps=float(info.video.fps),
            consent=req.consent.strip() if req.consent and req.consent.strip() else None, batch_id=req.batch_id,
            api_token_id=req.api_token_id, also=claim_output,
            notes=[("ingested", ingested.describe(video, source)), ("video_stream", info.video_choice),
                   ("submit_steps", clock.describe()),
                   *(("stream_not_kept", note) for note in not_kept)],
        )
    except BaseException:
        storage.remove_job(job_id)
        raise
    for note in not_kept:
        log.warning("job %s: %s", job_id, note)
    log.info("job %s: %s ingested by %s, %d chunks; video %s", job_id, video, ingested.how, len(specs),
             info.video_choice)
    return job_id


def enqueue_job(settings: Settings, db: Database, job_id: str) -> int:
    """Hand the job's next chunks to the broker (gpu queue), longest first, up to the job window.

    If the broker is down the job stays queued in the database; the reaper (run by every
    `farm worker` and by `farm up`) re-enqueues what the broker does not have.
    """
    todo = chunks.take_chunks_to_enqueue(db, job_id, settings.job_window)
    app = create_app(settings)
    try:
        for index, priority in todo:
            enqueue_chunk(app, job_id, index, priority)
    except Exception as exc:  # noqa: BLE001 - kombu raises many kinds
        raise broker_refused(settings, job_id, exc) from None
    finally:
        app.close()
    return len(todo)


def broker_refused(settings: Settings, job_id: str, exc: BaseException) -> UnavailableError:
    """The error (exit 4) for a job the database holds as queued that the broker would not take."""
    detail = exc.message if isinstance(exc, FarmError) else f"{type(exc).__name__}: {exc}"
    return UnavailableError(f"job {job_id} is recorded (queued in the database) but the broker "
                            f"{settings.broker_shown} refused it: {detail}",
                            hint="start the farm (`farm up`, or `farm worker` on a cluster); it hands the "
                                 "broker what the database says is left")
