"""The face options of a job: the table assembled from the stages that declare them, and
their validation at submit time.

Each option is declared once, in the `options` of the stage class that reads it
(detect.py, select.py, enhance.py, ...); FACE_OPTIONS is the table of every registered
stage's options in chain order (farm.faces.stages), read from the registry on each use,
so a stage added to the registry brings its options with it.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from farm.errors import InputError
from farm.options import Option, convert

__all__ = ["FACE_OPTIONS", "Option", "validate_options"]


class _FaceOptionTable(Mapping[str, Option]):
    """FACE_OPTIONS: name -> Option of every registered stage, in chain order."""

    def _rows(self) -> dict[str, Option]:
        from farm.faces.stages import face_options   # the stages import Option from here

        return face_options()

    def __getitem__(self, name: str) -> Option:
        return self._rows()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows())

    def __len__(self) -> int:
        return len(self._rows())

    def __repr__(self) -> str:
        return f"FACE_OPTIONS({list(self)})"


FACE_OPTIONS: Mapping[str, Option] = _FaceOptionTable()

def validate_options(raw: dict[str, Any]) -> dict[str, Any]:
    """A new dict of every face option, defaults filled in; InputError naming a bad option.

    Each value is converted by its row of the table, then each registered stage checks
    the combinations it cares about (Stage.check_options)."""
    from farm.faces.stages import registered

    if not isinstance(raw, dict):
        raise InputError("face options must be a mapping of name to value")
    table = dict(FACE_OPTIONS)
    unknown = sorted(set(raw) - set(table))
    if unknown:
        raise InputError(f"unknown face option {unknown[0]!r}", hint="known: " + ", ".join(table))
    out = {name: convert(name, spec, raw.get(name, spec.default), "the face options", text=True)
           for name, spec in table.items()}
    for stage in registered():
        stage.check_options(out)
    return out
