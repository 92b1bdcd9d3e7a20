"""Installing model files into a pack folder: the checked rename, and import from a folder.

Every file lands in the pack folder only after it was checked (`farm.models.checks`)
and then renamed into place from `.partial/`, so a file under its final name is always
complete. `import_models` copies the files from a local folder (air-gapped clusters);
`farm.models.fetch` downloads them and installs them the same way.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from farm.errors import ModelError
from farm.models.checks import FileCheck, check_file, stamp_for, write_stamp
from farm.models.inventory import ModelRow, model_row
from farm.models.manifest import ModelEntry
from farm.models.packs import PackLocation

log = logging.getLogger("farm.models")

PARTIAL_DIR = ".partial"


def install_file(loc: PackLocation, entry: ModelEntry, part: Path) -> FileCheck:
    """Check `part`; on success rename it to its final name, else delete it. Raises ModelError."""
    check = check_file(entry, part)
    if not check.ok:
        part.unlink(missing_ok=True)
        raise ModelError(f"{entry.name}: {check.status}; nothing was installed")
    dest = loc.root / entry.file
    os.replace(part, dest)
    write_stamp(loc.root, entry, check)
    log.info("installed %s (%s)", dest, check.status)
    derive_copies(loc.root, entry, check.sha256)
    return check


def derive_copies(root: Path, entry: ModelEntry, sha256: str) -> None:
    """The files the farm derives from an installed model (a batched swapper,
    farm.models.derive); a failure to derive is logged, never fatal: the original serves."""
    from farm.models.derive import derive_batched, wants_batched_copy

    if not wants_batched_copy(entry):
        return
    try:
        derive_batched(root, entry, sha256)
    except Exception as exc:  # noqa: BLE001 - onnx raises several unrelated types
        log.warning("%s: no batched copy derived (%s)", entry.name, exc)


def partial_path(loc: PackLocation, entry: ModelEntry) -> Path:
    folder = loc.root / PARTIAL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{entry.file}.part"


def already_installed(loc: PackLocation, entry: ModelEntry) -> FileCheck | None:
    dest = loc.root / entry.file
    if not dest.is_file():
        return None
    stamp = stamp_for(loc.root, entry)
    if stamp and stamp.get("ok"):
        return FileCheck(True, "already installed", str(stamp.get("sha256", "")), str(stamp.get("warning", "")))
    check = check_file(entry, dest)
    write_stamp(loc.root, entry, check)
    return FileCheck(True, "already installed", check.sha256, check.warning) if check.ok else None


def refuse_demo(loc: PackLocation, verb: str) -> None:
    if loc.manifest.demo:
        raise ModelError(f"the demo pack is generated, not {verb}ed", hint="it is built on first use; nothing to do")


# ---------------------------------------------------------------- import


def import_models(src_dir: str | Path, loc: PackLocation, names: Sequence[str] | None = None) -> list[ModelRow]:
    """Copy the pack's files from `src_dir` (searched recursively by file name), verify, install.

    For air-gapped clusters. Optional models absent from `src_dir` are skipped; a
    required one absent, or any file that fails its check, raises ModelError after
    every other file was handled (nothing unverified is ever installed).
    """
    refuse_demo(loc, "import")
    src = Path(src_dir).expanduser()
    if not src.is_dir():
        raise ModelError(f"{src} is not a folder")
    loc.root.mkdir(parents=True, exist_ok=True)
    rows, failures = [], []
    for entry in loc.manifest.select(names, include_optional=True):
        found = _find(src, entry.file)
        if found is None:
            if entry.optional and not names:
                rows.append(model_row(entry, installed=(loc.root / entry.file).is_file(), verified=None, size=None,
                                      status="not in source folder (optional)"))
            else:
                failures.append(f"{entry.file} not found under {src}")
                rows.append(model_row(entry, installed=False, verified=None, size=None, status="not in source folder"))
            continue
        part = partial_path(loc, entry)
        try:
            shutil.copyfile(found, part)
            check = install_file(loc, entry, part)
        except (OSError, ModelError) as exc:
            part.unlink(missing_ok=True)
            failures.append(str(exc) if isinstance(exc, ModelError) else f"{entry.file}: {exc}")
            rows.append(model_row(entry, installed=False, verified=False, size=None, status=f"failed: {exc}"))
            continue
        rows.append(model_row(entry, installed=True, verified=True, size=(loc.root / entry.file).stat().st_size,
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
