"""Per-job face work prepared once at submit: options, model pack, identity (a worker turns
it into a stage chain with farm.workers.job_chain).

The source identity (the average embedding of every --source image) and the reference
identity are computed once per job at submit and stored beside the job, so every
chunk swaps in exactly the same person; with --map, each mapping's reference and source
(farm.faces.mapping.FaceMap) likewise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from farm.errors import InputError


@dataclass
class FacePrep:
    """What submit stores about the face work of a job."""

    options: dict[str, Any]
    label: dict[str, Any] = field(default_factory=dict)
    source_embedding: np.ndarray | None = None      # the swapper's latent of the source identity
    reference_embedding: np.ndarray | None = None
    face_map: Any = None        # farm.faces.mapping.FaceMap of a --map job

    @property
    def enabled(self) -> bool:
        return self.options.get("faces", "off") != "off"

    def save(self, path: Path) -> None:
        if not self.enabled:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"source": self.source_embedding}
        if self.reference_embedding is not None:
            arrays["reference"] = self.reference_embedding
        if self.face_map is not None:
            arrays.update(self.face_map.arrays())
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)


def prepare_faces(req: Any, settings: Any) -> FacePrep:
    """Validate face options, load the model pack and compute the identities (refuses with exit 2).

    The detector named by the `detector` option is built here, so a pack that lacks it
    (or an uninstalled optional YuNet file) is refused at submit, not in a worker.
    """
    if not req.sources:
        return FacePrep(options={"faces": "off"})
    from farm.faces.chain import latent_for_pack
    from farm.faces.detect import build_detector
    from farm.faces.identity import ImageLimits, compute_identity
    from farm.faces.stages import check_models, face_label, required_roles
    from farm.models.packs import load_pack
    from farm.models.precision import plan_for
    from farm.models.providers import resolve_providers

    options = req.face_options   # validated when the request was made (SubmitRequest)
    pack_name = req.models or settings.models
    plan = plan_for(req.precision, resolve_providers(settings.providers))   # for the workers' providers
    pack = load_pack(pack_name, models_dir=settings.models_path, providers="cpu",
                     cache_dir=settings.storage_dir / "trt-cache", precision=plan)
    check_models(options, pack)   # e.g. a pixel boost the pack's swapper cannot take
    detector = build_detector(pack, options["min_score"], options["detector"])
    recognizer = pack.session("recognizer")
    limits = ImageLimits.from_settings(settings)   # image size checked before decoding
    face_map = None
    if options.get("map"):   # req.sources are the mapping's images (farm.jobs.spec.map_sources)
        from farm.faces.mapping import prepare_map

        def image_identity(path: Path, what: str) -> np.ndarray:
            return compute_identity([path], detector, recognizer, limits=limits, what=what)

        ours = pack.label(["recognizer"]).get("models", {}).get("recognizer")   # a faces.json must match it
        face_map = prepare_map(options, image_identity, lambda e: latent_for_pack(e, pack, options), ours)
        identity = None
    else:
        identity = compute_identity([Path(p) for p in req.sources], detector, recognizer, limits=limits)
    reference = None
    if options.get("faces") == "reference":
        if options.get("reference"):
            reference = compute_identity([Path(options["reference"])], detector, recognizer, limits=limits,
                                         what="reference image")
        elif options.get("reference_frame") is not None:
            reference = reference_from_video(Path(req.video), int(options["reference_frame"]), detector,
                                             recognizer, options["detect_max_side"])
        else:
            raise InputError("--faces reference needs --reference IMAGE or --reference-frame N")
    pack.check_installed(required_roles(options, pack))   # an optional model a stage needs, at submit
    label = face_label(options, pack, pack_ref=str(pack_name))   # workers load pack_ref
    label["precision_plan"] = plan.as_dict()   # workers load the pack at this plan, as it is
    source = face_map.latents[0] if face_map is not None else latent_for_pack(identity, pack, options)
    return FacePrep(options=options, label=label, source_embedding=source, reference_embedding=reference,
                    face_map=face_map)


def open_video(video: Path) -> Any:
    """Open the user's video as probe does: demuxer sniffed and forced, local files only.

    InputError naming the file when it cannot be opened.
    """
    import av

    from farm.media.ffmpeg import file_url
    from farm.media.formats import SAFE_INPUT_OPTIONS, sniff_demuxer

    demuxer = sniff_demuxer(video)
    try:
        return av.open(file_url(video), format=demuxer, container_options=dict(SAFE_INPUT_OPTIONS),
                       metadata_errors="replace")
    except av.FFmpegError as exc:
        raise InputError(f"{video}: cannot be opened to read the reference frame ({exc})",
                         hint="the file is truncated or corrupt; re-export it, or use --reference IMAGE") from None


def reference_from_video(video: Path, index: int, detector: Any, recognizer: Any,
                         max_side: int = 640) -> np.ndarray:
    """The raw embedding of the largest face in frame `index` (0-based, presentation order) of `video`.

    Frames are counted as the chunk decoder counts them: the video stream probe chooses
    (farm.media.video_choice.choose_video_stream), decoded frames in output order. InputError
    when the frame is past the end or holds no face.
    """
    import av

    from farm.faces.identity import reference_from_frame
    from farm.media.media_info import ProbeLimits
    from farm.media.probe import probe
    from farm.pipeline.frame import PLANAR_FORMATS, Frame

    checked = ProbeLimits(max_width=1 << 30, max_height=1 << 30, max_frames=1 << 40, max_bytes=1 << 62)
    main = probe(video, checked).video.index   # (submit checked the limits already)
    with open_video(video) as container:
        stream = container.streams[main]
        stream.thread_type = "AUTO"
        count = 0
        try:
            for frame in container.decode(stream):
                if count == index:
                    if frame.format.name not in PLANAR_FORMATS:
                        frame = frame.reformat(format="yuv420p")
                    return reference_from_frame(Frame.from_av(frame, index), detector, recognizer, max_side)
                count += 1
        except av.FFmpegError as exc:
            raise InputError(f"{video}: decoding failed before reference frame {index} ({exc})",
                             hint="re-export the video, or use --reference IMAGE") from None
    raise InputError(f"--reference-frame {index} is past the end of {video} ({count} frames)",
                     hint=f"use a frame index from 0 to {count - 1}" if count else "the video has no frames")
