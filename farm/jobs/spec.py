"""Submit options as data: a job spec file (`farm submit --spec render.toml`), or the API's form.

A spec file holds committed render settings, with the CLI's option names (dashes or
underscores), at the top level or under a `[submit]` table:

    source = ["faces/alice.jpg"]      # paths are relative to the spec file's folder
    chunk_seconds = 2.0
    codec = "hevc"
    crf = 18
    priority = 7
    enhance = false

Unknown keys and values of the wrong type are refused (InputError naming the key and
the file). The same table of options checks the API's form fields, given as text.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Mapping

from farm.errors import InputError
from farm.faces.options import FACE_OPTIONS
from farm.options import convert, job_options, path_options, split_pair

SPEC_TABLE = "submit"
SPEC_MAX_BYTES = 1024 * 1024
"""A spec file is a page of settings; anything bigger is refused unread (bytes)."""

CLI, SPEC, REQUEST = "command line", "spec file", "request"
"""Where an option was given: a `farm submit` flag, a spec file's key, an API request's field."""

def option_name(key: str, origin: str) -> str:
    """How to name option `key` to the user who gave it: a flag on the command line
    (`--source`, `--chunk-seconds`), the key itself in a spec file or a request (`source`)."""
    if origin == CLI:
        option = job_options().get(key)
        return option.flag(key) if option is not None else "--" + key.replace("_", "-")
    return key


def option_origins(spec: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, str]:
    """Where each option of with_overrides(spec, given) came from: CLI for a value in
    `given` that is not None (it wins), else SPEC."""
    return {**{key: SPEC for key in spec}, **{key: CLI for key, value in given.items() if value is not None}}


def check_option(key: str, value: Any, origin: str, *, text: bool = False, names: str = SPEC) -> Any:
    """One option's value checked and converted (farm.options.convert); `text`: values
    come as strings (a form); `names`: how messages name it (option_name: CLI for flags).
    Returns bool/int/float/str, a str for a path, a list of str for `source`."""
    table = job_options()
    if key not in table:
        raise InputError(f"unknown option {key!r} in {origin}", hint="known options: " + ", ".join(table))
    return convert(option_name(key, names), table[key], value, origin, text=text)


def check_options(raw: Mapping[str, Any], origin: str, *, text: bool = False, names: str = SPEC) -> dict[str, Any]:
    """Every option of `raw` checked (keys may use dashes); see check_option."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name in out:
            raise InputError(f"option {name!r} is given twice in {origin}")
        out[name] = check_option(name, value, origin, text=text, names=names)
    return out


def load_spec(path: Path | str) -> dict[str, Any]:
    """Read a job spec file: a dict of the options it sets (and only those).

    Keys are the job options' names (farm.options.job_options, underscores). `source` is a list[Path], `output`
    and `reference` a Path, all absolute (relative ones are taken from the spec file's
    folder, `~` expanded); the others are bool, int, float or str as their Option says.
    """
    from farm.user_files import read_regular_file

    path = Path(path).expanduser()
    if not path.exists() and not path.is_symlink():
        raise InputError(f"spec file {path} does not exist")
    raw = read_regular_file(path, "spec file", SPEC_MAX_BYTES)   # a FIFO or device is refused, not read
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read spec file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"spec file {path} is not valid TOML: {exc}") from None
    if SPEC_TABLE in data:
        others = sorted(set(data) - {SPEC_TABLE})
        if others:
            raise InputError(f"unknown key {others[0]!r} in spec file {path}",
                             hint=f"put every option either at the top level or under [{SPEC_TABLE}]")
        data = data[SPEC_TABLE]
        if not isinstance(data, dict):
            raise InputError(f"[{SPEC_TABLE}] in spec file {path} must be a table")
    for key, value in data.items():
        if isinstance(value, dict):
            raise InputError(f"unknown table [{key}] in spec file {path}",
                             hint=f"options go at the top level or under [{SPEC_TABLE}]")
    options = check_options(data, f"spec file {path}")
    base = path.absolute().parent
    table = job_options()
    for key in path_options(table):
        value, option = options.get(key), table[key]
        if value is None or value in option.words:
            continue
        if option.kind == "pairs":   # both sides of each LEFT=RIGHT, kept as text
            options[key] = ["=".join(str((base / Path(side).expanduser()).absolute()) for side in split_pair(item))
                            for item in value]
            continue
        many = option.kind == "paths"
        resolved = [(base / Path(p).expanduser()).absolute() for p in (value if many else [value])]
        options[key] = resolved if many else resolved[0]
    return options


def with_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` (a spec) with every option of `overrides` that is not None put over it."""
    out = dict(base)
    out.update({k: v for k, v in overrides.items() if v is not None})
    return out


def map_sources(options: Mapping[str, Any], sources: list[Path], where: str) -> list[Path]:
    """The images a --map job swaps in (each mapping's source, then --map-others'), which
    stand for --source; InputError when --source is given too or a named file is missing."""
    if sources:
        raise InputError(f"{option_name('source', where)} and {option_name('map', where)} are given together",
                         hint=f"with {option_name('map', where)} give everyone else's face as "
                              f"{option_name('map_others', where)} IMAGE, not {option_name('source', where)}")
    others = options.get("map_others")
    pairs = [split_pair(item) for item in options["map"]]
    named = [(side, option_name("map", where)) for pair in pairs for side in pair]
    named += [(str(others), option_name("map_others", where))] if others not in (None, "keep") else []
    for side, flag in named:
        path = Path(side).expanduser()
        if not path.exists() and not (path.parent / "faces.json").is_file():
            raise InputError(f"{flag} names {side}, which does not exist",
                             hint="give an image of the person (a `farm faces` crop), or FOLDER/person-N of "
                                  "a `farm faces` folder, = the image of the face to swap in")
    return [Path(right) for _, right in pairs] + ([Path(others)] if others not in (None, "keep") else [])


def submit_request(video: Path, options: Mapping[str, Any], origins: Mapping[str, str] | None = None,
                   where: str = REQUEST, spec: Path | None = None) -> Any:
    """A SubmitRequest for `video` from checked options, with the CLI's defaults and rules.

    `origins` says where each option was given (option_origins) and `where` where the request
    is made (CLI or REQUEST), so messages name an option as the user wrote it; `spec` is the
    spec file, if any, for the hint of a missing source.
    """
    from farm.jobs.submit import SubmitRequest

    passthrough = bool(options.get("passthrough", False))
    sources = [Path(p) for p in options.get("source") or []]
    if options.get("map") and not passthrough:
        sources = map_sources(options, sources, where)
    if not sources and not passthrough:
        hint = (f"give {option_name('source', where)} (an image of the face), "
                f"or {option_name('passthrough', where)} to only re-encode")
        if spec is not None:
            hint += f"; or set source = [...] or passthrough = true in spec file {spec}"
        raise InputError("no source image given: farm needs the face to swap in", hint=hint)
    face_options = {key: str(value) if isinstance(value, Path) else value
                    for key, value in options.items() if key in FACE_OPTIONS and value is not None}
    output = options.get("output")
    return SubmitRequest(
        video=Path(video), sources=[] if passthrough else sources,
        output=Path(output) if output is not None else None,
        overwrite=bool(options.get("overwrite", False)), keep_chunks=bool(options.get("keep_chunks", False)),
        chunk_seconds=options.get("chunk_seconds"), codec=options.get("codec"), preset=options.get("preset"),
        crf=options.get("crf"), priority=int(options.get("priority", 5)), models=options.get("models"),
        precision=str(options.get("precision") or "auto"),
        face_options=face_options, consent=options.get("consent"), origins=dict(origins or {}), where=where,
    )
