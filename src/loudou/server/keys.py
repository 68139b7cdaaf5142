"""API keys: random secrets shown once, stored as sha256 hashes, checked in constant time.

A key is 32 random bytes (URL-safe base64) behind a role prefix (``ldw_`` write, ``ldr_`` read,
``lda_`` admin). sha256 without salt is enough for keys this random: there is nothing to guess.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from loudou.backends.base import ApiKey, KeyStore
from loudou.errors import LoudouError

ROLES = ("write", "read", "admin")
_PREFIX = {"write": "ldw_", "read": "ldr_", "admin": "lda_"}


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_key(role: str, name: str | None = None) -> tuple[str, ApiKey]:
    """A fresh secret and the record to store (which holds only its hash)."""
    if role not in ROLES:
        raise LoudouError(f"unknown role {role!r}; use write, read or admin", "--role")
    secret = _PREFIX[role] + secrets.token_urlsafe(32)
    record = ApiKey(
        key_id=secrets.token_hex(6),
        role=role,
        key_hash=hash_key(secret),
        created_at=datetime.now(UTC).replace(tzinfo=None),
        name=name,
    )
    return secret, record


def key_info(key: ApiKey) -> dict[str, object]:
    """What may be shown about a stored key (never the hash)."""
    return {
        "id": key.key_id,
        "role": key.role,
        "name": key.name,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def as_key_store(store: object) -> KeyStore:
    if not isinstance(store, KeyStore):
        raise LoudouError("this store cannot hold API keys", "db")
    return store


@dataclass
class KeyRing:
    """The server's view of the keys: every check compares against every key, so the time taken
    does not depend on which key (if any) matched."""

    keys: list[ApiKey] = field(default_factory=list)

    def check(self, secret: str) -> ApiKey | None:
        digest = hash_key(secret)
        found = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.key_hash) and key.revoked_at is None:
                found = key
        return found

    def replace(self, keys: list[ApiKey]) -> None:
        self.keys = list(keys)

    def add(self, key: ApiKey) -> None:
        self.keys = [*self.keys, key]
