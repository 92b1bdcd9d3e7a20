"""The job option table (farm.options) as `farm submit` flags.

Each row becomes one Typer option: `--name-with-dashes VALUE`, a real flag for a
true/false option (`--overwrite`; `--no-enhance` for one that defaults to true), repeated
for a list of paths or of pairs (`--source A --source B`, `--map R1=S1 --map R2=S2`), one
comma-separated value for a list of choices or numbers (`--mask box,occlusion`, `--mask-padding 10,0,0,0`). Typer reads a command's parameters from
its signature, so `with_table_options` gives the command function a signature made from
the table. Numbers are parsed by Typer (a usage error, exit 2, for `--crf x` or
`--similarity nan`); ranges and choices are checked with every other origin's values by
farm.jobs.spec.check_options, so the rules live in the table.
"""

from __future__ import annotations

import inspect
import math
import typing
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from farm.options import Option

_ANNOTATIONS: dict[str, Any] = {"bool": bool, "int": Optional[int], "float": Optional[float], "str": Optional[str],
                                "choice": Optional[str], "path": Optional[str], "paths": list[Path],
                                "list": str | None, "numbers": str | None, "pairs": list[str]}


def finite(value: Optional[float]) -> Optional[float]:
    """A float option's callback: nan and inf are refused (a usage error, exit 2)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def _help(option: Option) -> str:
    """The flag's help: the table's text, unit and default (its label shows the range)."""
    text = option.help[:1].upper() + option.help[1:].rstrip(".")
    if option.kind == "bool" and option.default is True:
        text = f"Turn off: {option.help.rstrip('.')}"   # the --no- flag
    unit = f" ({option.unit})" if option.unit else ""
    if isinstance(option.default, tuple):   # a list or numbers option: its items, as written on the command line
        items = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in option.default)
        return f"{text}{unit}. Default {items}."
    default = f" Default {option.default:g}{unit}." if isinstance(option.default, (int, float)) and not isinstance(
        option.default, bool) else (f" Default {option.default}." if isinstance(option.default, str) else "")
    return f"{text}{unit if not default else ''}.{default}"


def metavar(name: str, option: Option) -> str:
    """The label of a flag's value: the table's, else for a list its first choice and more
    (`box[,...]`), for numbers one N each (`N,N,N,N`), else the choices
    (`all|largest|reference`), else the range (`0..1`), else the name in capitals."""
    if option.metavar:
        return option.metavar
    if option.kind == "list":
        return f"{option.choices[0]}[,...]"
    if option.kind == "numbers":
        return ",".join(["N"] * option.count) if option.count else "N[,N...]"
    if option.choices:
        return "|".join(option.choices)
    if option.minimum is not None and option.maximum is not None:
        return f"{option.minimum:g}..{option.maximum:g}"
    return name.upper()


def typer_parameter(name: str, option: Option) -> inspect.Parameter:
    """The keyword parameter Typer turns into this option's flag."""
    decls = [option.flag(name)] + ([option.short] if option.short else [])
    if option.kind == "bool":
        default = typer.Option(False, *decls, help=_help(option))
    else:
        default = typer.Option([] if option.kind in ("paths", "pairs") else None, *decls, help=_help(option),
                               metavar=metavar(name, option),
                               callback=finite if option.kind == "float" else None)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=_ANNOTATIONS[option.kind])


def with_table_options(function: Callable[..., Any], table: dict[str, Option]) -> Callable[..., Any]:
    """`function` (whose own parameters come first) taking every option of `table` too, as
    keyword arguments; Typer builds the command's flags from this signature."""
    hints = typing.get_type_hints(function)
    own = [p.replace(annotation=hints.get(p.name, p.annotation))
           for p in inspect.signature(function).parameters.values() if p.kind is not p.VAR_KEYWORD]
    params = own + [typer_parameter(name, option) for name, option in table.items()]

    def command(**kwargs: Any) -> Any:
        return function(**kwargs)

    command.__name__, command.__doc__ = function.__name__, function.__doc__
    command.__signature__ = inspect.Signature(params)   # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def given_options(values: dict[str, Any], table: dict[str, Option]) -> dict[str, Any]:
    """The table's options as given on the command line: name -> value for every flag
    given (a path as str, a list of paths as list[str]); flags not given are left out, so
    a spec file's values stand."""
    given: dict[str, Any] = {}
    for name, option in table.items():
        value = values.get(name)
        if option.kind == "bool":
            if value:   # the flag was given: it turns the option to the other side of its default
                given[name] = not option.default
            continue
        if value is None or (option.kind in ("paths", "pairs") and not value):
            continue
        given[name] = [str(v) for v in value] if option.kind in ("paths", "pairs") else (
            str(value) if option.kind == "path" else value)
    return given
