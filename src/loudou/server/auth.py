"""Who is calling: a key from HTTP Basic (key as user name, as Segment sends it), a Bearer token,
or a ``writeKey`` field in a tracking body (what browsers' sendBeacon can send)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import Request, Security
from fastapi.security import HTTPBasic, HTTPBearer

from loudou.backends.base import ApiKey
from loudou.server.errors import ApiError

if TYPE_CHECKING:
    from loudou.server.app import ServerState

# Declared for the OpenAPI page only; parsing below accepts both forms.
basic_scheme = HTTPBasic(auto_error=False, description="The key as user name, no password.")
bearer_scheme = HTTPBearer(auto_error=False, description="The key as a Bearer token.")


def header_key(request: Request) -> str | None:
    """The key in the Authorization header, if any (never logged)."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip() or None
    if scheme == "basic":
        try:
            user, _, password = (
                base64.b64decode(value.strip(), validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(
                "unauthorized", "cannot read the Basic credentials", "authorization"
            ) from None
        return user or password or None
    raise ApiError("unauthorized", "use HTTP Basic (key as user name) or Bearer", "authorization")


def authorize(state: ServerState, secret: str | None, roles: tuple[str, ...], what: str) -> ApiKey:
    if not secret:
        raise ApiError(
            "unauthorized", "send an API key as the HTTP Basic user name", "authorization"
        )
    key = state.ring.check(secret)
    if key is None:
        raise ApiError("unauthorized", "unknown or revoked key", "authorization")
    if key.role not in roles:
        raise ApiError("forbidden", f"a {key.role} key cannot {what}", "authorization")
    return key


def require(*roles: str, what: str) -> Callable[..., ApiKey]:
    """A dependency admitting keys of these roles."""

    def dependency(
        request: Request,
        _basic: object = Security(basic_scheme),
        _bearer: object = Security(bearer_scheme),
    ) -> ApiKey:
        return authorize(request.app.state.loudou, header_key(request), roles, what)

    return dependency
