"""Ledger stores: SQLite (embedded default) and PostgreSQL (many gateway processes)."""

from __future__ import annotations

import os
from pathlib import Path

from souverain.ledger.config import PostgresStoreConfig, SqliteStoreConfig, StoreConfig
from souverain.ledger.store.base import ContentRow, Store, StoreConflict, StoreError

__all__ = ["ContentRow", "Store", "StoreConflict", "StoreError", "open_store"]


def open_store(config: StoreConfig | None, base_dir: str | os.PathLike[str] = ".") -> Store:
    """A new store object (one connection); relative SQLite paths are under `base_dir`.
    None: the default, `ledger.db` under `base_dir`."""
    if config is None:
        config = SqliteStoreConfig()
    if isinstance(config, SqliteStoreConfig):
        from souverain.ledger.store.sqlite import SqliteStore

        path = Path(config.path)
        return SqliteStore(path if path.is_absolute() else Path(base_dir) / path)
    assert isinstance(config, PostgresStoreConfig)
    from souverain.ledger.store.postgres import PostgresStore

    return PostgresStore(config.dsn, config.schema)
