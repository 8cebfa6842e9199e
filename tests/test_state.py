"""State: the `state:` setting, versioned schema migrations on SQLite and PostgreSQL, and
API keys shared by several processes on PostgreSQL (a revocation is seen everywhere
within `state.key_cache_s`, through LISTEN/NOTIFY or the bounded-staleness fallback).

PostgreSQL is the real server (tests/ledger_fixtures.py: skipped with the reason when
absent, a failure under CI=true); each test has a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from polling import until

from souverain.auth import KeyStore
from souverain.config import load_config, parse_config
from souverain.errors import ConfigError, StateUnavailable, Unauthorized
from souverain.ledger.config import PostgresStoreConfig, SqliteStoreConfig
from souverain.state import PostgresStateConfig, SqliteStateConfig, open_keys
from souverain.state.keys import PostgresKeyTable
from souverain.state.migrate import Migration, SchemaTooNew, migrate_postgres, migrate_sqlite

ROOT = Path(__file__).resolve().parent.parent
SOUVERAIN = [sys.executable, "-m", "souverain"]
LOCAL_DSN = "host=127.0.0.1 dbname=souverain user=souverain"


def env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SOUVERAIN_")}, "PYTHONPATH": path}


# -- the `state:` setting --------------------------------------------------------------


def test_state_defaults_to_sqlite_and_the_ledger_stays_in_the_state_directory() -> None:
    config = parse_config("", "souverain.yaml", {})
    assert isinstance(config.state, SqliteStateConfig)
    assert config.ledger.store is None  # opened as ledger.db in the state directory


def test_postgres_state_holds_the_ledger_too() -> None:
    config = parse_config(f'state: {{kind: postgres, dsn: "{LOCAL_DSN}", schema: bank}}\n', "s.yaml", {})
    assert config.state == PostgresStateConfig(dsn=LOCAL_DSN, schema="bank")
    assert config.ledger.store == PostgresStoreConfig(dsn=LOCAL_DSN, schema="bank")


def test_an_explicit_ledger_store_still_wins_and_old_configs_keep_working() -> None:
    both = parse_config(
        f'state: {{kind: postgres, dsn: "{LOCAL_DSN}"}}\n'
        f'ledger:\n  store: {{kind: postgres, dsn: "{LOCAL_DSN} port=5433", schema: audit}}\n',
        "s.yaml",
        {},
    )
    assert both.ledger.store == PostgresStoreConfig(dsn=f"{LOCAL_DSN} port=5433", schema="audit")
    old = parse_config(f'ledger:\n  store: {{kind: postgres, dsn: "{LOCAL_DSN}"}}\n', "s.yaml", {})
    assert isinstance(old.state, SqliteStateConfig)
    assert old.ledger.store == PostgresStoreConfig(dsn=LOCAL_DSN)
    sqlite = parse_config("ledger:\n  store: {kind: sqlite, path: audit.db}\n", "s.yaml", {})
    assert sqlite.ledger.store == SqliteStoreConfig(path="audit.db")


def test_a_sqlite_ledger_under_a_postgres_state_is_refused_with_its_line() -> None:
    text = f'state:\n  kind: postgres\n  dsn: "{LOCAL_DSN}"\nledger:\n  store:\n    kind: sqlite\n'
    with pytest.raises(ConfigError, match=r"^s.yaml:5: ledger.store: a SQLite ledger .* a log of its own"):
        parse_config(text, "s.yaml", {})


@pytest.mark.parametrize("dsn", [f"{LOCAL_DSN} password=hunter2", "postgresql://souverain:hunter2@127.0.0.1/souverain"])
def test_a_password_written_in_the_file_is_refused(dsn: str) -> None:
    text = f'state:\n  kind: postgres\n  dsn: "{dsn}"\n'
    with pytest.raises(ConfigError, match=r"^s.yaml:3: state.dsn: a password written in the file") as error:
        parse_config(text, "s.yaml", {})
    assert "hunter2" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('ledger:\n  store:\n    kind: postgres\n    dsn: "host=127.0.0.1 password=hunter2"\n', "ledger.store.dsn"),
        (
            "usage:\n  budget_store:\n    kind: redis\n    url: redis://:hunter2@127.0.0.1:6379/0\n",
            "usage.budget_store.url",
        ),
    ],
)
def test_a_password_written_in_any_connection_string_is_refused(text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^s.yaml:4: {key}: a password written in the file") as error:
        parse_config(text, "s.yaml", {})
    assert "hunter2" not in str(error.value)
    from_env = text.replace("hunter2", "${SECRET}")
    parse_config(from_env, "s.yaml", {"SECRET": "hunter2"})  # from the environment: accepted


def test_a_password_from_the_environment_is_accepted() -> None:
    text = 'state:\n  kind: postgres\n  dsn: "host=127.0.0.1 user=souverain password=${PGPW}"\n'
    config = parse_config(text, "s.yaml", {"PGPW": "hunter2"})
    assert isinstance(config.state, PostgresStateConfig) and config.state.dsn.endswith("password=hunter2")
    # The ledger follows the state, with the password the environment gave: not refused.
    assert isinstance(config.ledger.store, PostgresStoreConfig) and config.ledger.store.dsn == config.state.dsn


def test_the_state_database_obeys_the_air_gap() -> None:
    text = 'state:\n  kind: postgres\n  dsn: "host=db.example.org user=souverain"\n'
    with pytest.raises(ConfigError, match=r"^s.yaml:3: state.dsn: air gap is on and 'db.example.org'"):
        parse_config(text, "s.yaml", {})
    allowed = parse_config(text + "air_gap:\n  allowed_hosts: [db.example.org]\n", "s.yaml", {})
    assert isinstance(allowed.ledger.store, PostgresStoreConfig)


# -- the migration mechanism -----------------------------------------------------------

M1 = Migration(1, "first", ("CREATE TABLE t1 (a INTEGER)",))
M2 = Migration(2, "second", ("CREATE TABLE t2 (b INTEGER)", "INSERT INTO t2 (b) VALUES (2)"))
BROKEN = Migration(2, "broken", ("CREATE TABLE t3 (c INTEGER)", "INSERT INTO no_such_table VALUES (1)"))


def test_sqlite_migrations_fresh_rerun_and_newer(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    assert migrate_sqlite(db, "part", [M1], "x.db") == 1
    assert migrate_sqlite(db, "part", [M1, M2], "x.db") == 1  # an upgrade runs only what is new
    assert migrate_sqlite(db, "part", [M1, M2], "x.db") == 0  # a re-run is a no-op
    assert db.execute("PRAGMA user_version").fetchone() == (2,)
    history = db.execute("SELECT part, version, name FROM souverain_migrations ORDER BY version").fetchall()
    assert history == [("part", 1, "first"), ("part", 2, "second")]
    with pytest.raises(SchemaTooNew, match=r"^x.db: the part schema is at version 2, newer than .* \(up to 1\)"):
        migrate_sqlite(db, "part", [M1], "x.db")


def test_a_failed_sqlite_migration_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    migrate_sqlite(db, "part", [M1], "x.db")
    with pytest.raises(sqlite3.OperationalError):
        migrate_sqlite(db, "part", [M1, BROKEN], "x.db")
    assert db.execute("PRAGMA user_version").fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 't3'").fetchone() == (0,)


def test_postgres_migrations_fresh_rerun_newer_and_failed(pg_dsn: str, pg_schema: str) -> None:  # noqa: F811
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as db:
        assert migrate_postgres(db, pg_schema, "part", [M1]) == 1  # the schema is made too
        assert migrate_postgres(db, pg_schema, "part", [M1, M2]) == 1
        assert migrate_postgres(db, pg_schema, "part", [M1, M2]) == 0
        other = Migration(1, "other", ("CREATE TABLE o1 (a INTEGER)",))
        assert migrate_postgres(db, pg_schema, "other", [other]) == 1  # parts are versioned apart
        rows = db.execute("SELECT part, version FROM souverain_migrations ORDER BY part, version").fetchall()
        assert rows == [("other", 1), ("part", 1), ("part", 2)]
        assert db.execute("SELECT b FROM t2").fetchall() == [(2,)]
        with pytest.raises(SchemaTooNew, match=rf"PostgreSQL schema {pg_schema}: the part schema is at version 2"):
            migrate_postgres(db, pg_schema, "part", [M1])
        third = Migration(1, "third", ("CREATE TABLE h1 (a INTEGER)",))
        assert migrate_postgres(db, pg_schema, "third", [third]) == 1
        with pytest.raises(psycopg.errors.UndefinedTable):
            migrate_postgres(db, pg_schema, "third", [third, BROKEN])
        # DDL is transactional: the failed step took its table and its history row with it.
        assert db.execute("SELECT to_regclass(%s)", (f"{pg_schema}.t3",)).fetchone() == (None,)
        assert db.execute("SELECT max(version) FROM souverain_migrations WHERE part = 'third'").fetchone() == (1,)


# -- real processes: migrate once, refuse a newer schema ---------------------------------


def write_config(tmp_path: Path, backend: str, dsn: str = "", schema: str = "") -> Path:
    state = f'state: {{kind: postgres, dsn: "{dsn}", schema: {schema}}}\n' if backend == "postgres" else ""
    path = tmp_path / "souverain.yaml"
    path.write_text(f"state_dir: {tmp_path / 'state'}\n{state}")
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    if request.param == "sqlite":
        return "sqlite", write_config(tmp_path, "sqlite")
    dsn = request.getfixturevalue("pg_dsn")
    schema = request.getfixturevalue("pg_schema")
    return "postgres", write_config(tmp_path, "postgres", dsn, schema)


OPEN_STATE = """
import sys, time
from souverain.config import load_config
from souverain.ledger.store import open_store
from souverain.state import open_keys, state_dir, usage_db
config = load_config(sys.argv[1])
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)
open_keys(config).close()
open_store(config.ledger.store, state_dir(config)).close()
usage_db(config, state_dir(config))().close()
print("ok")
"""


def history(backend: str, config_path: Path) -> list[tuple[Any, ...]]:
    config = parse_config(config_path.read_text(), str(config_path), {})
    if backend == "sqlite":
        rows: list[tuple[Any, ...]] = []
        for name in ("souverain.db", "ledger.db", "usage.db"):
            db = sqlite3.connect(Path(config.state_dir) / name)
            rows += db.execute("SELECT part, version FROM souverain_migrations").fetchall()
            db.close()
        return sorted(rows)
    import psycopg

    assert isinstance(config.state, PostgresStateConfig)
    with psycopg.connect(config.state.dsn) as db:
        return sorted(db.execute(f'SELECT part, version FROM "{config.state.schema}".souverain_migrations').fetchall())


def together(script: str, config: Path, n: int = 4) -> list[tuple[str, str]]:
    """Run `script` in `n` processes that each import and open what they need, then wait
    for one moment to go on all at once; their (stdout, stderr), each having exited 0."""
    start = time.time() + 3
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(config), str(start)],
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, results
    return results


def test_processes_starting_together_migrate_once(backend: tuple[str, Path]) -> None:
    kind, config = backend
    together(OPEN_STATE, config)
    # One row per (part, version): a second run of a migration would have failed on the
    # history's primary key (and made a process above exit non-zero).
    assert history(kind, config) == parts(kind)
    again = subprocess.run(
        [sys.executable, "-c", OPEN_STATE, str(config), "0"], env=env(), capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0 and history(kind, config) == parts(kind)


FIRST_KEY = """
import sys, time
from souverain.config import load_config
from souverain.state import open_keys
config = load_config(sys.argv[1])
keys = open_keys(config)
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)
print(keys.create_first("admin (created on first start)", scopes=("admin",)) or "none")
keys.close()
"""


def test_replicas_starting_together_make_one_first_admin_key(backend: tuple[str, Path]) -> None:
    # What `serve` does on a first start, in four processes at once on an empty state:
    # each checks for a key and makes one, and only one of them may get to.
    kind, config = backend
    results = together(FIRST_KEY, config)
    made = [out.strip() for out, _ in results if out.strip() != "none"]
    assert len(made) == 1, results
    store = open_keys(load_config(config))
    try:
        assert [(k.name, k.scopes, k.revoked_at) for k in store.list()] == [
            ("admin (created on first start)", ["admin"], None)
        ]
        assert accepted(store, made[0])
        assert store.create_first("again", scopes=("admin",)) is None  # a later start makes none
        assert store.revoke(store.list()[0].id)
        assert store.create_first("after revocation", scopes=("admin",)) is not None  # none active: a new first
    finally:
        store.close()


def parts(kind: str) -> list[tuple[str, int]]:
    """Every (part, version) a fresh state holds (PostgreSQL's usage part has a function
    more, and its rows partitioned by month)."""
    usage = [("usage", 1), ("usage", 2), ("usage", 3)] if kind == "postgres" else [("usage", 1)]
    return [("keys", 1), ("ledger", 1), *usage]


def bump(kind: str, config_path: Path, part: str, version: int) -> None:
    """What a newer Souverain's migration would leave: the part's version moved on."""
    config = parse_config(config_path.read_text(), str(config_path), {})
    if kind == "sqlite":
        db = sqlite3.connect(
            Path(config.state_dir) / {"keys": "souverain.db", "usage": "usage.db"}.get(part, "ledger.db")
        )
        db.execute(f"PRAGMA user_version = {version}")
        db.close()
        return
    import psycopg

    assert isinstance(config.state, PostgresStateConfig)
    with psycopg.connect(config.state.dsn, autocommit=True) as db:
        db.execute(
            f'INSERT INTO "{config.state.schema}".souverain_migrations VALUES (%s, %s, %s, %s)',
            (part, version, "from the future", time.time()),
        )


@pytest.mark.parametrize("part", ["keys", "ledger", "usage"])
def test_a_newer_schema_stops_serve_and_the_cli_with_one_line(backend: tuple[str, Path], part: str) -> None:
    kind, config = backend
    made = subprocess.run(
        [sys.executable, "-c", OPEN_STATE, str(config), "0"], env=env(), capture_output=True, text=True, timeout=120
    )
    assert made.returncode == 0, made.stderr
    bump(kind, config, part, 99)
    served = subprocess.run(
        [*SOUVERAIN, "serve", "--port", "0", "--config", str(config)],
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert served.returncode == 1, served.stdout + served.stderr
    said = [line for line in served.stderr.splitlines() if "version 99" in line]
    assert len(said) == 1 and said[0].startswith("souverain: "), served.stderr
    assert f"the {part} schema is at version 99, newer than this Souverain" in said[0]
    assert "listening on" not in served.stdout
    if part == "keys":
        listed = subprocess.run(
            [*SOUVERAIN, "keys", "list", "--config", str(config)],
            env=env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert listed.returncode == 1 and listed.stderr.count("\n") == 1 and "version 99" in listed.stderr
    if part == "usage":
        report = subprocess.run(
            [*SOUVERAIN, "usage", "--config", str(config)], env=env(), capture_output=True, text=True, timeout=120
        )
        assert report.returncode == 1 and report.stderr.count("\n") == 1 and "version 99" in report.stderr


# -- keys on PostgreSQL across processes -------------------------------------------------


def refused(store: KeyStore, token: str) -> bool:
    try:
        store.authenticate(f"Bearer {token}")
    except Unauthorized as exc:
        return exc.code == "revoked_api_key"
    return False


def accepted(store: KeyStore, token: str) -> bool:
    try:
        store.authenticate(f"Bearer {token}")
    except Unauthorized:
        return False
    return True


def test_a_key_made_on_one_is_known_to_the_other_and_a_revocation_too(pg_dsn: str, pg_schema: str) -> None:  # noqa: F811
    one = KeyStore(PostgresKeyTable(pg_dsn, pg_schema, listen=True))
    two = KeyStore(PostgresKeyTable(pg_dsn, pg_schema, listen=True))
    try:
        token, info = one.create("svc", tenant="bank")
        until(lambda: accepted(two, token), 1.0, "the new key accepted by the other store")
        assert two.authenticate(f"Bearer {token}").tenant == "bank"
        assert two.revoke(info.id)
        until(lambda: refused(one, token), 1.0, "the revocation seen by the other store")
        assert refused(two, token)  # at once where it was revoked
        assert [k.revoked_at is not None for k in one.list()] == [True]
    finally:
        one.close()
        two.close()


def test_without_notifications_a_stale_copy_is_not_trusted(pg_dsn: str, pg_schema: str) -> None:  # noqa: F811
    """The fallback: a replica whose listener has gone quiet stops answering from its
    copy after `key_cache_s` and asks the database for the key."""
    quiet = PostgresKeyTable(pg_dsn, pg_schema, cache_s=0.3, listen=True)
    store, other = KeyStore(quiet), KeyStore(PostgresKeyTable(pg_dsn, pg_schema))
    try:
        token, info = other.create("svc")
        until(lambda: accepted(store, token), 1.0, "the new key accepted")
        quiet._stop.set()  # the listener ends: no notification, no reload from here on
        assert quiet._thread is not None
        quiet._thread.join(5)
        assert other.revoke(info.id)
        until(lambda: refused(store, token), 1.0, "the revocation seen without a listener")
    finally:
        store.close()
        other.close()


class Relay:
    """A TCP relay to PostgreSQL that the test can cut: a real lost database."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        self.cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut:
                client.close()
                continue
            server = socket.create_connection(self.target)
            self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def sever(self) -> None:
        self.cut = True
        for s in self.open:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_with_the_database_lost_keys_are_refused_not_trusted(pg_dsn: str, pg_schema: str) -> None:  # noqa: F811
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    info = conninfo_to_dict(pg_dsn)
    relay = Relay(str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432))
    dsn = make_conninfo(pg_dsn, host="127.0.0.1", port=str(relay.port))
    store = KeyStore(PostgresKeyTable(dsn, pg_schema, cache_s=0.4, listen=True))
    try:
        token, _ = store.create("svc")
        assert accepted(store, token)
        relay.sever()

        def unavailable() -> bool:
            try:
                store.authenticate(f"Bearer {token}")
            except StateUnavailable:
                return True
            return False

        until(unavailable, 5.0, "keys refused once the database is gone")
    finally:
        relay.sever()
        store.table._stop.set()  # type: ignore[attr-defined]


def test_the_keys_cli_works_on_postgres(tmp_path: Path, pg_dsn: str, pg_schema: str) -> None:  # noqa: F811
    import psycopg

    config = write_config(tmp_path, "postgres", pg_dsn, pg_schema)

    def keys(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SOUVERAIN, "keys", args[0], "--config", str(config), *args[1:]],
            env=env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    created = keys("create", "--name", "robot", "--tenant", "bank")
    assert created.returncode == 0, created.stderr
    key_id = created.stdout.strip().split("-")[2]
    assert key_id in keys("list").stdout
    assert keys("revoke", key_id).returncode == 0
    assert "revoked" in keys("list").stdout
    with psycopg.connect(pg_dsn) as db:
        rows = db.execute(f'SELECT id, tenant, revoked_at IS NOT NULL FROM "{pg_schema}".api_keys').fetchall()
    assert rows == [(key_id, "bank", True)]
    assert not (tmp_path / "state" / "souverain.db").exists()  # nothing kept on the machine


def test_switching_to_wal_waits_out_a_file_locked_by_another_process(tmp_path: Path) -> None:
    """Processes starting together all switch their files to WAL; one that finds the file
    locked retries instead of failing to start."""
    import threading

    from souverain.state.migrate import use_wal

    path = tmp_path / "x.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        use_wal(other, tries=1)
    threading.Timer(0.3, lambda: holder.execute("COMMIT")).start()
    use_wal(other)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    holder.close()
    other.close()
