"""The gateway's state: the state directory, and where keys (and the ledger) are kept.

`state:` in the configuration (souverain/state/config.py) picks the backend:

- SQLite (the default): everything in the state directory. `souverain.db` holds the API
  keys, `ledger.db` the ledger; WAL mode lets the CLI and several gateway processes write
  while others read.
- PostgreSQL: the keys, the ledger (unless `ledger.store` names another place) and what
  later parts add live in one schema of one database, shared by any number of replicas.
  The state directory then only holds what is the machine's own: the engine workers'
  sockets and, with the file key provider, the key files.

Each part's schema is versioned and migrated when it is opened (souverain/state/migrate.py);
`open_keys` is what `souverain serve` and `souverain keys` call.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from souverain.errors import ConfigError
from souverain.state.config import PostgresStateConfig, SqliteStateConfig, StateConfig
from souverain.state.migrate import SchemaTooNew, StateError, use_wal

if TYPE_CHECKING:  # the configuration imports souverain.state.config: no import at run time
    from collections.abc import Callable

    from souverain.auth import KeyStore
    from souverain.config import Config
    from souverain.ledger import Ledger
    from souverain.usage.accounting import Accounting
    from souverain.usage.store import UsageDb

__all__ = [
    "PostgresStateConfig",
    "SchemaTooNew",
    "SqliteStateConfig",
    "StateConfig",
    "StateError",
    "connect",
    "describe",
    "open_accounting",
    "open_keys",
    "usage_db",
    "state_dir",
]


def state_dir(config: Config) -> Path:
    """The state directory (SOUVERAIN_STATE_DIR wins over the file's `state_dir`), made
    when missing. From here on every file the process creates is private to its user
    (umask 077): the databases hold key hashes, ledger metadata, wrapped data keys and
    sealed content, and SQLite creates its files (and their -wal, -shm) with the mode
    the umask leaves. A directory others may read or enter is reported, or refused
    (`hardening.open_state_dir`); files of ours that an older version left open to
    others are made private."""
    os.umask(os.umask(0o077) | 0o077)
    path = Path(os.environ.get("SOUVERAIN_STATE_DIR") or config.state_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        message = (
            f"the state directory {path} is open to other users (mode {mode:04o}); "
            f"make it private with `chmod 700 {path}`"
        )
        if config.hardening.open_state_dir == "refuse":
            raise ConfigError(f"{message} (hardening.open_state_dir: refuse)")
        print(f"souverain: warning: {message}", file=sys.stderr, flush=True)
    for entry in path.iterdir():
        try:
            info = entry.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077:
                entry.chmod(stat.S_IMODE(info.st_mode) & 0o700)
        except FileNotFoundError:  # another process closed its database: its -shm/-wal went
            continue
    return path


def connect(directory: Path) -> sqlite3.Connection:
    """The SQLite key database of a state directory (its schema is migrated by the
    `SqliteKeyTable` that `KeyStore` wraps around it)."""
    db = sqlite3.connect(directory / "souverain.db", isolation_level=None, check_same_thread=False)
    use_wal(db)
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    return db


def open_keys(config: Config, directory: Path | None = None, *, listen: bool = False) -> KeyStore:
    """The key store `state:` names, its schema migrated; SQLite's in `directory` (the
    state directory when None). `listen`: keep an in-memory copy current for a serving
    gateway (PostgreSQL; SQLite's copy needs no thread). Raises StateError (SchemaTooNew)
    with a one-line message for the operator."""
    from souverain.auth import KeyStore
    from souverain.state.keys import PostgresKeyTable, SqliteKeyTable

    state = config.state
    if isinstance(state, PostgresStateConfig):
        return KeyStore(PostgresKeyTable(state.dsn, state.schema, cache_s=state.key_cache_s, listen=listen))
    directory = directory if directory is not None else state_dir(config)
    db = connect(directory)
    try:
        return KeyStore(SqliteKeyTable(db, str(directory / "souverain.db")))
    except BaseException:
        db.close()
        raise


def describe(config: Config, directory: Path) -> str:
    """Where the state is, for the start-up line (never the DSN: it may hold a password)."""
    state = config.state
    if isinstance(state, PostgresStateConfig):
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(state.dsn)
        where = f"{info.get('host') or 'local socket'}/{info.get('dbname') or info.get('user') or ''}"
        return f"PostgreSQL {where} schema {state.schema} (machine files in {directory})"
    return str(directory)


def usage_db(config: Config, directory: Path) -> Callable[[], UsageDb]:
    """Opens a connection to the usage part of the state (its schema migrated): SQLite's
    `usage.db` in `directory`, or the `state:` PostgreSQL schema."""
    from souverain.usage.store import UsageDb

    state = config.state
    if isinstance(state, PostgresStateConfig):
        dsn, schema = state.dsn, state.schema
        return lambda: UsageDb.postgres(dsn, schema)
    return lambda: UsageDb.sqlite(directory)


def open_accounting(config: Config, directory: Path, ledger: Ledger | None) -> Accounting:
    """The account stage as `usage:` describes it: prices, budget counters (in the state's
    database, or Redis), and the usage writer (started by the app)."""
    from souverain.usage.accounting import Accounting
    from souverain.usage.budgets import Counters, RedisCounters, StateCounters
    from souverain.usage.config import RedisBudgets

    opener = usage_db(config, directory)
    counters: Counters | None = None
    if config.usage.budgets:
        store = config.usage.budget_store
        counters = RedisCounters(store.url) if isinstance(store, RedisBudgets) else StateCounters(opener)
    return Accounting(config.usage, opener, counters, ledger)
