"""Installing model files: verify, fetch (HTTP with resume), import from a folder, list.

Every file lands in the pack folder only after it was checked (sha256, or size plus
ONNX signature where no sha256 is published) and then renamed into place, so a file
under its final name is always complete. Results of full checks are remembered in
`.verified.json` next to the files (keyed by size and mtime) so `list` is instant.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


from farm import __version__
from farm.errors import ModelError
from farm.models.manifest import ModelEntry, TensorSpec
from farm.models.packs import PackLocation

log = logging.getLogger("farm.models")

STAMP_FILE = ".verified.json"
PARTIAL_DIR = ".partial"
CHUNK_BYTES = 1 << 20
"""Read/write block for hashing, copying and downloading, in bytes."""
DOWNLOAD_TIMEOUT_S = 60.0
_ONNX_DTYPES = {1: "float32", 10: "float16", 11: "float64", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 9: "bool"}


@dataclass(frozen=True)
class FileCheck:
    """The outcome of checking one file against its manifest entry."""

    ok: bool
    status: str
    sha256: str = ""
    warning: str = ""


@dataclass(frozen=True)
class ModelRow:
    """One line of `farm models list/verify/fetch/import`."""

    name: str
    role: str
    file: str
    optional: bool
    installed: bool
    verified: bool | None
    size: int | None
    expected_size: int
    status: str
    warning: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- checking


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def check_signature(entry: ModelEntry, path: Path) -> list[str]:
    """Differences between the file's graph inputs/outputs and the manifest's ([] = same)."""
    import onnx   # ~1.5 s to import: only when a signature is checked

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


def _write_stamp(root: Path, entry: ModelEntry, check: FileCheck) -> None:
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


# ---------------------------------------------------------------- list / verify


def list_models(loc: PackLocation) -> list[ModelRow]:
    """Every model of the pack: installed?, verified? (from remembered checks; no hashing), size."""
    rows = []
    for entry in loc.manifest.models:
        path = loc.root / entry.file
        if not path.is_file():
            rows.append(_row(entry, installed=False, verified=None, size=None, status="not installed"))
            continue
        stamp = stamp_for(loc.root, entry)
        verified = None if stamp is None else bool(stamp.get("ok"))
        status = "not verified yet" if stamp is None else str(stamp.get("status"))
        rows.append(_row(entry, installed=True, verified=verified, size=path.stat().st_size, status=status,
                         warning=str(stamp.get("warning", "")) if stamp else ""))
    return rows


def verify_pack(loc: PackLocation, names: Sequence[str] | None = None) -> list[ModelRow]:
    """Check every installed file of the pack in full (missing optional ones are just reported)."""
    rows = []
    for entry in loc.manifest.select(names, include_optional=True):
        path = loc.root / entry.file
        if not path.is_file():
            rows.append(_row(entry, installed=False, verified=None, size=None,
                             status="not installed" if entry.optional else "missing"))
            continue
        check = check_file(entry, path)
        _write_stamp(loc.root, entry, check)
        rows.append(_row(entry, installed=True, verified=check.ok, size=path.stat().st_size,
                         status=check.status, warning=check.warning))
    return rows


def _row(entry: ModelEntry, **kw: Any) -> ModelRow:
    return ModelRow(name=entry.name, role=entry.role, file=entry.file, optional=entry.optional,
                    expected_size=entry.size, **kw)


# ---------------------------------------------------------------- install (shared by fetch and import)


def _install(loc: PackLocation, entry: ModelEntry, part: Path) -> FileCheck:
    """Check `part`; on success rename it to its final name, else delete it. Raises ModelError."""
    check = check_file(entry, part)
    if not check.ok:
        part.unlink(missing_ok=True)
        raise ModelError(f"{entry.name}: {check.status}; nothing was installed")
    dest = loc.root / entry.file
    os.replace(part, dest)
    _write_stamp(loc.root, entry, check)
    log.info("installed %s (%s)", dest, check.status)
    return check


def _partial(loc: PackLocation, entry: ModelEntry) -> Path:
    folder = loc.root / PARTIAL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{entry.file}.part"


def _already_installed(loc: PackLocation, entry: ModelEntry) -> FileCheck | None:
    dest = loc.root / entry.file
    if not dest.is_file():
        return None
    stamp = stamp_for(loc.root, entry)
    if stamp and stamp.get("ok"):
        return FileCheck(True, "already installed", str(stamp.get("sha256", "")), str(stamp.get("warning", "")))
    check = check_file(entry, dest)
    _write_stamp(loc.root, entry, check)
    return FileCheck(True, "already installed", check.sha256, check.warning) if check.ok else None


def _refuse_demo(loc: PackLocation, verb: str) -> None:
    if loc.manifest.demo:
        raise ModelError(f"the demo pack is generated, not {verb}ed", hint="it is built on first use; nothing to do")


# ---------------------------------------------------------------- fetch


def fetch_models(
    loc: PackLocation,
    names: Sequence[str] | None = None,
    *,
    progress: bool = True,
    include_optional: bool = False,
    timeout_s: float = DOWNLOAD_TIMEOUT_S,
) -> list[ModelRow]:
    """Download the named models (default: every required one) into the pack folder.

    Resumes a partial download (HTTP Range), shows a rich progress bar when `progress`,
    checks sha256 (or size + signature), then renames into place. Raises ModelError
    listing every model that failed, after trying all of them.
    """
    _refuse_demo(loc, "fetch")
    loc.root.mkdir(parents=True, exist_ok=True)
    rows, failures = [], []
    with _progress_bar(progress) as bar:
        for entry in loc.manifest.select(names, include_optional=include_optional):
            try:
                check = _already_installed(loc, entry) or _fetch_one(loc, entry, bar, timeout_s)
            except ModelError as exc:
                failures.append(str(exc))
                rows.append(_row(entry, installed=False, verified=False, size=None, status=f"failed: {exc.message}"))
                continue
            rows.append(_row(entry, installed=True, verified=True, size=(loc.root / entry.file).stat().st_size,
                             status=check.status, warning=check.warning))
    if failures:
        raise ModelError("could not fetch every model: " + " | ".join(failures),
                         hint="run `farm models fetch` again to resume, or `farm models import DIR` from a folder")
    return rows


def _fetch_one(loc: PackLocation, entry: ModelEntry, bar: Any, timeout_s: float) -> FileCheck:
    if not entry.urls:
        raise ModelError(f"{entry.name} has no download address", hint="import it with `farm models import DIR`")
    part = _partial(loc, entry)
    errors = []
    for url in entry.urls:
        try:
            download(url, part, expected_size=entry.size, bar=bar, label=entry.name, timeout_s=timeout_s)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url}: {exc}")
            log.warning("download of %s from %s failed: %s", entry.name, url, exc)
            continue
        return _install(loc, entry, part)
    raise ModelError(f"{entry.name}: every address failed ({'; '.join(errors)})")


def download(url: str, part: Path, *, expected_size: int = 0, bar: Any = None, label: str = "",
             timeout_s: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Download `url` into `part`, resuming from its current length with an HTTP Range request."""
    have = part.stat().st_size if part.exists() else 0
    if expected_size and have > expected_size:
        part.unlink()
        have = 0
    if expected_size and have == expected_size:
        return
    headers = {"User-Agent": f"farm/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the partial file is already complete
            return
        raise
    with response:
        resumed = have > 0 and response.status == 206 and _range_start(response) == have
        if not resumed:
            have = 0
        length = int(response.headers.get("Content-Length") or 0)
        total = have + length if length else (expected_size or None)
        task = bar.add_task(label or part.name, total=total, completed=have) if bar is not None else None
        with open(part, "ab" if resumed else "wb") as out:
            for block in iter(lambda: response.read(CHUNK_BYTES), b""):
                out.write(block)
                if task is not None:
                    bar.advance(task, len(block))
            out.flush()
            os.fsync(out.fileno())
    if length and part.stat().st_size != have + length:
        raise OSError(f"connection closed early ({part.stat().st_size} of {have + length} bytes); fetch again to resume")


def _range_start(response: Any) -> int | None:
    value = response.headers.get("Content-Range", "")  # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.progress import (  # noqa: PLC0415
        BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn()) as bar:
        yield bar


# ---------------------------------------------------------------- import


def import_models(src_dir: str | Path, loc: PackLocation, names: Sequence[str] | None = None) -> list[ModelRow]:
    """Copy the pack's files from `src_dir` (searched recursively by file name), verify, install.

    For air-gapped clusters. Optional models absent from `src_dir` are skipped; a
    required one absent, or any file that fails its check, raises ModelError after
    every other file was handled (nothing unverified is ever installed).
    """
    _refuse_demo(loc, "import")
    src = Path(src_dir).expanduser()
    if not src.is_dir():
        raise ModelError(f"{src} is not a folder")
    loc.root.mkdir(parents=True, exist_ok=True)
    rows, failures = [], []
    for entry in loc.manifest.select(names, include_optional=True):
        found = _find(src, entry.file)
        if found is None:
            if entry.optional and not names:
                rows.append(_row(entry, installed=(loc.root / entry.file).is_file(), verified=None, size=None,
                                 status="not in source folder (optional)"))
            else:
                failures.append(f"{entry.file} not found under {src}")
                rows.append(_row(entry, installed=False, verified=None, size=None, status="not in source folder"))
            continue
        part = _partial(loc, entry)
        try:
            shutil.copyfile(found, part)
            check = _install(loc, entry, part)
        except (OSError, ModelError) as exc:
            part.unlink(missing_ok=True)
            failures.append(str(exc) if isinstance(exc, ModelError) else f"{entry.file}: {exc}")
            rows.append(_row(entry, installed=False, verified=False, size=None, status=f"failed: {exc}"))
            continue
        rows.append(_row(entry, installed=True, verified=True, size=(loc.root / entry.file).stat().st_size,
                         status=f"imported, {check.status}", warning=check.warning))
    if failures:
        raise ModelError("import incomplete: " + " | ".join(failures),
                         hint=f"the folder must hold: {', '.join(e.file for e in loc.manifest.select(None))}")
    return rows


def _find(src: Path, file: str) -> Path | None:
    direct = src / file
    if direct.is_file():
        return direct
    return next((p for p in sorted(src.rglob(file)) if p.is_file()), None)
