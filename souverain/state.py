"""The local state directory and its SQLite database.

One directory holds everything the embedded deployment keeps (API keys now; the ledger
later). SQLite runs in WAL mode so the CLI can write (create or revoke a key) while the
server reads, and a revoked key stops working on the server's next request.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from souverain.config import Config

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    models      TEXT,
    secret_hash TEXT NOT NULL,
    created_at  REAL NOT NULL,
    revoked_at  REAL
);
"""


def state_dir(config: Config) -> Path:
    """SOUVERAIN_STATE_DIR wins over the file's `state_dir`."""
    path = Path(os.environ.get("SOUVERAIN_STATE_DIR") or config.state_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def connect(directory: Path) -> sqlite3.Connection:
    db = sqlite3.connect(directory / "souverain.db", isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    db.executescript(SCHEMA)
    return db
