"""The ``loudou`` command line: a thin layer over the Python API, one module per command group.

Input errors print one line (``error: FIELD: problem``) and exit 1; usage errors exit 2.
New command groups: see CONTRIBUTING.md (shared working tree: commit only your own files).
"""

from __future__ import annotations

import sys

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
        err.print(Text("error: ", style="red") + Text(str(e)), highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
