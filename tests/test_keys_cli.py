"""`souverain keys`: create, list, revoke; only hashes are stored."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from souverain.auth import KeyStore
from souverain.errors import Unauthorized
from souverain.state import connect
from souverain.state.keys import SqliteKeyTable


def run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOUVERAIN_STATE_DIR": str(tmp / "state")}
    return subprocess.run([sys.executable, "-m", "souverain", *args], capture_output=True, text=True, env=env, cwd=tmp)


def test_create_list_revoke(tmp_path: Path) -> None:
    created = run(tmp_path, "keys", "create", "--name", "ci robot", "--tenant", "bank", "--model", "m1")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("sk-sv-")
    assert "not shown again" in created.stderr
    listed = json.loads(run(tmp_path, "keys", "list", "--json").stdout)
    assert len(listed) == 1
    entry = listed[0]
    assert entry["name"] == "ci robot" and entry["tenant"] == "bank" and entry["models"] == ["m1"]
    assert entry["revoked_at"] is None
    assert token.split("-")[2] == entry["id"]
    table = run(tmp_path, "keys", "list").stdout
    assert entry["id"] in table and "active" in table
    assert run(tmp_path, "keys", "revoke", entry["id"]).returncode == 0
    assert "revoked" in run(tmp_path, "keys", "list").stdout
    again = run(tmp_path, "keys", "revoke", entry["id"])
    assert again.returncode == 1 and "no active key" in again.stderr


def test_only_the_hash_is_stored(tmp_path: Path) -> None:
    token = run(tmp_path, "keys", "create", "--name", "x").stdout.strip()
    secret = token.split("-", 3)[3]
    raw = b"".join(p.read_bytes() for p in (tmp_path / "state").iterdir() if p.is_file())
    assert secret.encode() not in raw
    db = sqlite3.connect(tmp_path / "state" / "souverain.db")
    (stored,) = db.execute("SELECT secret_hash FROM api_keys").fetchone()
    assert len(stored) == 64 and secret not in stored


def test_authenticate_rules(tmp_path: Path) -> None:
    store = KeyStore(SqliteKeyTable(connect(tmp_path)))
    token, info = store.create("svc", scopes=("inference",), models=["a"])
    principal = store.authenticate(f"Bearer {token}")
    assert principal.key_id == info.id and principal.may_use("a") and not principal.may_use("b")
    assert store.authenticate(f"bearer   {token}").key_id == info.id
    for bad in (None, "", token, f"Basic {token}", f"Bearer {token}x", f"Bearer {token[:-1]}", "Bearer sk-sv-"):
        with pytest.raises(Unauthorized):
            store.authenticate(bad)
    with pytest.raises(ValueError):
        store.create("bad", scopes=("root",))
