"""`farm preview` and GET /preview: one frame through a job's stages, without a job.

The path of a job, cut to one frame: the options are checked by the option table's one
converter and made into a SubmitRequest (farm.jobs.spec), the video probed and the
consent and images checked as submit checks them (farm.jobs.submit), the identity
computed and the pack chosen by prepare_faces (farm.jobs.face_prep), the frame cut out
as a one-frame chunk (farm.media.plan.plan_frame, split_chunks, iter_chunk_frames) and
run through build_chain with the pack's sessions loaded as a worker loads them. Nothing
is recorded: no job, no broker, no worker. farm.jobs.preview_sheet makes the picture.

Options: every face option, `source`, `models` and `consent` (FARM_REQUIRE_CONSENT
applies: the picture is synthetic media too). The job's own options for the encoder,
queue, chunks and output (codec, crf, priority, output, passthrough, ...) mean nothing
for one picture: they are not flags of `farm preview` nor parameters of GET /preview,
and a spec file's values for them are ignored (`ignored` lists them).

What you preview is what you render: a job's frame goes through the same stages with
the same options, models and identity. One difference: within a chunk the demo pack's
Haar detector follows faces between full scans (farm.faces.haar); a preview always
scans its frame, as a job does a chunk's first frame and every 24th after it.
"""

from __future__ import annotations

import bisect
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from farm.config import Settings
from farm.errors import InputError, MediaError
from farm.jobs.spec import CLI, option_name
from farm.options import PREVIEW_JOB_OPTIONS, SUBMIT_OPTIONS, Option, job_options
from farm.storage import check_writable_folder


Box = tuple[int, int, int, int]


def preview_options() -> dict[str, Option]:
    """name -> Option of what a preview takes: the job options above and every face
    option, in the table's order (read from the table at each call)."""
    return {name: option for name, option in job_options().items()
            if name in PREVIEW_JOB_OPTIONS or name not in SUBMIT_OPTIONS}


def ignored_options(given: Mapping[str, Any]) -> list[str]:
    """The options of `given` (a spec file's) that a preview ignores: job-only ones."""
    kept = preview_options()
    return [name for name in given if name not in kept]


@dataclass
class Preview:
    """One previewed frame. original/result: BGR uint8, height x width x 3 (frame pixels);
    boxes: per face, the frame region (x0, y0, x1, y1; px, x1/y1 exclusive) that its
    stages may change; time_s: seconds from the first frame."""

    video: Path
    index: int
    frame_count: int
    time_s: float
    original: np.ndarray
    result: np.ndarray
    boxes: list[Box]
    scores: list[float]
    options: dict[str, Any]
    label: dict[str, Any]
    sources: list[Path]
    consent: str | None = None
    rotation: int = 0
    ignored: list[str] = field(default_factory=list)

    @property
    def width(self) -> int:
        return int(self.original.shape[1])

    @property
    def height(self) -> int:
        return int(self.original.shape[0])

    @property
    def warning(self) -> str | None:
        """Said when the chain found no face to change: the result is the original."""
        if self.boxes:
            return None
        return (f"no face found in frame {self.index} of {self.video.name}; the result is the original frame "
                "(try another --frame or --at, or a lower --min-score)")


def pick_frame(info: Any, video: Path, frame: int | None, at: float | None, where: str = CLI) -> int:
    """The frame index (0-based, presentation order) asked for: `frame`, or the frame shown
    `at` seconds after the first frame, or 0. InputError naming the video when both are
    given or the frame is not in it."""
    names = ("--frame", "--at") if where == CLI else ("frame", "at")
    count = len(info.frame_pts)
    if frame is not None and at is not None:
        raise InputError(f"give {names[0]} or {names[1]}, not both", hint=f"{names[0]} N picks a frame by its "
                         f"index (0..{count - 1}), {names[1]} SECONDS by its time")
    if at is not None:
        times = [(pts - info.video.first_pts) * info.video.time_base for pts in info.frame_pts]
        end = info.video.duration_s
        if not (at >= 0 and at < end):
            raise InputError(f"{names[1]} {at:g} is not within {video} (its frames cover 0 to {end:.3f} s)",
                             hint=f"give {names[1]} from 0 to below {end:.3f}")
        return max(0, bisect.bisect_right(times, Fraction(str(at))) - 1)
    index = 0 if frame is None else frame
    if not 0 <= index < count:
        raise InputError(f"{names[0]} {index} is not a frame of {video} ({count} frames)",
                         hint=f"give {names[0]} from 0 to {count - 1}" if count else "the video has no frames")
    return index


def frame_time(info: Any, index: int) -> float:
    """Seconds from the first frame to frame `index`."""
    return float((info.frame_pts[index] - info.video.first_pts) * info.video.time_base)


def decode_frame(info: Any, index: int) -> Any:
    """Frame `index` of the probed video as a writable planar av.VideoFrame, decoded as a
    chunk decodes its frames: a one-frame segment split by stream copy (pre-roll from the
    keyframe before it), then farm.media.decode.iter_chunk_frames."""
    from farm.media.decode import iter_chunk_frames
    from farm.media.plan import plan_frame
    from farm.media.split import split_chunks

    plan = plan_frame(info, index)
    with tempfile.TemporaryDirectory(prefix="farm-preview-") as folder:
        segment = split_chunks(info.path, info, [plan], folder)[0]
        frames = iter_chunk_frames(segment, plan)
        try:
            picture = next(frames, None)
        finally:
            frames.close()
    if picture is None:
        raise MediaError(f"{info.path}: frame {index} could not be decoded",
                         hint="re-export the video, or preview another frame")
    return picture


def face_boxes(frame: Any, stages: list[Any]) -> list[Box]:
    """Per face the chain kept (frame.faces), the frame region its stages may change: its
    detection box and the footprint of each face stage's aligned crop (the region its
    paste-back touches, farm.faces.paste.region_box), as one box; nothing outside changes."""
    from farm.faces.align import estimate_norm
    from farm.faces.paste import region_box
    from farm.pipeline.regions import clip_box

    boxes: list[Box] = []
    for face in frame.faces:
        parts = [clip_box(tuple(float(v) for v in face.bbox), frame.width, frame.height)]
        for stage in stages:
            if getattr(stage, "alters", False) and hasattr(stage, "face_size") and hasattr(stage, "template"):
                size = stage.face_size(face)
                parts.append(region_box(frame, estimate_norm(face.kps, stage.template, size), size))
        found = [p for p in parts if p is not None]
        if found:
            boxes.append((min(p[0] for p in found), min(p[1] for p in found),
                          max(p[2] for p in found), max(p[3] for p in found)))
    return boxes


def render_preview(video: Path, options: Mapping[str, Any], settings: Settings, *, frame: int | None = None,
                   at: float | None = None, origins: Mapping[str, str] | None = None, where: str = CLI,
                   spec: Path | None = None, ignored: list[str] | None = None) -> Preview:
    """Frame `frame` (or the one at `at` seconds) of `video` before and after the stages a
    job with these checked options (farm.jobs.spec.check_options) runs. Refuses
    (InputError, exit 2) what submit refuses, and a frame the video does not have."""
    from farm.faces.chain import build_chain
    from farm.jobs.face_prep import prepare_faces
    from farm.jobs.spec import submit_request
    from farm.jobs.submit import check_consent, check_images, probe_limits
    from farm.media.probe import probe
    from farm.models.packs import load_pack
    from farm.models.precision import Plan
    from farm.pipeline import regions
    from farm.pipeline.frame import Frame

    video = Path(video).expanduser()
    kept = preview_options()
    options = {key: value for key, value in options.items() if key in kept}
    if not options.get("source") and not options.get("map"):
        hint = f"give {option_name('source', where)} IMAGE (an image of the face)"
        raise InputError(f"no source image given: a preview of {video} needs the face to swap in",
                         hint=hint + (f", or set source = [...] in spec file {spec}" if spec else ""))
    req = submit_request(video, options, origins, where=where, spec=spec)
    check_consent(req.consent, settings, req.option("consent"))
    info = probe(video, limits=probe_limits(settings))
    index = pick_frame(info, video, frame, at, where)
    check_images(req, settings)
    faces = prepare_faces(req, settings)   # the identity and the label, as submit makes them
    pack = load_pack(faces.label["pack_ref"], models_dir=settings.models_path, providers=settings.providers,
                     cache_dir=settings.storage_dir / "trt-cache",
                     precision=Plan.from_dict(faces.label.get("precision_plan")))   # as a worker loads it
    chain = build_chain(faces.options, pack, faces.source_embedding, faces.reference_embedding, faces.face_map)
    try:
        picture = Frame.from_av(decode_frame(info, index), 0)
    except ValueError as exc:   # a pixel format the pipeline does not take
        raise InputError(f"{video}: frame {index} cannot be previewed ({exc})") from None
    whole = (0, 0, picture.width, picture.height)
    original = regions.read_bgr(picture, whole)
    with chain:   # as the chunk runner does: the batch path when a stage batches
        picture = (chain.process_batch([picture]) + chain.flush())[0] if chain.batches else chain.process(picture)
    return Preview(video=video, index=index, frame_count=len(info.frame_pts), time_s=frame_time(info, index),
                   original=original, result=regions.read_bgr(picture, whole),
                   boxes=face_boxes(picture, chain.stages), scores=[float(f.score) for f in picture.faces],
                   options=dict(faces.options), label=dict(faces.label), sources=list(req.sources),
                   consent=req.consent, rotation=info.video.rotation, ignored=list(ignored or []))


def default_out(video: Path) -> Path:
    """`<video stem>.preview.png` in the current folder."""
    return Path.cwd() / f"{Path(video).stem}.preview.png"


def check_out(out: Path | None, video: Path, overwrite: bool, names: tuple[str, str] = ("--out", "--overwrite")
              ) -> Path:
    """The PNG's path, absolute, or InputError: it ends in .png, is not a link, and does not
    exist unless `overwrite` (then it is a regular file); its folder exists and is writable."""
    path = Path(os.path.abspath((out or default_out(video)).expanduser()))
    if path.suffix.lower() != ".png":
        raise InputError(f"{names[0]} {path} must end in .png (the preview is a PNG picture)",
                         hint=f"give {names[0]} NAME.png")
    if path.is_symlink():
        raise InputError(f"{path} is a symbolic link; the preview is not written through links",
                         hint=f"give the real path as {names[0]}, or remove the link")
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists", hint=f"pass {names[1]} or choose another {names[0]}")
    if path.exists() and not path.is_file():
        raise InputError(f"{path} exists and is not a regular file; it is never replaced",
                         hint=f"choose another {names[0]}")
    check_writable_folder(path, names[0])
    return path


def write_png(path: Path, data: bytes, overwrite: bool) -> None:
    """Write `data` at `path` whole: to a temporary name beside it, then renamed (replacing
    an existing file only with `overwrite`; otherwise one that appeared meanwhile stays)."""
    from farm.storage import temp_name

    tmp = temp_name(path)
    try:
        tmp.write_bytes(data)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)   # fails if the name was taken since check_out
            except FileExistsError:
                raise InputError(f"{path} already exists", hint="pass --overwrite or choose another --out") from None
    finally:
        tmp.unlink(missing_ok=True)
