"""The one table of job options: every option `farm submit`, a spec file and the API take.

Each option is declared once, as an `Option` row: here for the job's own options (input,
output, encoder, queue, models, provenance), and in the face stage that reads it for the
face options (farm.faces.stages assembles those from the registry). Everything else is
derived from `job_options()`: the CLI's flags (farm.cli.flags), the spec-file keys
and the API's form fields and JSON body (farm.jobs.spec.check_options), and the OpenAPI
schema (openapi_properties). Values are converted once, at submit, by `convert`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from farm.errors import InputError

KINDS = ("bool", "int", "float", "str", "choice", "path", "paths", "list", "numbers", "pairs")

LIST_SEPARATOR = ","
"""How the items of a 'list' or 'numbers' option are written in one piece of text (a flag's
value, a form field, a string in a spec file or JSON): `box,occlusion`, `10,0,0,0`."""

TRUE_WORDS, FALSE_WORDS = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
"""How a true/false value may be written where values are text (a form field, an environment)."""


@dataclass(frozen=True)
class Option:
    """One job option.

    kind: one of KINDS ('paths': one or more paths; 'list': one or more of `choices`, each
    once, in the order given; 'numbers': `count` numbers, each in minimum..maximum; both
    taken as a list or as one text with the items comma-separated). default: what a job
    gets when the option is not given (None: decided later, e.g. the encoder from the
    input; a tuple for 'list' and 'numbers'). unit: what a number counts ('s', 'px', '%',
    ...). stage: who reads it, a face stage's name or one of input, output, encoder, queue,
    models, provenance (filled in by the registry for face stages). short / metavar: the
    CLI's one-letter alias and label of its value. count: how many numbers a 'numbers'
    option takes (0: one or more).
    """

    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    stage: str = ""
    short: str = ""
    metavar: str = ""
    count: int = 0
    words: tuple[str, ...] = ()

    def flag(self, name: str) -> str:
        """The CLI flag: `--chunk-seconds`; a true/false option that defaults to true is
        turned off by `--no-<name>` (`--no-enhance`)."""
        dashed = name.replace("_", "-")
        return f"--no-{dashed}" if self.kind == "bool" and self.default is True else f"--{dashed}"

    def rule(self) -> str:
        """What a valid value is, in a few words: `0..9`, `one of all, largest`, `a path`."""
        unit = f" {self.unit}" if self.unit else ""
        if self.kind == "list":
            return "one or more of " + ", ".join(self.choices) + " (comma-separated)"
        if self.kind == "numbers":
            many = f"{self.count} numbers" if self.count else "one or more numbers"
            span = (f" in {self.minimum:g}..{self.maximum:g}{unit}"
                    if self.minimum is not None and self.maximum is not None else "")
            return f"{many}{span} (comma-separated)"
        if self.kind == "pairs":
            return "one or more PATH=PATH items"
        if self.words:
            return "a path or " + " or ".join(self.words)
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"{self.minimum:g}..{self.maximum:g}{unit}"
        if self.minimum is not None:
            return f"at least {self.minimum:g}{unit}"
        if self.maximum is not None:
            return f"at most {self.maximum:g}{unit}"
        return {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "a non-empty string",
                "path": "a path", "paths": "a path or a list of paths"}[self.kind]

    def hint(self) -> str:
        """A refusal's 'what to do' line: the rule and what the option is for."""
        kind = {"int": "a whole number", "float": "a number"}.get(self.kind)
        rule = self.rule() if not kind or self.choices or "." not in self.rule() else f"{kind} in {self.rule()}"
        return f"{rule}: {self.help}"


SUBMIT_OPTIONS: dict[str, Option] = {
    "source": Option("paths", None, "Image(s) of the face to swap in; averaged.", stage="input", short="-s",
                     metavar="IMAGE"),
    "output": Option("path", None, "Default: <name>.farm.<ext> beside the input.", stage="output", short="-o",
                     metavar="PATH"),
    "overwrite": Option("bool", False, "Replace an existing output file.", stage="output"),
    "chunk_seconds": Option("float", None, "Target chunk length (default: from resolution and fps).",
                            minimum=0.2, maximum=3600.0, unit="s", stage="input", metavar="SECONDS"),
    "codec": Option("str", None, "h264, hevc, ... (default: the input's family).", stage="encoder",
                    metavar="CODEC"),
    "preset": Option("str", None, "Encoder preset (e.g. veryfast, medium).", stage="encoder", metavar="PRESET"),
    "crf": Option("int", None, "Encoder quality (lower is better).", minimum=0, maximum=63, stage="encoder",
                  metavar="CRF"),
    "priority": Option("int", 5, "9 runs first.", minimum=0, maximum=9, stage="queue", metavar="0..9"),
    "keep_chunks": Option("bool", False, "Keep chunk files after publishing.", stage="output"),
    "models": Option("str", None, "Model pack: default, demo, or a directory.", stage="models", metavar="PACK"),
    "precision": Option("choice", "auto", "Model precision: auto (TensorRT: fp32 files, fp16 engines; CUDA alone: a "
                        "model's fp16 file where the pack has it; CPU: fp32), fp32, or fp16 (the fp16 files).",
                        choices=("auto", "fp32", "fp16"), stage="models"),
    "passthrough": Option("bool", False, "No face work: re-encode only (tests, benchmarks).", stage="input"),
    "consent": Option("str", None, "Reference to the consent record (release form, ticket, document hash); "
                      "recorded and signed into the output.", stage="provenance", metavar="TEXT"),
}

PREVIEW_JOB_OPTIONS = ("source", "models", "consent")
"""The job's own options `farm preview` takes (farm.jobs.preview); every face option too."""
"""The job's own options; the face options come from the face stages."""


def job_options() -> dict[str, Option]:
    """name -> Option of every job option: SUBMIT_OPTIONS, then every registered face
    stage's options in chain order (read from the registry at each call). ValueError when
    a name is declared twice."""
    from farm.faces.stages import face_options

    table = dict(SUBMIT_OPTIONS)
    for name, option in face_options().items():
        if name in table:
            raise ValueError(f"option {name!r} is declared by stage {option.stage!r} and as a job option")
        table[name] = option
    return table


def path_options(table: dict[str, Option] | None = None) -> list[str]:
    """The options whose values are file paths (resolved against a spec file's folder)."""
    return [name for name, option in (table or job_options()).items() if option.kind in ("path", "paths", "pairs")]


def convert(name: str, option: Option, value: Any, origin: str, *, text: bool = False) -> Any:
    """`value` as option `name` takes it, or InputError naming the option, where it was
    given (`origin`) and what a valid value is. `text`: values arrive as strings (a form
    field), so "yes" is true and "20" is 20. Returns bool/int/float/str, a str for a path,
    a list of str for 'paths' and 'list', a list of float for 'numbers'; None stays None
    for an option without a default."""
    if value is None and option.default is None:
        return None
    bad = InputError(f"option {name} = {value!r} in {origin} is invalid: {name} must be {option.rule()}",
                     hint=option.hint())
    kind = option.kind
    if kind in ("list", "numbers"):
        return _items(option, value, text, bad)
    if kind == "pairs":
        return _pairs(value, bad)
    if kind == "paths":
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) and v.strip() and "\0" not in v for v in values):
            raise bad
        return list(values)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if text and isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        raise bad
    if kind == "choice" and isinstance(value, int) and not isinstance(value, bool) and str(value) in option.choices:
        value = str(value)   # a number among the choices (pixel_boost = 512 in a spec file or JSON)
    if kind in ("str", "path", "choice"):
        if not isinstance(value, str) or not value.strip() or "\0" in value:
            raise bad
        if kind == "choice" and value not in option.choices:
            raise bad
        return value if kind == "path" else value.strip()
    return _number(option, value, text, bad)


def _items(option: Option, value: Any, text: bool, bad: InputError) -> list[Any]:
    """A 'list' or 'numbers' option's value as a new list: given as a list (or tuple) or as
    one text of comma-separated items (spaces around an item are ignored)."""
    if isinstance(value, str):
        value = [item.strip() for item in value.split(LIST_SEPARATOR)]
    if not isinstance(value, (list, tuple)) or not value:
        raise bad
    if option.kind == "numbers":
        if option.count and len(value) != option.count:
            raise bad
        item = Option("float", None, option.help, minimum=option.minimum, maximum=option.maximum)
        return [_number(item, v, True, bad) for v in value]
    if not all(isinstance(v, str) and v.strip() in option.choices for v in value):
        raise bad
    items = [v.strip() for v in value]
    if len(set(items)) != len(items):   # each once
        raise bad
    return items


def split_pair(item: str) -> tuple[str, str]:
    """A 'pairs' item as (left, right), split at its first `=`."""
    left, _, right = item.partition("=")
    return left.strip(), right.strip()


def _pairs(value: Any, bad: InputError) -> list[str]:
    """A 'pairs' option's value as a new list of `LEFT=RIGHT` texts: a list, or one text
    (one item: paths may hold commas); each side non-empty."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not values:
        raise bad
    out = []
    for item in values:
        if not isinstance(item, str) or "\0" in item or "=" not in item or not all(split_pair(item)):
            raise bad
        out.append("=".join(split_pair(item)))
    return out


def _number(option: Option, value: Any, text: bool, bad: InputError) -> int | float:
    if isinstance(value, bool):   # a bool is an int in Python; not here
        raise bad
    if isinstance(value, str) and text:
        try:
            value = int(value) if option.kind == "int" else float(value)
        except ValueError:
            raise bad from None
    if option.kind == "int":
        if isinstance(value, float) and value.is_integer() and text:
            value = int(value)
        if not isinstance(value, int):
            raise bad
    else:
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad
        value = float(value)
    if (option.minimum is not None and value < option.minimum) or (
            option.maximum is not None and value > option.maximum):
        raise bad
    return value


_JSON_TYPES = {"bool": "boolean", "int": "integer", "float": "number", "str": "string", "choice": "string",
               "path": "string"}


def _items_property(option: Option) -> dict[str, Any]:
    """A 'list' or 'numbers' option's schema: an array, or the same items comma-separated
    in one string (what a multipart form field carries)."""
    if option.kind == "list":
        items: dict[str, Any] = {"type": "array", "items": {"type": "string", "enum": list(option.choices)},
                                 "minItems": 1, "uniqueItems": True}
    else:
        item: dict[str, Any] = {"type": "number"}
        if option.minimum is not None:
            item["minimum"] = option.minimum
        if option.maximum is not None:
            item["maximum"] = option.maximum
        items = {"type": "array", "items": item, "minItems": option.count or 1}
        if option.count:
            items["maxItems"] = option.count
    return {"anyOf": [items, {"type": "string", "description": "the items, comma-separated"}]}


def openapi_properties(table: dict[str, Option] | None = None, *, files: tuple[str, ...] = ()) -> dict[str, Any]:
    """The OpenAPI (JSON Schema) property of every option; `files`: options sent as
    uploaded files in a multipart form (binary), not as paths."""
    props: dict[str, Any] = {}
    for name, option in (table or job_options()).items():
        if name in files:
            prop: dict[str, Any] = {"type": "array", "items": {"type": "string", "format": "binary"}}
        elif option.kind == "paths":
            prop = {"type": "array", "items": {"type": "string"}}
        elif option.kind == "pairs":
            item = {"type": "string", "pattern": "^[^=]+=.+$"}
            prop = {"anyOf": [{"type": "array", "items": item, "minItems": 1}, item]}
        elif option.kind in ("list", "numbers"):
            prop = _items_property(option)
        else:
            prop = {"type": _JSON_TYPES[option.kind]}
        if option.kind not in ("list", "numbers"):   # theirs are the items' rules
            if option.choices:
                prop["enum"] = list(option.choices)
            if option.minimum is not None:
                prop["minimum"] = option.minimum
            if option.maximum is not None:
                prop["maximum"] = option.maximum
        if option.default is not None:
            prop["default"] = list(option.default) if isinstance(option.default, tuple) else option.default
        unit = f" ({option.unit})" if option.unit else ""
        prop["description"] = option.help + unit
        props[name] = prop
    return props
