"""What a pack holds: one row per model for `farm models list/verify/fetch/import`.

`list_models` answers from the remembered checks (no hashing); `verify_pack` checks
every installed file in full and remembers the result. Fetch and import report in the
same `ModelRow`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from farm.models.checks import check_file, stamp_for, write_stamp
from farm.models.manifest import ModelEntry
from farm.models.packs import PackLocation


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


def list_models(loc: PackLocation) -> list[ModelRow]:
    """Every model of the pack: installed?, verified? (from remembered checks; no hashing), size."""
    rows = []
    for entry in loc.manifest.models:
        path = loc.root / entry.file
        if not path.is_file():
            rows.append(model_row(entry, installed=False, verified=None, size=None, status="not installed"))
            continue
        stamp = stamp_for(loc.root, entry)
        verified = None if stamp is None else bool(stamp.get("ok"))
        status = "not verified yet" if stamp is None else str(stamp.get("status"))
        rows.append(model_row(entry, installed=True, verified=verified, size=path.stat().st_size, status=status,
                              warning=str(stamp.get("warning", "")) if stamp else ""))
    return rows


def verify_pack(loc: PackLocation, names: Sequence[str] | None = None) -> list[ModelRow]:
    """Check every installed file of the pack in full (missing optional ones are just reported)."""
    rows = []
    for entry in loc.manifest.select(names, include_optional=True):
        path = loc.root / entry.file
        if not path.is_file():
            rows.append(model_row(entry, installed=False, verified=None, size=None,
                                  status="not installed" if entry.optional else "missing"))
            continue
        check = check_file(entry, path)
        write_stamp(loc.root, entry, check)
        rows.append(model_row(entry, installed=True, verified=check.ok, size=path.stat().st_size,
                              status=check.status, warning=check.warning))
    return rows


def model_row(entry: ModelEntry, **kw: Any) -> ModelRow:
    return ModelRow(name=entry.name, role=entry.role, file=entry.file, optional=entry.optional,
                    expected_size=entry.size, **kw)
