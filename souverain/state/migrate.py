"""Versioned schema migrations, run at start under a lock, for SQLite and PostgreSQL.

Each part of the state (the API keys, the ledger) owns a list of `Migration`s per backend,
numbered 1, 2, 3... A process brings its part up to the last version it knows when it
opens the database, and refuses to run against a schema newer than that (an older
Souverain meeting a database that a newer one has migrated) with `SchemaTooNew`.

- SQLite: one part per file. The version is the file's `PRAGMA user_version`; the
  migration runs inside `BEGIN IMMEDIATE`, so concurrent starters queue on SQLite's write
  lock and the second finds the work done.
- PostgreSQL: several parts share one schema. `souverain_migrations` holds a row per
  applied (part, version); the migration runs in one transaction under a transaction-level
  advisory lock on the schema, so concurrent replicas migrate once, and DDL rolls back with
  a failed step (PostgreSQL's DDL is transactional).

Both keep the history (part, version, name, time) so an operator can see what ran when.
The check on the version is a single read when nothing is to do: stores open connections
often, and only a start that finds work takes the lock.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg


class StateError(RuntimeError):
    """The state cannot be opened as configured; the message is one line for the operator."""


class SchemaTooNew(StateError):
    pass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


HISTORY_SQLITE = (
    "CREATE TABLE IF NOT EXISTS souverain_migrations ("
    "part TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_at REAL NOT NULL, "
    "PRIMARY KEY (part, version))"
)
HISTORY_POSTGRES = (
    "CREATE TABLE IF NOT EXISTS souverain_migrations ("
    "part TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL, "
    "PRIMARY KEY (part, version))"
)


def _check(migrations: Sequence[Migration]) -> int:
    versions = [m.version for m in migrations]
    assert versions == list(range(1, len(versions) + 1)), f"migrations must be numbered 1..n, got {versions}"
    return len(versions)


def _too_new(where: str, part: str, found: int, known: int) -> SchemaTooNew:
    from souverain import __version__

    return SchemaTooNew(
        f"{where}: the {part} schema is at version {found}, newer than this Souverain ({__version__}) knows "
        f"(up to {known}); run the newer Souverain that migrated it, or restore the backup taken before the upgrade"
    )


def migrate_sqlite(db: sqlite3.Connection, part: str, migrations: Sequence[Migration], where: str) -> int:
    """Bring the file's schema to the last migration's version; returns how many ran.
    `db` must be in autocommit mode (isolation_level=None)."""
    latest = _check(migrations)
    (current,) = db.execute("PRAGMA user_version").fetchone()
    if current == latest:
        return 0
    if current > latest:
        raise _too_new(where, part, current, latest)
    db.execute("BEGIN IMMEDIATE")
    try:
        (current,) = db.execute("PRAGMA user_version").fetchone()  # another process may have run them
        if current > latest:
            raise _too_new(where, part, current, latest)
        db.execute(HISTORY_SQLITE)
        ran = _apply(db, part, migrations[current:], "?")
        db.execute(f"PRAGMA user_version = {latest:d}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return ran


def lock_key(schema: str, purpose: str) -> int:
    """A 64-bit advisory lock key for (schema, purpose)."""
    digest = hashlib.sha256(f"souverain:{schema}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _postgres_version(db: psycopg.Connection[tuple[Any, ...]], schema: str, part: str) -> int:
    (table,) = db.execute("SELECT to_regclass(%s)", (f'"{schema}".souverain_migrations',)).fetchone() or (None,)
    if table is None:
        return 0
    row = db.execute(
        f'SELECT coalesce(max(version), 0) FROM "{schema}".souverain_migrations WHERE part = %s', (part,)
    ).fetchone()
    return int(row[0]) if row else 0


def migrate_postgres(
    db: psycopg.Connection[tuple[Any, ...]], schema: str, part: str, migrations: Sequence[Migration]
) -> int:
    """Bring `part` of `schema` to the last migration's version; returns how many ran.
    `db` must be in autocommit mode; its search_path is left at `schema`."""
    latest = _check(migrations)
    where = f"PostgreSQL schema {schema}"
    current = _postgres_version(db, schema, part)
    if current > latest:
        raise _too_new(where, part, current, latest)
    ran = 0
    if current < latest:
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(schema, "migrate"),))
            db.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            db.execute(f'SET LOCAL search_path TO "{schema}"')
            db.execute(HISTORY_POSTGRES)
            current = _postgres_version(db, schema, part)
            if current > latest:
                raise _too_new(where, part, current, latest)
            ran = _apply(db, part, migrations[current:], "%s")
    db.execute(f'SET search_path TO "{schema}"')
    return ran


def _apply(db: Any, part: str, pending: Sequence[Migration], param: str) -> int:
    """Run `pending` in order inside the caller's transaction, each recorded in the
    history table; `param` is the driver's placeholder (`?` SQLite, `%s` psycopg)."""
    insert = f"INSERT INTO souverain_migrations (part, version, name, applied_at) VALUES ({', '.join([param] * 4)})"
    for migration in pending:
        for statement in migration.statements:
            db.execute(statement)
        db.execute(insert, (part, migration.version, migration.name, time.time()))
    return len(pending)


def use_wal(db: sqlite3.Connection, tries: int = 100) -> None:
    """Put a SQLite file in WAL mode (readers beside one writer), once for every process
    that opens it. The switch needs the file to itself, and SQLite may answer `database
    is locked` at once, without its busy wait, to a process that starts beside others
    switching it too: so look first, and retry a locked switch for up to about 5 s."""
    for attempt in range(tries):
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(0.05)
