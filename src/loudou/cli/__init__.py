"""The ``loudou`` command line: a thin layer over the Python API, one module per command group.

Input errors print one line (``error: FIELD: problem``) and exit 1; usage errors exit 2.
New command groups: see CONTRIBUTING.md (shared working tree: commit only your own files).
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.text import Text

from loudou.cli import (
    customers,
    demo,
    funnel,
    generated,
    imports,
    keys,
    kpi,
    segments,
    serve,
    templates,
)
from loudou.cli.common import err
from loudou.errors import LoudouError

app = typer.Typer(
    help="loudou (漏斗): customer-funnel analytics. Import events, then ask for funnels.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each command module registers its commands (``generated``: the analyses of the registry).
for _module in (funnel, imports, templates, kpi, segments, generated, customers, keys, serve, demo):
    _module.register(app)


def main() -> None:
    """Entry point: input errors become one readable line and exit code 1."""
    try:
        app()
    except LoudouError as e:
        e.field = cli_spelling(e.field, sys.argv[1:])
        err.print(Text("error: ", style="red") + Text(str(e)), highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


def cli_spelling(field: str | None, argv: list[str]) -> str | None:
    """An error's field as the invoked command spells it: analyses name their parameters
    (``min_customers``), the command line its options (``--min-customers``). Where a field may
    also come from a spec file, only an option the user typed is named as one (a spec file's
    ``mode`` stays ``mode``)."""
    if not field or field.startswith("-"):
        return field
    command: Any = app if hasattr(app, "params") else typer.main.get_command(app)
    args = list(argv)
    while hasattr(command, "get_command"):  # a group: descend into the invoked command
        name = next((a for a in args if not a.startswith("-")), None)
        found = None if name is None else command.get_command(None, name)
        if found is None or name is None:
            break
        args = args[args.index(name) + 1 :]
        command = found
    from_file = any(p.param_type_name == "argument" for p in command.params)  # a spec file
    for param in command.params:
        if param.name == field and param.param_type_name == "option":
            given = [o for o in param.opts for a in args if a == o or a.startswith(o + "=")]
            if given or not from_file:
                return str((given or param.opts)[0])
    return field
