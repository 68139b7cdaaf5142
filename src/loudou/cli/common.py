"""Shared pieces of the command line: consoles, common options, language and store opening."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from loudou.backends import Store, connect, default_path
from loudou.errors import LoudouError
from loudou.present.i18n import default_lang

# Piped output keeps whole table rows instead of wrapping at 80 columns.
out = Console() if sys.stdout.isatty() else Console(width=200)
err = Console(stderr=True)

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="LOUDOU_DB",
        help="Database: a file path (default ./loudou.duckdb) or a backend URL (duckdb:///path).",
        show_default=False,
    ),
]
LangOpt = Annotated[
    str | None, typer.Option("--lang", help="Labels in 'en' or 'zh' (default: from the locale).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
SpecArg = Annotated[Path, typer.Argument(help="Funnel spec YAML file.")]


def resolve_lang(lang: str | None) -> str:
    """--lang if given (en or zh), else the locale's language."""
    if lang is None:
        return default_lang()
    if lang not in ("en", "zh"):
        raise LoudouError(f"unknown language {lang!r}; use en or zh", "--lang")
    return lang


def open_store(db: str | Path | None, read_only: bool = False) -> Store:
    """Open --db (or $LOUDOU_DB, or ./loudou.duckdb); readers open read-only."""
    return connect(db if db is not None else default_path(), read_only=read_only)


@contextmanager
def opened(db: str | Path | None, read_only: bool = False) -> Iterator[Store]:
    """``open_store`` for a ``with`` block: the store is closed however the block ends."""
    store = open_store(db, read_only=read_only)
    try:
        yield store
    finally:
        store.close()


def working(what: str) -> AbstractContextManager[object]:
    """A spinner on stderr while long work runs, when stderr is a terminal."""
    return err.status(what, spinner="dots") if err.is_terminal else nullcontext()


def write_csv(
    rows: list[dict[str, Any]], output: Path | None, fields: list[str] | None = None
) -> None:
    """Rows as CSV to ``output`` or standard output (times as ISO text, nulls empty)."""
    handle = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        names = fields or (list(rows[0]) if rows else [])
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if output:
            handle.close()
