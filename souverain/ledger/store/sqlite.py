"""The embedded store: one SQLite file (`ledger.db` in the state directory).

WAL with `synchronous=FULL`: a commit is on disk when `sequence` returns, which is the
ledger's promise (the default NORMAL would survive a crash of the process but not of the
machine). Writers serialise on SQLite's write lock (`BEGIN IMMEDIATE`), so gateway worker
processes may sequence into one file; indexes come from max(index) + 1 under that lock.
The integrator lock is an advisory `flock` on a file beside the database, released by the
kernel when its holder dies, so a killed integrator never blocks the next one.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from souverain.ledger.store.base import ContentRow, SqlQueries, StoreConflict
from souverain.ledger.tiles import TileKey
from souverain.locks import try_lock
from souverain.state.migrate import Migration, migrate_sqlite, use_wal

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_tiles (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_content (
    idx INTEGER PRIMARY KEY, tenant TEXT NOT NULL, kek TEXT NOT NULL, sealed BLOB NOT NULL, created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_content_tenant ON ledger_content (tenant);
CREATE INDEX IF NOT EXISTS ledger_content_created ON ledger_content (created);
CREATE TABLE IF NOT EXISTS ledger_data_keys (
    kek TEXT PRIMARY KEY, tenant TEXT NOT NULL, wrapped BLOB NOT NULL, created REAL NOT NULL, retired REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS ledger_data_keys_current ON ledger_data_keys (tenant) WHERE retired IS NULL;
"""

# The file's schema versions (PRAGMA user_version); append, never edit one that shipped.
# Version 1 is the schema of the releases before migrations: IF NOT EXISTS makes it a
# no-op on their files.
MIGRATIONS = (Migration(1, "ledger", tuple(s.strip() for s in SCHEMA.split(";") if s.strip())),)


class SqliteStore(SqlQueries):
    kind = "sqlite"
    _db: sqlite3.Connection

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        use_wal(self._db)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA secure_delete=ON")  # shredded and purged content is overwritten
        migrate_sqlite(self._db, "ledger", MIGRATIONS, str(self.path))
        self._lock_fd: int | None = None

    def _begin(self) -> sqlite3.Cursor:
        return self._db.execute("BEGIN IMMEDIATE")

    # -- sequencing ----------------------------------------------------------------------
    def sequence(self, leaves: Sequence[bytes], contents: Sequence[ContentRow | None]) -> int:
        db = self._db
        self._begin()
        try:
            (first,) = db.execute("SELECT coalesce(max(idx) + 1, 0) FROM ledger_entries").fetchone()
            db.executemany("INSERT INTO ledger_entries (idx, data) VALUES (?, ?)", enumerate(leaves, first))
            rows = [(first + i, c.tenant, c.kek, c.sealed, c.created) for i, c in enumerate(contents) if c is not None]
            if rows:
                db.executemany(
                    "INSERT INTO ledger_content (idx, tenant, kek, sealed, created) VALUES (?, ?, ?, ?, ?)", rows
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return int(first)

    def sequenced_size(self) -> int:
        return int(self._db.execute("SELECT coalesce(max(idx) + 1, 0) FROM ledger_entries").fetchone()[0])

    # -- the tree ------------------------------------------------------------------------
    def tree_size(self) -> int:
        return int(self._db.execute("SELECT coalesce(max(size), -1) FROM ledger_checkpoints").fetchone()[0])

    def publish(self, old_size: int, new_size: int, tiles: Mapping[TileKey, bytes], checkpoint: str) -> None:
        db = self._db
        self._begin()
        try:
            (current,) = db.execute("SELECT coalesce(max(size), -1) FROM ledger_checkpoints").fetchone()
            if current != old_size:
                raise StoreConflict(f"tree size is {current}, integrator expected {old_size}")
            db.executemany(
                "INSERT OR REPLACE INTO ledger_tiles (level, idx, data) VALUES (?, ?, ?)",
                [(level, index, data) for (level, index), data in tiles.items()],
            )
            db.execute(
                "INSERT INTO ledger_checkpoints (size, note, created) VALUES (?, ?, ?)",
                (new_size, checkpoint, time.time()),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def try_lock_integrator(self) -> bool:
        if self._lock_fd is not None:
            return True
        self._lock_fd = try_lock(str(self.path) + ".integrator.lock")
        return self._lock_fd is not None

    def unlock_integrator(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    # -- keys ----------------------------------------------------------------------------
    def retire_keys(self, tenant: str) -> list[str]:
        db = self._db
        self._begin()
        try:
            names = [r[0] for r in db.execute("SELECT kek FROM ledger_data_keys WHERE tenant = ?", (tenant,))]
            db.execute(
                "UPDATE ledger_data_keys SET wrapped = x'', retired = coalesce(retired, ?) WHERE tenant = ?",
                (time.time(), tenant),
            )
            db.execute("DELETE FROM ledger_content WHERE tenant = ?", (tenant,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return names

    def close(self) -> None:
        self.unlock_integrator()
        self._db.close()
