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

from farm.pipeline.stage import PassThrough, StageChain


@dataclass
class FacePrep:
    """What submit stores about the face work of a job."""

    options: dict[str, Any]
    label: dict[str, Any] = field(default_factory=dict)
    source_embedding: np.ndarray | None = None
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
    from farm.faces.identity import compute_identity
    from farm.faces.options import validate_options
    from farm.models.packs import load_pack

    options = validate_options(dict(req.face_options))
    pack_name = req.models or settings.models
    pack = load_pack(pack_name, models_dir=settings.models_path, providers="cpu",
                     cache_dir=settings.storage_dir / "trt-cache")
    options["models"] = pack_name
    source = compute_identity([Path(p) for p in req.sources], pack)
    reference = None
    if options.get("faces") == "reference" and options.get("reference"):
        reference = compute_identity([Path(options["reference"])], pack)
    return FacePrep(options=options, label=pack.label(), source_embedding=source,
                    reference_embedding=reference)


def build_job_chain(ctx: Any, job: Any) -> StageChain:
    """The stage chain a worker runs for `job` (pass-through when the job has no faces to swap)."""
    options = job.options or {}
    if options.get("faces", "off") == "off":
        return StageChain([PassThrough()])
    from farm.faces.chain import build_chain

    pack = ctx.pack(options["models"])
    data = np.load(ctx.storage.identity(job.id))
    reference = data["reference"] if "reference" in data.files else None
    return build_chain(options, pack, data["source"], reference)
