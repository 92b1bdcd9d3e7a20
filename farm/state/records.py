"""Dataclasses <-> JSON-safe dicts, for what the database stores (chunk plans, encoder settings).

Fractions become "num/den" strings; nested dataclasses become dicts. `load` rebuilds the
dataclass from its field types, so a stored plan round-trips exactly.
"""

from __future__ import annotations

import dataclasses
import typing
from fractions import Fraction
from typing import Any, TypeVar

T = TypeVar("T")


def dump(obj: Any) -> Any:
    """A JSON-safe copy of a dataclass (recursively)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: dump(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Fraction):
        return f"{obj.numerator}/{obj.denominator}"
    if isinstance(obj, dict):
        return {k: dump(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [dump(v) for v in obj]
    return obj


def load(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild `cls` from `dump(obj)`; unknown keys are an error (a stale record)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        value, kind = data[f.name], hints[f.name]
        if kind is Fraction or kind == Fraction | None:
            value = Fraction(value) if value is not None else None
        elif dataclasses.is_dataclass(kind) and isinstance(value, dict):
            value = load(kind, value)
        kwargs[f.name] = value
    extra = set(data) - {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if extra:
        raise ValueError(f"{cls.__name__} record has unknown fields {sorted(extra)}")
    return cls(**kwargs)
