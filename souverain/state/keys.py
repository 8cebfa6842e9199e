"""The API key table on each backend, and how each process keeps its copy current.

Authentication reads an in-memory copy of the table (`find()`), never the database: a
request costs a dict lookup and a SHA-256, whatever the backend. How the copy follows
changes made by other processes (the CLI, other gateway workers, other replicas):

- SQLite: `PRAGMA data_version` changes when another connection commits to the file.
  `find()` reads it (a look at the WAL index in shared memory, no table read, no disk
  I/O) and reloads the table only when it moved, so a key revoked from the CLI is refused
  from the next request on, as before.
- PostgreSQL: a listener thread holds its own connection with `LISTEN`; `insert` and
  `revoke` send `pg_notify` in their transaction, delivered to every replica on commit,
  and the listener reloads the table at once. It also reloads every `key_cache_s / 2` as
  a fallback (a notification is lost only with the connection, and the reload after a
  reconnect catches up), and each reload proves the database answered. When the copy is
  older than `key_cache_s`, `find()` asks the database for the one key instead (the
  listener is late: under heavy load, say), and if the database cannot be reached it
  raises `StateUnavailable`: keys are refused (503) rather than checked against a copy
  that may miss a revocation. So a revoked key is refused by every replica within `key_cache_s`
  (1 s by default) in every case, and in milliseconds when the database is up.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import sqlite3
import threading
import time
from dataclasses import astuple
from typing import TYPE_CHECKING, Any

from souverain.auth import KeyRecord
from souverain.errors import StateUnavailable
from souverain.state.migrate import (
    Migration,
    StateError,
    migrate_postgres,
    migrate_sqlite,
)

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("souverain.state")

_COLUMNS = "id, name, tenant, scopes, models, secret_hash, created_at, revoked_at"


def _api_keys(real: str) -> str:
    """The key table, in each backend's word for a floating-point timestamp."""
    return f"""CREATE TABLE IF NOT EXISTS api_keys (
                id          TEXT PRIMARY KEY,
                name        TEXT NOT NULL,
                tenant      TEXT NOT NULL,
                scopes      TEXT NOT NULL,
                models      TEXT,
                secret_hash TEXT NOT NULL,
                created_at  {real} NOT NULL,
                revoked_at  {real}
            )"""


SQLITE_MIGRATIONS = (Migration(1, "api keys", (_api_keys("REAL"),)),)
POSTGRES_MIGRATIONS = (Migration(1, "api keys", (_api_keys("DOUBLE PRECISION"),)),)


def _records(rows: list[Any]) -> dict[str, KeyRecord]:
    return {row[0]: KeyRecord(*row) for row in rows}


class SqliteKeyTable:
    kind = "sqlite"

    def __init__(self, db: sqlite3.Connection, where: str = "souverain.db") -> None:
        self._db = db
        migrate_sqlite(db, "keys", SQLITE_MIGRATIONS, where)
        self._version = -1
        self._known: dict[str, KeyRecord] = {}

    def insert(self, record: KeyRecord) -> None:
        self._db.execute(
            f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
            astuple(record),
        )
        self._version = -1  # our own commits do not move data_version: reload on next use

    def insert_first(self, record: KeyRecord) -> bool:
        # One statement: SQLite holds the file's write lock from its check to its insert.
        cur = self._db.execute(
            f"INSERT INTO api_keys ({_COLUMNS}) SELECT ?,?,?,?,?,?,?,? "
            "WHERE NOT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL)",
            astuple(record),
        )
        self._version = -1
        return cur.rowcount == 1

    def revoke(self, key_id: str, at: float) -> bool:
        cur = self._db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (at, key_id))
        self._version = -1
        return cur.rowcount == 1

    def records(self) -> list[KeyRecord]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at").fetchall()
        return [KeyRecord(*row) for row in rows]

    def find(self, key_id: str) -> KeyRecord | None:
        (version,) = self._db.execute("PRAGMA data_version").fetchone()
        if version != self._version:
            self._known = _records(self._db.execute(f"SELECT {_COLUMNS} FROM api_keys").fetchall())
            self._version = version
        return self._known.get(key_id)

    def close(self) -> None:
        self._db.close()


def channel(schema: str) -> str:
    """The NOTIFY channel of a schema's key table (a fixed length: channel names are
    identifiers, at most 63 bytes)."""
    return "souverain_keys_" + hashlib.sha256(schema.encode()).hexdigest()[:16]


def _first_key_lock(schema: str) -> int:
    """The advisory lock under which a schema's first key is made."""
    return int.from_bytes(hashlib.sha256(f"souverain-keys:{schema}:first".encode()).digest()[:8], "big", signed=True)


class PostgresKeyTable:
    """Keys in PostgreSQL. With `listen` (a serving gateway) a thread keeps an in-memory
    copy current; without (the CLI), `find()` reads the row each time."""

    kind = "postgres"

    def __init__(self, dsn: str, schema: str, *, cache_s: float = 1.0, listen: bool = False) -> None:
        import psycopg

        self._psycopg = psycopg
        self._dsn = dsn
        self.schema = schema
        self.cache_s = cache_s
        self._db = self._connect()
        migrate_postgres(self._db, schema, "keys", POSTGRES_MIGRATIONS)
        self._lock = threading.Lock()  # the main connection is used from the caller's threads
        self._known: dict[str, KeyRecord] = {}
        self._synced = float("-inf")  # monotonic time of the last reload that reached the database
        self._stop = threading.Event()
        self._failing = False  # the listener's last attempt to reach the database failed
        self._thread: threading.Thread | None = None
        if listen:
            self._reload(self._db)  # a first copy before the first request
            self._thread = threading.Thread(target=self._listen, name="souverain-keys-listener", daemon=True)
            self._thread.start()

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            return self._psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
        except self._psycopg.OperationalError as exc:
            raise StateError(f"cannot connect to PostgreSQL: {str(exc).strip().splitlines()[0]}") from None

    def _notify(self, db: psycopg.Connection[tuple[Any, ...]], key_id: str) -> None:
        db.execute("SELECT pg_notify(%s, %s)", (channel(self.schema), key_id))

    def insert(self, record: KeyRecord) -> None:
        with self._lock, self._db.transaction():
            self._db.execute(
                f"INSERT INTO api_keys ({_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
                astuple(record),
            )
            self._notify(self._db, record.id)
        self._known = {**self._known, record.id: record}

    def insert_first(self, record: KeyRecord) -> bool:
        # Under READ COMMITTED two transactions could both see no key: they take turns on
        # a lock held until commit, so the second sees the first's key.
        with self._lock, self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_first_key_lock(self.schema),))
            cur = self._db.execute(
                f"INSERT INTO api_keys ({_COLUMNS}) SELECT %s,%s,%s,%s,%s,%s,%s,%s "
                "WHERE NOT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL)",
                astuple(record),
            )
            done = cur.rowcount == 1
            if done:
                self._notify(self._db, record.id)
        if done:
            self._known = {**self._known, record.id: record}
        return done

    def revoke(self, key_id: str, at: float) -> bool:
        with self._lock, self._db.transaction():
            cur = self._db.execute(
                "UPDATE api_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL", (at, key_id)
            )
            done = cur.rowcount == 1
            if done:
                self._notify(self._db, key_id)
        if done and key_id in self._known:
            self._known = {**self._known, key_id: dataclasses.replace(self._known[key_id], revoked_at=at)}
        return done

    def records(self) -> list[KeyRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at").fetchall()
        return [KeyRecord(*row) for row in rows]

    def find(self, key_id: str) -> KeyRecord | None:
        if self._thread is not None and time.monotonic() - self._synced <= self.cache_s:
            return self._known.get(key_id)
        # The CLI (no listener), or a listener that has not reloaded within `cache_s`: ask
        # the database for this key. Not while the listener is failing to reach it: then
        # the database is down and the query would only wait; refuse at once.
        if self._thread is not None and self._failing:
            raise StateUnavailable("The gateway cannot reach its key store to check API keys; try again shortly.")
        try:
            with self._lock:
                if self._db.broken:  # lost with a restart of the database: the listener got through again
                    self._db = self._connect()
                    self._db.execute(f'SET search_path TO "{self.schema}"')
                row = self._db.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = %s", (key_id,)).fetchone()
        except (self._psycopg.Error, StateError):
            raise StateUnavailable(
                "The gateway cannot reach its key store to check API keys; try again shortly."
            ) from None
        return KeyRecord(*row) if row else None

    # -- the listener thread -------------------------------------------------------------
    def _reload(self, db: psycopg.Connection[tuple[Any, ...]]) -> None:
        started = time.monotonic()
        rows = db.execute(f"SELECT {_COLUMNS} FROM api_keys").fetchall()
        self._known = _records(rows)  # one assignment: readers see the old or the new copy
        self._synced = started

    def _listen(self) -> None:
        """Reload at once on a notification, and every `cache_s / 2` in any case; on a lost
        connection, connect again (an attempt every `cache_s / 2`)."""
        period = self.cache_s / 2
        db: psycopg.Connection[tuple[Any, ...]] | None = None
        while not self._stop.is_set():
            try:
                if db is None or db.closed:
                    db = self._psycopg.connect(self._dsn, autocommit=True, connect_timeout=max(2, int(period)))
                    db.execute(f'SET search_path TO "{self.schema}"')
                    db.execute(f"LISTEN {channel(self.schema)}")
                    self._reload(db)  # after LISTEN: nothing committed from here on is missed
                # Wake on the first notification or after `period`; one reload covers a burst.
                for _ in db.notifies(timeout=period, stop_after=1):
                    pass
                self._reload(db)
                self._failing = False
            except Exception as exc:
                self._failing = True
                log.warning("key store listener: %s; reconnecting", (str(exc).strip() or repr(exc)).splitlines()[0])
                if db is not None:
                    with contextlib.suppress(Exception):
                        db.close()
                db = None
                self._stop.wait(period)
        if db is not None:
            db.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.cache_s + 5)
            self._thread = None
        self._db.close()
