"""Errors users can act on. Each carries a stable code and names the field at fault, so the CLI can
print one readable line and the REST API can return a 4xx JSON body."""

from __future__ import annotations


class LoudouError(Exception):
    """Base for errors caused by input; never for bugs."""

    code = "invalid_input"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "field": self.field, "message": self.message}


class SpecError(LoudouError):
    """A funnel spec (YAML, JSON or inline) is malformed."""

    code = "invalid_spec"


class ImportError_(LoudouError):
    """A file cannot be imported at all (unreadable, unknown format, no usable rows)."""

    code = "import_failed"


class StoreError(LoudouError):
    """The database cannot be opened or is of an unknown schema version."""

    code = "store_error"
