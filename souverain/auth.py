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
import time
from dataclasses import dataclass
from typing import Protocol

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


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One row of the key table, as every backend stores it."""

    id: str
    name: str
    tenant: str
    scopes: str  # comma-separated
    models: str | None  # a JSON list, or None for every model
    secret_hash: str
    created_at: float
    revoked_at: float | None

    def info(self) -> KeyInfo:
        models = json.loads(self.models) if self.models else None
        return KeyInfo(
            self.id, self.name, self.tenant, self.scopes.split(","), models, self.created_at, self.revoked_at
        )


class KeyTable(Protocol):
    """Where keys are kept (souverain/state/keys.py: SQLite, PostgreSQL), and this
    process's copy of them. `find()` is what authentication calls on every request: it
    answers from an in-memory copy kept current by the backend's own means, not a database
    round trip, and raises `StateUnavailable` (503) rather than answer from a copy that it
    cannot vouch for and a database it cannot reach."""

    kind: str

    def insert(self, record: KeyRecord) -> None: ...

    def insert_first(self, record: KeyRecord) -> bool:
        """Insert the record only if the table holds no active key, atomically against
        every other process sharing the table; whether it was inserted."""

    def revoke(self, key_id: str, at: float) -> bool:
        """Mark the key revoked if it is active; whether it was. Every process that shares
        the table stops accepting it within the backend's bound."""

    def records(self) -> list[KeyRecord]:
        """Every key, read from the database now, oldest first."""

    def find(self, key_id: str) -> KeyRecord | None: ...

    def close(self) -> None: ...


class KeyStore:
    """Create, list, revoke and authenticate API keys over a `KeyTable` (the tables are
    `souverain.state.keys`'s; `souverain.state.open_keys` picks the one `state:` names)."""

    def __init__(self, table: KeyTable) -> None:
        self.table = table

    def close(self) -> None:
        self.table.close()

    def create(
        self,
        name: str,
        *,
        tenant: str = "default",
        scopes: tuple[str, ...] = ("inference",),
        models: list[str] | None = None,
    ) -> tuple[str, KeyInfo]:
        """Make a key; the full token is returned here and never again."""
        token, record = self._new(name, tenant, scopes, models)
        self.table.insert(record)
        return token, record.info()

    def create_first(self, name: str, *, scopes: tuple[str, ...]) -> str | None:
        """Make a key only if there is no active key yet (a first start): its token, or
        None when there is one, or when another process starting at the same time (a
        replica, a worker) made it first. So a deployment gets one first key, not one per
        replica."""
        token, record = self._new(name, "default", scopes, None)
        return token if self.table.insert_first(record) else None

    @staticmethod
    def _new(name: str, tenant: str, scopes: tuple[str, ...], models: list[str] | None) -> tuple[str, KeyRecord]:
        if not TENANT.fullmatch(tenant):
            raise ValueError(
                f"tenant {tenant!r} must be letters, digits and . _ : / @ + - (starting with a letter or digit)"
            )
        for scope in scopes:
            if scope not in SCOPES:
                raise ValueError(f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        record = KeyRecord(
            key_id,
            name,
            tenant,
            ",".join(scopes),
            json.dumps(models) if models is not None else None,
            _hash(secret),
            time.time(),
            None,
        )
        return f"{PREFIX}{key_id}-{secret}", record

    def list(self) -> list[KeyInfo]:
        return [record.info() for record in self.table.records()]

    def revoke(self, key_id: str) -> bool:
        return self.table.revoke(key_id, time.time())

    def authenticate(self, authorization: str | None) -> Principal:
        """Map an `Authorization: Bearer ...` header to a principal, or raise 401. Reads the
        process's copy of the keys (`KeyTable.find`), not the database."""
        if not authorization:
            raise Unauthorized("Missing API key: send it as `Authorization: Bearer <key>`.")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(PREFIX):
            raise Unauthorized("Invalid API key.")
        key_id, sep, secret = token[len(PREFIX) :].partition("-")
        record = self.table.find(key_id) if sep and len(key_id) == 12 else None
        # Compare even when the row is missing so that timing does not reveal which ids exist.
        expected = record.secret_hash if record else _hash("")
        matches = hmac.compare_digest(expected, _hash(secret))
        if record is None or not matches:
            raise Unauthorized("Invalid API key.")
        if record.revoked_at is not None:
            raise Unauthorized("This API key has been revoked.", code="revoked_api_key")
        models = frozenset(json.loads(record.models)) if record.models else None
        return Principal(key_id, record.name, record.tenant, frozenset(record.scopes.split(",")), models)
