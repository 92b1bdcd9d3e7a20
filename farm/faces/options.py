"""The face options of a job, declared as data and validated at submit time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from farm.errors import InputError


@dataclass(frozen=True)
class Option:
    """One option: its type ('choice', 'str', 'int', 'float', 'bool'), default and limits."""

    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


FACE_OPTIONS: dict[str, Option] = {
    "faces": Option("choice", "all", "which faces to swap", choices=("all", "largest", "reference")),
    "reference": Option("str", None, "image of the face to swap (faces=reference)"),
    "reference_frame": Option("int", None, "frame index holding the face to swap (faces=reference)",
                              minimum=0),
    "similarity": Option("float", 0.35, "least cosine similarity to the reference face",
                         minimum=0.0, maximum=1.0),
    "enhance": Option("bool", True, "restore swapped faces with GFPGAN"),
    "enhance_blend": Option("float", 0.8, "share of the restored face in the result",
                            minimum=0.0, maximum=1.0),
    "detect_max_side": Option("int", 640, "longer side, in pixels, of the frame copy the detector sees",
                              minimum=64, maximum=4096),
    "min_score": Option("float", 0.5, "least detector score of a face", minimum=0.0, maximum=1.0),
    "detector": Option("choice", "auto", "face detector: the pack's own (auto), SCRFD (role detector) "
                       "or YuNet (role detector_yunet)", choices=("auto", "scrfd", "yunet")),
}

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
    return f"{spec.kind}{limits}: {spec.help}"


def validate_options(raw: dict[str, Any]) -> dict[str, Any]:
    """A new dict of every face option, defaults filled in; InputError naming a bad option."""
    if not isinstance(raw, dict):
        raise InputError("face options must be a mapping of name to value")
    unknown = sorted(set(raw) - set(FACE_OPTIONS))
    if unknown:
        raise InputError(f"unknown face option {unknown[0]!r}", hint="known: " + ", ".join(FACE_OPTIONS))
    out = {name: _convert(name, spec, raw.get(name, spec.default)) for name, spec in FACE_OPTIONS.items()}
    if out["faces"] == "reference":
        if (out["reference"] is None) == (out["reference_frame"] is None):
            raise InputError("option faces=reference needs exactly one of reference or reference_frame")
    elif out["reference"] is not None or out["reference_frame"] is not None:
        raise InputError(f"option reference/reference_frame needs faces=reference, not faces={out['faces']}")
    return out
