"""Where renderers are registered, per result type: a terminal view (rich tables or lines, in a
language) and, where a result has one, CSV rows. The JSON view is every result's own
``to_dict()``. Result types are named by their import path, so registering imports no analysis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console

Terminal = Callable[[Any, str, Console], None]
Rows = Callable[[Any], list[dict[str, Any]]]
Document = Callable[[Any], dict[str, Any]]

TERMINAL: dict[str, Terminal] = {}
CSV: dict[str, Rows] = {}
JSON: dict[str, Document] = {}  # only where the JSON adds words to ``to_dict()``


def key(result_type: type | str) -> str:
    if isinstance(result_type, str):
        return result_type
    return f"{result_type.__module__}.{result_type.__qualname__}"


def terminal(result_type: str) -> Callable[[Terminal], Terminal]:
    """Register the terminal view of results of ``result_type`` ("module.Class")."""

    def add(view: Terminal) -> Terminal:
        TERMINAL[result_type] = view
        return view

    return add


def csv_rows(result_type: str) -> Callable[[Rows], Rows]:
    """Register the CSV rows of results of ``result_type``."""

    def add(rows: Rows) -> Rows:
        CSV[result_type] = rows
        return rows

    return add


def json_view(result_type: str) -> Callable[[Document], Document]:
    """Register the JSON document of results of ``result_type`` (default: ``to_dict()``)."""

    def add(document: Document) -> Document:
        JSON[result_type] = document
        return document

    return add
