"""The storage contract the sequencer, integrator, readers and verifier share.

A store holds five things: the sequenced entries (index -> leaf bytes), the Merkle tree as
tlog tiles, every published checkpoint, retained content (sealed, apart from the tree) and
the tenants' wrapped data keys. Each store object owns one database connection and is used
by one thread at a time; open one per thread (`Ledger` does).

Transactions, and what each guarantees:
- `sequence`: the entries get consecutive indexes after every committed one, and are
  durable (fsync'ed) when it returns. Concurrent sequencers, in one process or many,
  serialise on one lock or row, so committed indexes never have gaps.
- `publish`: tiles and the new checkpoint land together, and only if the tree still has
  the size the integrator started from (`StoreConflict` otherwise), so two integrators
  cannot both extend the tree even if the integrator lock was lost.
- `retire_keys`: a tenant's data keys are forgotten and its content deleted, together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from souverain.keys.envelope import WrappedKey
from souverain.ledger.tiles import TileKey


class StoreError(RuntimeError):
    pass


class StoreConflict(StoreError):
    """Another integrator moved the tree; re-read and start again."""


@dataclass(frozen=True, slots=True)
class ContentRow:
    tenant: str
    kek: str
    sealed: bytes
    created: float


class Store(Protocol):
    kind: str
    """`sqlite` or `postgres`."""

    # -- metadata ------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None:
        """Set unless already set (first writer wins); read back to learn the value."""

    # -- sequencing ----------------------------------------------------------------------
    def sequence(self, leaves: Sequence[bytes], contents: Sequence[ContentRow | None]) -> int:
        """Append in one durable transaction; the first entry's index."""

    def sequenced_size(self) -> int: ...

    def read_entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Rows with start <= index < end, in order. Gaps are the caller's to notice."""

    # -- the tree ------------------------------------------------------------------------
    def tree_size(self) -> int:
        """Size of the latest published checkpoint; -1 before the first."""

    def read_tile(self, level: int, index: int) -> bytes | None: ...

    def publish(self, old_size: int, new_size: int, tiles: Mapping[TileKey, bytes], checkpoint: str) -> None: ...

    def latest_checkpoint(self) -> tuple[int, str] | None: ...

    def checkpoint_at(self, size: int) -> str | None: ...

    def checkpoints(self, start: int = 0, limit: int = 10_000) -> list[tuple[int, str]]:
        """Published checkpoints with size >= start, ascending."""

    def replace_checkpoint(self, size: int, note: str) -> None:
        """Store a checkpoint again with more signatures (witness cosignatures)."""

    def try_lock_integrator(self) -> bool:
        """Take the integrator lock if free; held until `unlock_integrator` or `close`
        (or the process's death)."""

    def unlock_integrator(self) -> None: ...

    # -- content and keys ----------------------------------------------------------------
    def read_content(self, index: int) -> ContentRow | None: ...

    def purge_content(self, before: float) -> int:
        """Delete content created before `before` (POSIX time); how many rows."""

    def current_key(self, tenant: str) -> WrappedKey | None: ...

    def add_key(self, key: WrappedKey) -> WrappedKey: ...

    def retire_keys(self, tenant: str) -> list[str]: ...

    def close(self) -> None: ...


def blob(value: bytes | memoryview | str) -> bytes:
    """A BLOB/bytea column as bytes. SQLite is dynamically typed: a hand-edited row may
    hold TEXT, and the verifier hashes what is there."""
    return value.encode() if isinstance(value, str) else bytes(value)


class SqlQueries:
    """The store's statements that read alike on SQLite and PostgreSQL, written once with
    `?` placeholders (`PARAM` is what the driver takes). What differs, the transactions,
    the counters and the integrator lock, each store writes itself."""

    PARAM = "?"
    _db: Any  # sqlite3.Connection or psycopg.Connection (autocommit): both have execute()

    def _run(self, sql: str, params: Sequence[object] = ()) -> Any:
        return self._db.execute(sql if self.PARAM == "?" else sql.replace("?", self.PARAM), params)

    # -- metadata ------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._run("SELECT value FROM ledger_meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._run("INSERT INTO ledger_meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, value))

    # -- entries, tiles and checkpoints ----------------------------------------------------
    def read_entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        rows = self._run("SELECT idx, data FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end))
        return [(int(idx), blob(data)) for idx, data in rows.fetchall()]

    def read_tile(self, level: int, index: int) -> bytes | None:
        row = self._run("SELECT data FROM ledger_tiles WHERE level = ? AND idx = ?", (level, index)).fetchone()
        return blob(row[0]) if row else None

    def latest_checkpoint(self) -> tuple[int, str] | None:
        row = self._run("SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def checkpoint_at(self, size: int) -> str | None:
        row = self._run("SELECT note FROM ledger_checkpoints WHERE size = ?", (size,)).fetchone()
        return str(row[0]) if row else None

    def checkpoints(self, start: int = 0, limit: int = 10_000) -> list[tuple[int, str]]:
        rows = self._run(
            "SELECT size, note FROM ledger_checkpoints WHERE size >= ? ORDER BY size LIMIT ?", (start, limit)
        ).fetchall()
        return [(int(size), str(note)) for size, note in rows]

    def replace_checkpoint(self, size: int, note: str) -> None:
        self._run("UPDATE ledger_checkpoints SET note = ? WHERE size = ?", (note, size))

    # -- content and keys ----------------------------------------------------------------
    def read_content(self, index: int) -> ContentRow | None:
        row = self._run("SELECT tenant, kek, sealed, created FROM ledger_content WHERE idx = ?", (index,)).fetchone()
        return ContentRow(row[0], row[1], blob(row[2]), row[3]) if row else None

    def purge_content(self, before: float) -> int:
        return int(self._run("DELETE FROM ledger_content WHERE created < ?", (before,)).rowcount)

    def current_key(self, tenant: str) -> WrappedKey | None:
        row = self._run(
            "SELECT tenant, kek, wrapped, created FROM ledger_data_keys WHERE tenant = ? AND retired IS NULL", (tenant,)
        ).fetchone()
        return WrappedKey(row[0], row[1], blob(row[2]), row[3]) if row else None

    def add_key(self, key: WrappedKey) -> WrappedKey:
        self._run(
            "INSERT INTO ledger_data_keys (kek, tenant, wrapped, created) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (key.kek, key.tenant, key.wrapped, key.created),
        )
        current = self.current_key(key.tenant)
        assert current is not None
        return current
