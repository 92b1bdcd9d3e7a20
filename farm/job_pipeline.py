"""Per-job face work: prepared once at submit (options, model pack, identity) and turned
into a stage chain in each worker.

The source identity (the average embedding of every --source image) and the reference
identity are computed once per job at submit and stored beside the job, so every
chunk swaps in exactly the same person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from farm.errors import InputError
from farm.pipeline.stage import PassThrough, StageChain


@dataclass
class FacePrep:
    """What submit stores about the face work of a job."""

    options: dict[str, Any]
    label: dict[str, Any] = field(default_factory=dict)
    source_embedding: np.ndarray | None = None      # the swapper's latent of the source identity
    reference_embedding: np.ndarray | None = None

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
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)


def prepare_faces(req: Any, settings: Any) -> FacePrep:
    """Validate face options, load the model pack and compute the identities (refuses with exit 2)."""
    if not req.sources:
        return FacePrep(options={"faces": "off"})
    from farm.faces.chain import latent_for_pack
    from farm.faces.identity import compute_identity
    from farm.faces.options import validate_options
    from farm.models.packs import load_pack

    options = validate_options(dict(req.face_options))
    pack_name = req.models or settings.models
    pack = load_pack(pack_name, models_dir=settings.models_path, providers="cpu",
                     cache_dir=settings.storage_dir / "trt-cache")
    identity = compute_identity([Path(p) for p in req.sources], pack)
    reference = None
    if options.get("faces") == "reference":
        if options.get("reference"):
            reference = compute_identity([Path(options["reference"])], pack)
        elif options.get("reference_frame") is not None:
            reference = reference_from_video(Path(req.video), int(options["reference_frame"]), pack)
        else:
            raise InputError("--faces reference needs --reference IMAGE or --reference-frame N")
    label = dict(pack.label(), pack_ref=str(pack_name))   # what workers load (name or directory)
    return FacePrep(options=options, label=label, source_embedding=latent_for_pack(identity, pack),
                    reference_embedding=reference)


def reference_from_video(video: Path, index: int, pack: Any) -> np.ndarray:
    """The embedding of the largest face in frame `index` (presentation order) of `video`."""
    import av

    from farm.faces.detect import build_detector
    from farm.faces.identity import reference_from_frame
    from farm.pipeline.frame import Frame

    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return reference_from_frame(Frame.from_av(frame, i), build_detector(pack), pack.session("recognizer"))
    raise InputError(f"--reference-frame {index} is past the end of {video}")


def build_job_chain(ctx: Any, job: Any) -> StageChain:
    """The stage chain a worker runs for `job` (pass-through when the job has no faces to swap)."""
    options = job.options or {}
    if options.get("faces", "off") == "off":
        return StageChain([PassThrough()])
    from farm.faces.chain import build_chain

    pack = ctx.pack(job.models["pack_ref"])
    data = np.load(ctx.storage.identity(job.id))
    reference = data["reference"] if "reference" in data.files else None
    return build_chain(options, pack, data["source"], reference)
