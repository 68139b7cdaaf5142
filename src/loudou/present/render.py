"""Show a result: its registered terminal view or CSV rows (:mod:`loudou.present.views`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

import loudou.present.messages  # noqa: F401  (registers the views)
import loudou.present.tables  # noqa: F401
from loudou.present.views import CSV, JSON, TERMINAL, key


def show(result: Any, lang: str, console: Console) -> None:
    """The terminal view of a result, in ``lang``."""
    TERMINAL[key(type(result))](result, lang, console)


def has_csv(result_type: type | str) -> bool:
    return key(result_type) in CSV


def rows_of(result: Any) -> list[dict[str, Any]]:
    return CSV[key(type(result))](result)


def document(result: Any) -> dict[str, Any]:
    """The JSON document of a result: what ``--json`` prints and the HTTP route answers."""
    view = JSON.get(key(type(result)))
    doc: dict[str, Any] = view(result) if view is not None else result.to_dict()
    return doc
