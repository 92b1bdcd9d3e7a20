"""Is this file the model the manifest describes? Check it, and remember the answer.

A file is checked by sha256, or by size plus ONNX signature where no sha256 is
published. Results of full checks are remembered in `.verified.json` next to the files
(keyed by size and mtime), so listing a pack is instant and an unchanged file is not
hashed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm.models.manifest import ModelEntry, TensorSpec

log = logging.getLogger("farm.models")

STAMP_FILE = ".verified.json"
CHUNK_BYTES = 1 << 20
"""Read/write block for hashing, copying and downloading, in bytes."""
_ONNX_DTYPES = {1: "float32", 10: "float16", 11: "float64", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 9: "bool"}


@dataclass(frozen=True)
class FileCheck:
    """The outcome of checking one file against its manifest entry."""

    ok: bool
    status: str
    sha256: str = ""
    warning: str = ""


# ---------------------------------------------------------------- checking


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def check_signature(entry: ModelEntry, path: Path) -> list[str]:
    """Differences between the file's graph inputs/outputs and the manifest's ([] = same)."""
    import onnx  # ~1.5 s to import: only when a signature is checked

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several unrelated types
        return [f"not a readable ONNX model ({type(exc).__name__})"]
    inits = {i.name for i in model.graph.initializer}
    actual_in = [v for v in model.graph.input if v.name not in inits]
    problems = _compare("input", entry.inputs, actual_in)
    problems += _compare("output", entry.outputs, list(model.graph.output))
    return problems


def _compare(kind: str, expected: Sequence[TensorSpec], actual: Sequence[Any]) -> list[str]:
    if len(expected) != len(actual):
        return [f"{len(actual)} {kind}s, manifest lists {len(expected)}"]
    problems = []
    for spec, value in zip(expected, actual):
        tt = value.type.tensor_type
        if spec.name_confirmed and value.name != spec.name:
            problems.append(f"{kind} {value.name!r} should be named {spec.name!r}")
        dtype = _ONNX_DTYPES.get(tt.elem_type, str(tt.elem_type))
        if dtype != spec.dtype:
            problems.append(f"{kind} {spec.name!r} is {dtype}, manifest says {spec.dtype}")
        dims = list(tt.shape.dim)
        if len(dims) != len(spec.shape):
            problems.append(f"{kind} {spec.name!r} has rank {len(dims)}, manifest says {len(spec.shape)}")
            continue
        for want, got in zip(spec.shape, dims):
            if isinstance(want, int) and got.HasField("dim_value") and got.dim_value != want:
                problems.append(f"{kind} {spec.name!r} has shape {_dims(dims)}, manifest says {list(spec.shape)}")
                break
    return problems


def _dims(dims: Sequence[Any]) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]


def check_file(entry: ModelEntry, path: Path) -> FileCheck:
    """Check `path` against `entry`: sha256 where known, else size (if known) + ONNX signature."""
    if not path.is_file():
        return FileCheck(False, "missing")
    size = path.stat().st_size
    if entry.size and size != entry.size and not entry.also_sha256:
        return FileCheck(False, f"size mismatch ({size} bytes, manifest says {entry.size})")
    if entry.accepted_sha256:
        digest = sha256_file(path)
        if digest in entry.accepted_sha256:
            return FileCheck(True, "verified (sha256)", digest)
        return FileCheck(False, f"sha256 mismatch (got {digest[:16]}..., manifest says {entry.sha256[:16]}...)", digest)
    if entry.size and size != entry.size:
        return FileCheck(False, f"size mismatch ({size} bytes, manifest says {entry.size})")
    problems = check_signature(entry, path)
    if problems:
        return FileCheck(False, "signature mismatch: " + "; ".join(problems))
    warning = (f"{entry.name}: no published sha256 to check against; verified "
               f"{'size and ' if entry.size else ''}ONNX signature only")
    log.warning(warning)
    return FileCheck(True, "verified (signature only)", sha256_file(path), warning)


# ---------------------------------------------------------------- stamps


def read_stamps(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def stamp_for(root: Path, entry: ModelEntry) -> dict[str, Any] | None:
    """The remembered check of `entry`'s file, if the file is unchanged since."""
    stamp = read_stamps(root).get(entry.file)
    path = root / entry.file
    if not isinstance(stamp, dict) or not path.is_file():
        return None
    st = path.stat()
    if stamp.get("size") != st.st_size or stamp.get("mtime_ns") != st.st_mtime_ns:
        return None
    return stamp


def write_stamp(root: Path, entry: ModelEntry, check: FileCheck) -> None:
    path = root / entry.file
    stamps = read_stamps(root)
    if path.is_file():
        st = path.stat()
        stamps[entry.file] = {"ok": check.ok, "status": check.status, "sha256": check.sha256,
                              "size": st.st_size, "mtime_ns": st.st_mtime_ns, "warning": check.warning}
    else:
        stamps.pop(entry.file, None)
    tmp = root / f"{STAMP_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(stamps, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, root / STAMP_FILE)
