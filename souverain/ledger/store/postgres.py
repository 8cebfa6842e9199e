"""The scale-out store: PostgreSQL, shared by any number of gateway processes.

Indexes come from a counter row (`ledger_counter.next`) updated inside the sequencing
transaction: the row lock serialises sequencers across processes, and the counter rolls
back with a failed transaction, so committed indexes are gapless and commit in index order
(the integrator never sees entry n+1 before entry n). Entries go in with COPY. A commit is
durable when it returns under PostgreSQL's default `synchronous_commit = on`.

One integrator at a time holds a session-level advisory lock; PostgreSQL drops it when the
holder's connection dies. `publish` also re-checks the tree size under the `tree` counter
row, so a stale integrator cannot overwrite a newer tree.

Tables live in the configured schema (default `souverain_ledger`), so one database can hold
the ledger next to other state.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from souverain.ledger.store.base import ContentRow, SqlQueries, StoreConflict, StoreError
from souverain.ledger.tiles import TileKey
from souverain.state.migrate import Migration, migrate_postgres

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_counter (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO ledger_counter (name, value) VALUES ('next', 0), ('tree', -1) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS ledger_entries (idx BIGINT PRIMARY KEY, data BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_tiles (
    level INTEGER NOT NULL, idx BIGINT NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (level, idx)
);
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    size BIGINT PRIMARY KEY, note TEXT NOT NULL, created DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_content (
    idx BIGINT PRIMARY KEY, tenant TEXT NOT NULL, kek TEXT NOT NULL, sealed BYTEA NOT NULL,
    created DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_content_tenant ON ledger_content (tenant);
CREATE INDEX IF NOT EXISTS ledger_content_created ON ledger_content (created);
CREATE TABLE IF NOT EXISTS ledger_data_keys (
    kek TEXT PRIMARY KEY, tenant TEXT NOT NULL, wrapped BYTEA NOT NULL,
    created DOUBLE PRECISION NOT NULL, retired DOUBLE PRECISION
);
CREATE UNIQUE INDEX IF NOT EXISTS ledger_data_keys_current ON ledger_data_keys (tenant) WHERE retired IS NULL;
"""

# The ledger's schema versions in `souverain_migrations` (souverain/state/migrate.py);
# append, never edit one that shipped. Version 1 is the schema of the releases before
# migrations: IF NOT EXISTS and ON CONFLICT make it a no-op on their schemas.
MIGRATIONS = (Migration(1, "ledger", tuple(s.strip() for s in SCHEMA.split(";") if s.strip())),)


def _lock_key(schema: str, purpose: str) -> int:
    digest = hashlib.sha256(f"souverain-ledger:{schema}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresStore(SqlQueries):
    PARAM = "%s"
    kind = "postgres"

    def __init__(self, dsn: str, schema: str = "souverain_ledger") -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise StoreError("the postgres ledger store needs the psycopg package") from exc
        if not _SCHEMA_NAME.match(schema):
            raise StoreError(f"schema name {schema!r} must match {_SCHEMA_NAME.pattern}")
        self.schema = schema
        self._psycopg = psycopg
        try:
            self._db = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from None
        self._lock_held = False
        try:
            # Versioned, under an advisory lock: concurrent first starts migrate once.
            migrate_postgres(self._db, schema, "ledger", MIGRATIONS)
        except BaseException:
            self._db.close()
            raise

    # -- sequencing ----------------------------------------------------------------------
    def sequence(self, leaves: Sequence[bytes], contents: Sequence[ContentRow | None]) -> int:
        db = self._db
        with db.transaction():
            (end,) = _row(
                db.execute(
                    "UPDATE ledger_counter SET value = value + %s WHERE name = 'next' RETURNING value", (len(leaves),)
                ).fetchone()
            )
            first = int(end) - len(leaves)
            with db.cursor() as cur:
                with cur.copy("COPY ledger_entries (idx, data) FROM STDIN") as copy:
                    for i, leaf in enumerate(leaves, first):
                        copy.write_row((i, leaf))
                rows = [(first + i, c.tenant, c.kek, c.sealed, c.created) for i, c in enumerate(contents) if c]
                if rows:
                    with cur.copy("COPY ledger_content (idx, tenant, kek, sealed, created) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
        return first

    def sequenced_size(self) -> int:
        return int(_row(self._db.execute("SELECT value FROM ledger_counter WHERE name = 'next'").fetchone())[0])

    # -- the tree ------------------------------------------------------------------------
    def tree_size(self) -> int:
        return int(_row(self._db.execute("SELECT value FROM ledger_counter WHERE name = 'tree'").fetchone())[0])

    def publish(self, old_size: int, new_size: int, tiles: Mapping[TileKey, bytes], checkpoint: str) -> None:
        db = self._db
        with db.transaction():
            (current,) = _row(db.execute("SELECT value FROM ledger_counter WHERE name = 'tree' FOR UPDATE").fetchone())
            if current != old_size:
                raise StoreConflict(f"tree size is {current}, integrator expected {old_size}")
            with db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO ledger_tiles (level, idx, data) VALUES (%s, %s, %s) "
                    "ON CONFLICT (level, idx) DO UPDATE SET data = EXCLUDED.data",
                    [(level, index, data) for (level, index), data in tiles.items()],
                )
            db.execute(
                "INSERT INTO ledger_checkpoints (size, note, created) VALUES (%s, %s, %s)",
                (new_size, checkpoint, time.time()),
            )
            db.execute("UPDATE ledger_counter SET value = %s WHERE name = 'tree'", (new_size,))

    def try_lock_integrator(self) -> bool:
        if not self._lock_held:
            (got,) = _row(
                self._db.execute("SELECT pg_try_advisory_lock(%s)", (_lock_key(self.schema, "integrator"),)).fetchone()
            )
            self._lock_held = bool(got)
        return self._lock_held

    def unlock_integrator(self) -> None:
        if self._lock_held:
            self._db.execute("SELECT pg_advisory_unlock(%s)", (_lock_key(self.schema, "integrator"),))
            self._lock_held = False

    # -- keys ----------------------------------------------------------------------------
    def retire_keys(self, tenant: str) -> list[str]:
        db = self._db
        with db.transaction():
            names = [
                r[0] for r in db.execute("SELECT kek FROM ledger_data_keys WHERE tenant = %s FOR UPDATE", (tenant,))
            ]
            db.execute(
                "UPDATE ledger_data_keys SET wrapped = '\\x'::bytea, retired = coalesce(retired, %s) WHERE tenant = %s",
                (time.time(), tenant),
            )
            db.execute("DELETE FROM ledger_content WHERE tenant = %s", (tenant,))
        return names

    def close(self) -> None:
        try:
            self._db.close()  # also releases the advisory lock
        finally:
            self._lock_held = False


def _row(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """A row the schema always holds (the counters), or a StoreError saying it is gone."""
    if row is None:
        raise StoreError("the ledger's counter rows are missing: the schema was changed outside souverain")
    return row
