"""The local state directory and its SQLite database.

One directory holds everything the embedded deployment keeps (API keys now; the ledger
later). SQLite runs in WAL mode so the CLI can write (create or revoke a key) while the
server reads, and a revoked key stops working on the server's next request.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
from pathlib import Path

from souverain.config import Config
from souverain.errors import ConfigError

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
        info = entry.lstat()
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077:
            entry.chmod(stat.S_IMODE(info.st_mode) & 0o700)
    return path


def connect(directory: Path) -> sqlite3.Connection:
    db = sqlite3.connect(directory / "souverain.db", isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    db.executescript(SCHEMA)
    return db
