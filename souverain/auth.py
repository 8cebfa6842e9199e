"""API keys: issued once, stored only as a hash, compared in constant time.

A key looks like `sk-sv-<id>-<secret>`. The id (public, 12 hex) finds the row; the secret
(256 random bits) is hashed with SHA-256 and compared with `hmac.compare_digest`. A slow
password hash is not needed: the secret is random and long, not a human password.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass

from souverain.errors import Unauthorized

PREFIX = "sk-sv-"
# inference: /v1; auditor: the ledger's entries of the key's own tenant; auditor:all: the
# ledger's entries of every tenant (the organisation's own auditors); metrics: /metrics
# when `hardening.metrics` is `key`; admin: everything.
SCOPES = ("inference", "auditor", "auditor:all", "metrics", "admin")
TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: what authenticate hands to the rest of the pipeline."""

    key_id: str
    name: str
    tenant: str
    scopes: frozenset[str]
    models: frozenset[str] | None  # None: every model

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: str
    name: str
    tenant: str
    scopes: list[str]
    models: list[str] | None
    created_at: float
    revoked_at: float | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def close(self) -> None:
        self._db.close()

    def create(
        self,
        name: str,
        *,
        tenant: str = "default",
        scopes: tuple[str, ...] = ("inference",),
        models: list[str] | None = None,
    ) -> tuple[str, KeyInfo]:
        """Make a key; the full token is returned here and never again."""
        if not TENANT.fullmatch(tenant):
            raise ValueError(f"tenant {tenant!r} must be letters, digits and . _ : / @ + - (starting with a letter or digit)")
        for scope in scopes:
            if scope not in SCOPES:
                raise ValueError(f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = time.time()
        self._db.execute(
            "INSERT INTO api_keys (id, name, tenant, scopes, models, secret_hash, created_at) VALUES (?,?,?,?,?,?,?)",
            (key_id, name, tenant, ",".join(scopes), json.dumps(models) if models is not None else None, _hash(secret), now),
        )
        return f"{PREFIX}{key_id}-{secret}", KeyInfo(key_id, name, tenant, list(scopes), models, now, None)

    def list(self) -> list[KeyInfo]:
        rows = self._db.execute(
            "SELECT id, name, tenant, scopes, models, created_at, revoked_at FROM api_keys ORDER BY created_at"
        ).fetchall()
        return [
            KeyInfo(r[0], r[1], r[2], r[3].split(","), json.loads(r[4]) if r[4] else None, r[5], r[6]) for r in rows
        ]

    def revoke(self, key_id: str) -> bool:
        cur = self._db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), key_id)
        )
        return cur.rowcount == 1

    def count_active(self) -> int:
        return self._db.execute("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()[0]

    def authenticate(self, authorization: str | None) -> Principal:
        """Map an `Authorization: Bearer ...` header to a principal, or raise 401."""
        if not authorization:
            raise Unauthorized("Missing API key: send it as `Authorization: Bearer <key>`.")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(PREFIX):
            raise Unauthorized("Invalid API key.")
        key_id, sep, secret = token[len(PREFIX) :].partition("-")
        row = None
        if sep and len(key_id) == 12:
            row = self._db.execute(
                "SELECT name, tenant, scopes, models, secret_hash, revoked_at FROM api_keys WHERE id = ?", (key_id,)
            ).fetchone()
        # Compare even when the row is missing so that timing does not reveal which ids exist.
        expected = row[4] if row else _hash("")
        matches = hmac.compare_digest(expected, _hash(secret))
        if row is None or not matches:
            raise Unauthorized("Invalid API key.")
        if row[5] is not None:
            raise Unauthorized("This API key has been revoked.", code="revoked_api_key")
        models = frozenset(json.loads(row[3])) if row[3] else None
        return Principal(key_id, row[0], row[1], frozenset(row[2].split(",")), models)
