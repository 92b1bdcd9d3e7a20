"""The face options of a job: the table assembled from the stages that declare them, and
their validation at submit time.

Each option is declared once, in the `options` of the stage class that reads it
(detect.py, select.py, enhance.py, ...); FACE_OPTIONS is the table of every registered
stage's options in chain order (farm.faces.stages), read from the registry on each use,
so a stage added to the registry brings its options with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from farm.errors import InputError


@dataclass(frozen=True)
class Option:
    """One option: its type ('choice', 'str', 'int', 'float', 'bool'), default and limits.

    unit: what a number counts ('px', ...; '' for none). stage: the stage that reads it
    (filled in by the registry from the declaring stage).
    """

    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    stage: str = ""


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

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _convert(name: str, spec: Option, value: Any) -> Any:
    if value is None and spec.default is None:
        return None
    bad = InputError(f"option {name}={value!r} is invalid", hint=_hint(spec))
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise bad
    if spec.kind == "choice":
        if isinstance(value, str) and value in spec.choices:
            return value
        raise bad
    if spec.kind == "str":
        if isinstance(value, str) and value.strip():
            return value
        raise bad
    if isinstance(value, bool):  # bool is an int in Python; refuse it for numbers
        raise bad
    try:
        number: float = int(value) if spec.kind == "int" else float(value)
    except (TypeError, ValueError):
        raise bad from None
    if spec.kind == "int" and isinstance(value, float) and value != int(value):
        raise bad
    if number != number or (spec.minimum is not None and number < spec.minimum) or (
        spec.maximum is not None and number > spec.maximum
    ):
        raise bad
    return number


def _hint(spec: Option) -> str:
    if spec.choices:
        return "one of " + ", ".join(spec.choices)
    limits = ""
    if spec.minimum is not None or spec.maximum is not None:
        lo = "" if spec.minimum is None else f"{spec.minimum:g}"
        hi = "" if spec.maximum is None else f"{spec.maximum:g}"
        limits = f" in {lo}..{hi}"
    unit = f" {spec.unit}" if spec.unit else ""
    return f"{spec.kind}{limits}{unit}: {spec.help}"


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
    out = {name: _convert(name, spec, raw.get(name, spec.default)) for name, spec in table.items()}
    for stage in registered():
        stage.check_options(out)
    return out
