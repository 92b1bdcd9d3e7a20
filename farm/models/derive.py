"""A batched copy of a swapper whose graph fixes its batch at 1 (inswapper_128 does).

Pixel boost runs n x n sub-images of each face through the swapper (16 at 512 px for a
128 px model); a model with a dynamic batch takes them in one run. For a fixed-batch
model the farm derives, once, at install (and when building the demo pack), a copy
whose graph inputs and outputs have a symbolic batch dimension, and keeps it only if
ONNX Runtime runs it on a batch of 2 with the results of two single runs of the
original (atol ATOL). The copy lives in `.derived/` beside the pack's files with its own
sha256 in `.derived/<file>.json` (and the original's sha256, so a replaced original is
never paired with a stale copy); the pack loads it for sessions of that model and names
it in the output label. A graph that cannot take another batch (a Reshape to a fixed
shape, say) is recorded as such and the original is used, one sub-image per run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from farm.models.manifest import ModelEntry

log = logging.getLogger("farm.models")

DERIVED_DIR = ".derived"
ATOL = 1e-4
"""Largest difference allowed between the batched copy and single runs (model units)."""


@dataclass(frozen=True)
class Derived:
    """A verified batched copy: its path and sha256, and the sha256 of the file it came from."""

    path: Path
    sha256: str
    source_sha256: str


def wants_batched_copy(entry: ModelEntry) -> bool:
    """True for a swapper whose image input has a fixed batch of 1."""
    from farm.models.conventions import SWAPPER, family_of

    image = [t for t in entry.inputs if len(t.shape) == 4]
    return family_of(entry) == SWAPPER and bool(image) and image[0].shape[0] == 1


def record_path(root: Path, entry: ModelEntry) -> Path:
    return root / DERIVED_DIR / f"{entry.file}.json"


def batched_copy(root: Path, entry: ModelEntry, source_sha256: str) -> Derived | None:
    """The verified batched copy of `entry`'s file made from the file with `source_sha256`, if any."""
    try:
        record = json.loads(record_path(root, entry).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    path = root / DERIVED_DIR / str(record.get("file", ""))
    if not record.get("ok") or record.get("source_sha256") != source_sha256 or not path.is_file():
        return None
    return Derived(path, str(record["sha256"]), source_sha256)


def derive_batched(root: Path, entry: ModelEntry, source_sha256: str) -> Derived | None:
    """Make, check and record the batched copy of the installed `entry` (None when the
    graph cannot take a batch: recorded, with why, so it is not tried again)."""
    if not wants_batched_copy(entry):
        return None
    done = batched_copy(root, entry, source_sha256)
    if done is not None:
        return done
    folder = root / DERIVED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{Path(entry.file).stem}.batch.onnx"
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    try:
        tmp.write_bytes(_with_dynamic_batch(root / entry.file))
        problem = _check_batched(root / entry.file, tmp)
        if problem:
            _record(root, entry, ok=False, source_sha256=source_sha256, why=problem)
            log.info("%s: no batched copy (%s); pixel boost runs its sub-images one by one", entry.name, problem)
            return None
        os.replace(tmp, folder / name)
    finally:
        tmp.unlink(missing_ok=True)
    digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    _record(root, entry, ok=True, source_sha256=source_sha256, file=name, sha256=digest)
    log.info("%s: batched copy %s (sha256 %s)", entry.name, folder / name, digest[:12])
    return Derived(folder / name, digest, source_sha256)


def _with_dynamic_batch(path: Path) -> bytes:
    """The model's bytes with dim 0 of every graph input and output that fixes it at 1
    made symbolic ('batch'), and the inferred inner shapes dropped (ORT infers them again)."""
    import onnx  # ~1.5 s to import: only when a copy is made

    model = onnx.load(str(path))
    inits = {i.name for i in model.graph.initializer}
    for value in [*[v for v in model.graph.input if v.name not in inits], *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value == 1:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    del model.graph.value_info[:]
    return model.SerializeToString()


def _check_batched(original: Path, batched: Path) -> str:
    """'' when `batched` runs a batch of 2 with the results of two single runs of
    `original` (random inputs of the declared shapes), else what went wrong."""
    import onnxruntime as ort

    quiet = ort.SessionOptions()
    quiet.log_severity_level = 4   # a graph that cannot take the batch is an answer, not an error to log
    try:
        single = ort.InferenceSession(str(original), quiet, providers=["CPUExecutionProvider"])
        double = ort.InferenceSession(str(batched), quiet, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        feeds = [{n.name: rng.random([1, *[d if isinstance(d, int) else 1 for d in n.shape[1:]]]).astype(np.float32)
                  for n in single.get_inputs()} for _ in range(2)]
        alone = [single.run(None, feed)[0] for feed in feeds]
        together = double.run(None, {k: np.concatenate([f[k] for f in feeds]) for k in feeds[0]})[0]
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        return f"it does not run on a batch of 2: {str(exc).strip().splitlines()[0][:200]}"
    worst = float(np.max(np.abs(np.concatenate(alone) - together)))
    return "" if worst <= ATOL else f"a batch of 2 differs from two single runs by {worst:.3g}"


def _record(root: Path, entry: ModelEntry, **fields: object) -> None:
    path = record_path(root, entry)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"model": entry.name, **fields}, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
