"""`--help` that reads like ordinary command-line help.

Typer labels every option with its Python type (`--overwrite <bool>`, `--source
<list[Path]>`) and puts a required argument in braces on the usage line (`{VIDEO}`).
Here a flag gets no label at all, an option without a metavar of its own gets its name in
capitals (`--port PORT`), and an argument reads `VIDEO` (optional: `[JOB_ID]`), as argparse
and most tools print them.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperOption


def plain_metavar(param: Any) -> Any:
    """Give one parameter a plain label (flags: none); returns it for chaining."""
    if isinstance(param, TyperOption):
        if param.is_flag:
            param.metavar = ""
        elif param.metavar is None:
            param.metavar = (param.name or "value").upper()
    elif isinstance(param, TyperArgument):
        if param.metavar is None:
            param.metavar = (param.name or "arg").upper()
        param.display_type_rich = lambda ctx: None   # its name says it: VIDEO, JOB_ID
        param._usage_display_name = lambda: _usage_name(param)
    return param


def _usage_name(argument: Any) -> str:
    """An argument on the usage line: `VIDEO`, `[JOB_ID]`, `[NAMES]...`."""
    name = argument.metavar if argument.required else f"[{argument.metavar}]"
    return name + ("..." if argument.nargs != 1 else "")


def plain_help(command: Any) -> Any:
    """Plain labels on every parameter of `command` and of its subcommands (and --help)."""
    for param in getattr(command, "params", []):
        plain_metavar(param)
    get_help_option = command.get_help_option

    def plain_help_option(ctx: Any) -> Any:
        option = get_help_option(ctx)
        return plain_metavar(option) if option is not None else None

    command.get_help_option = plain_help_option
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
    return command
