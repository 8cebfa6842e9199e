"""Fixtures shared by the ledger, key and usage tests (a plugin of conftest.py), and helpers they import.

PostgreSQL and SoftHSM2 are real: a test that needs one skips with the reason when it is
not there, except under CI=true, where a missing service is a failure, so that CI cannot
pass by skipping what it was meant to run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from souverain.ledger import Entry, Ledger, LedgerConfig, PostgresStoreConfig, RetentionConfig, SqliteStoreConfig

PG_DSN = os.environ.get("SOUVERAIN_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=5")
SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
HSM_PIN = "1234"


def unavailable(reason: str) -> None:
    """Skip, or fail under CI=true."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: this must be available)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    try:
        import psycopg
    except ImportError:
        unavailable("psycopg is not installed: PostgreSQL ledger tests skipped")
    try:
        psycopg.connect(PG_DSN).close()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        unavailable(f"PostgreSQL is unreachable at {PG_DSN!r} ({str(exc).strip()[:120]}): set SOUVERAIN_TEST_PG_DSN")
    return PG_DSN


@pytest.fixture
def pg_store(pg_dsn: str) -> Iterator[PostgresStoreConfig]:
    """A PostgreSQL store in a schema of its own, dropped afterwards."""
    import psycopg

    schema = f"ledger_test_{secrets.token_hex(5)}"
    yield PostgresStoreConfig(dsn=pg_dsn, schema=schema)
    with psycopg.connect(pg_dsn, autocommit=True) as db:
        db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    """A PostgreSQL schema of this test's own (its name; dropped afterwards)."""
    import psycopg

    name = f"test_{secrets.token_hex(6)}"
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as db:
        db.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def store_config(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Each store in turn: the test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return SqliteStoreConfig(path=str(tmp_path / "ledger.db"))
    return request.getfixturevalue("pg_store")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server of the test's own on a Unix socket, `tmp_path/redis.sock` (its URL:
    `unix://` + that path), keeping nothing on disk; the test may stop it."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not on PATH: the Redis budget store tests are skipped")
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
            time.sleep(0.01)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A SoftHSM2 token made for this session: (module, token label, PIN).

    Session-wide because SoftHSM reads its configuration and token list once per process."""
    if shutil.which("softhsm2-util") is None:
        unavailable("softhsm2-util not found (Debian package softhsm2): PKCS#11 tests skipped")
    module = next((m for m in SOFTHSM_MODULES if Path(m).is_file()), None)
    if module is None:
        unavailable("libsofthsm2.so not found: PKCS#11 tests skipped")
    try:
        import PyKCS11  # noqa: F401
    except ImportError:
        unavailable("PyKCS11 is not installed: PKCS#11 tests skipped")
    home = tmp_path_factory.mktemp("softhsm")
    (home / "tokens").mkdir()
    conf = home / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "souverain-test", "--pin", HSM_PIN, "--so-pin", "5678"],
        check=True,
        capture_output=True,
    )
    yield module, "souverain-test", HSM_PIN
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


def entry(i: int, tenant: str = "bank") -> Entry:
    """A distinctive entry: its route names its number, so tests can find it again."""
    return Entry(
        tenant=tenant,
        key_id="k1",
        route=f"route-{i}",
        model="smollm2",
        data_class="personal",
        found={"IBAN": 1, "EMAIL": i % 3},
        decision="allowed",
        reasons=["policy allows personal data on on-premises routes"],
        prompt_tokens=i,
        completion_tokens=2 * i,
        latency_ms=i % 100,
    )


def open_ledger(tmp_path: Path, store: Any, **overrides: Any) -> Ledger:
    retention = overrides.pop("retention", RetentionConfig())
    config = LedgerConfig(store=store, retention=retention, **overrides)
    return Ledger.open(config, state_dir=tmp_path)


def fill(tmp_path: Path, store: Any, counts: list[int], content: bool = False, **overrides: Any) -> Ledger:
    """A closed ledger with one checkpoint after each group of `counts` entries; with
    `content`, each append also hands the ledger a request and a response."""

    async def go() -> Ledger:
        ledger = open_ledger(tmp_path, store, **overrides)
        extra = {"request": b"a prompt", "response": b"an answer"} if content else {}
        n = 0
        for count in counts:
            await asyncio.gather(*(ledger.append(entry(n + i), **extra) for i in range(count)))
            n += count
            await ledger.integrate()
        await ledger.stop()
        return ledger

    return asyncio.run(go())
