"""Usage rows by time, on real SQLite and PostgreSQL: monthly partitions made ahead (and a
default one, so a row whose month has none is kept), the retention that drops whole old
months while the daily totals stay, a rebuild from the ledger that cannot bring pruned
rows back, and the migration of an unpartitioned table (schema version 2), alone and by
three processes at once. `souverain usage prune` on a state directory.

PostgreSQL is real: skipped with the reason when absent, a failure under CI=true."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import astuple
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import souverain_cli
from ledger_fixtures import open_ledger
from polling import until

from souverain.ledger import Entry, SqliteStoreConfig
from souverain.state.migrate import migrate_postgres
from souverain.usage.accounting import Accounting
from souverain.usage.config import UsageConfig
from souverain.usage.store import POSTGRES_MIGRATIONS, Row, UsageDb, day_of

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 12, 15, 12, tzinfo=UTC).timestamp()


def day(y: int, m: int, d: int) -> int:
    return (date(y, m, d) - date(1970, 1, 1)).days


def row(idx: int, on: int, tenant: str = "acme", status: int = 200, cost: int = 165) -> Row:
    return Row(idx, on, tenant, f"k{idx % 3}", "cc", "m", "r", "public", status, 30, 16, 2, 4, cost)


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], UsageDb]]:
    """Opens the usage store: SQLite in tmp_path, then PostgreSQL in a schema of its own."""
    if request.param == "sqlite":
        yield lambda: UsageDb.sqlite(tmp_path)
        return
    dsn, schema = request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_schema")
    yield lambda: UsageDb.postgres(dsn, schema)


@pytest.fixture
def pg(pg_dsn: str, pg_schema: str) -> Iterator[UsageDb]:
    db = UsageDb.postgres(pg_dsn, pg_schema)
    yield db
    db.close()


def where(db: UsageDb) -> dict[int, str]:
    """PostgreSQL: the partition each row is in, by index."""
    return {idx: name for idx, name in db.execute("SELECT idx, tableoid::regclass::text FROM usage_rows")}


def indexes(db: UsageDb) -> set[int]:
    return {idx for (idx,) in db.execute("SELECT idx FROM usage_rows")}


def month_name(when: float) -> str:
    return f"usage_rows_{datetime.fromtimestamp(when, UTC):%Y_%m}"


# -- partitions ---------------------------------------------------------------------------
def test_partitions_are_made_ahead_and_rows_land_in_their_month(pg: UsageDb) -> None:
    now = time.time()
    this_month = month_name(now)
    today = day_of(now)
    following = datetime.fromtimestamp(now, UTC).date().replace(day=1)
    following = date(following.year + (following.month == 12), following.month % 12 + 1, 1)
    next_month = f"usage_rows_{following:%Y_%m}"
    # opening the store (what every process does at start) made this month's and the next
    assert {this_month, next_month} <= set(pg.partitions())
    assert pg.write([row(1, today), row(2, (following - date(1970, 1, 1)).days)]) == 2
    assert where(pg) == {1: this_month, 2: next_month}
    # as time passes the writer makes the following ones, each once
    later = NOW + 200 * 86400  # 2027-07-03
    assert pg.prepare(later) == ["usage_rows_2027_07", "usage_rows_2027_08"]
    assert pg.prepare(later) == []
    assert pg.write([row(3, day(2027, 7, 31)), row(4, day(2027, 8, 1))]) == 2
    assert where(pg)[3] == "usage_rows_2027_07" and where(pg)[4] == "usage_rows_2027_08"
    # keyed by (index, day), yet an index is written once: a request booked just after
    # midnight whose ledger entry (the rebuild's source) is dated just before
    assert pg.write([row(3, day(2027, 7, 30)), row(4, day(2027, 8, 2))]) == 0
    assert pg.totals([])[0]["requests"] == 4


def test_a_row_whose_month_has_no_partition_is_kept(pg: UsageDb) -> None:
    old = day(2001, 3, 10)
    assert pg.write([row(7, old), row(8, old + 1, status=500)]) == 2
    assert set(where(pg).values()) == {"usage_rows_default"}
    assert pg.totals(["day"], old, old + 1) == [
        {"day": old, **sums(1, 0)},
        {"day": old + 1, **sums(1, 1)},
    ]
    # its month's partition made later takes the rows out of the default one
    made = pg.prepare(datetime(2001, 3, 1, tzinfo=UTC).timestamp())
    assert made == ["usage_rows_2001_03", "usage_rows_2001_04"]
    assert where(pg) == {7: "usage_rows_2001_03", 8: "usage_rows_2001_03"}
    assert pg.write([row(7, old)]) == 0  # still written once
    assert pg.totals(["day"], old, old + 1)[0]["requests"] == 1


def sums(requests: int, refused: int) -> dict[str, int]:
    return {
        "requests": requests,
        "refused": refused,
        "input_tokens": 30 * requests,
        "output_tokens": 16 * requests,
        "reasoning_tokens": 2 * requests,
        "cached_tokens": 4 * requests,
        "cost_micros": 165 * requests,
    }


# -- retention -----------------------------------------------------------------------------
def spread(first: int, last: int, step: int = 3) -> list[Row]:
    """Rows from day `first` to `last`, every `step` days, plus each month's last and
    first day (where a cut falls), for two tenants."""
    days = set(range(first, last + 1, step))
    for d in range(first, last + 1):
        if datetime.fromtimestamp((d + 1) * 86400, UTC).day == 1:
            days |= {d, d + 1}
    return [
        row(1000 + i, d, tenant=("acme", "bank")[i % 2], status=(200, 429)[i % 5 == 0])
        for i, d in enumerate(sorted(days))
    ]


def test_retention_removes_whole_old_months_and_keeps_the_totals(opener: Callable[[], UsageDb]) -> None:
    db = opener()
    try:
        rows = spread(day(2025, 10, 1), day(2026, 12, 15))
        # PostgreSQL: some months with a partition, the others in the default one
        for month in ((2025, 10), (2026, 3), (2026, 8), (2026, 9), (2026, 12)):
            db.prepare(datetime(*month, 1, tzinfo=UTC).timestamp())
        assert db.write(rows) == len(rows)
        by_day = db.totals(["day", "tenant"])
        everything = db.totals([])
        months = db.partitions()  # PostgreSQL; SQLite has none
        cut = day(2026, 9, 1)

        # 100 days before 2026-12-15 is 2026-09-06: September is not over by then, so the
        # rows of August and before go, September's stay
        pruned = db.prune(100, NOW, fed_by_ledger=False)
        assert pruned.before == cut and not pruned.held_back
        assert indexes(db) == {r.idx for r in rows if r.day >= cut}
        assert db.totals(["day", "tenant"]) == by_day and db.totals([]) == everything
        # whole partitions dropped; the rest (SQLite's, PostgreSQL's default partition's)
        # deleted one by one
        assert set(pruned.partitions) == {name for name, (_, end) in months.items() if end <= cut}
        assert set(db.partitions()) == {name for name, (_, end) in months.items() if end > cut}
        in_months = [r for r in rows if r.day < cut and any(lo <= r.day < hi for lo, hi in months.values())]
        assert pruned.rows == len([r for r in rows if r.day < cut]) - len(in_months)
        if db.kind == "postgres":
            assert {"usage_rows_2025_10", "usage_rows_2026_03", "usage_rows_2026_08"} <= set(pruned.partitions)
            assert in_months and pruned.rows > 0

        again = db.prune(100, NOW, fed_by_ledger=False)
        assert (again.rows, again.partitions) == (0, ())
        # a row of a pruned day is one the roll-up counted already: it is not written again
        assert db.write([row(1000, day(2026, 1, 5)), row(99_999, day(2026, 2, 1))]) == 0
        assert db.totals(["day", "tenant"]) == by_day
        # the recent ones are written as ever
        assert db.write([row(100_000, day(2026, 12, 15))]) == 1
    finally:
        db.close()


# -- the rebuild from the ledger -------------------------------------------------------------
def old_ledger(tmp_path: Path, times: list[float]) -> Any:
    """A closed SQLite ledger with one entry at each of `times`."""

    async def go() -> Any:
        ledger = open_ledger(tmp_path, SqliteStoreConfig(path=str(tmp_path / "ledger.db")))
        for i, t in enumerate(times):
            await ledger.append(
                Entry(
                    time=datetime.fromtimestamp(t, UTC),
                    tenant="acme",
                    key_id=f"k{i % 2}",
                    route="r",
                    model="m",
                    prompt_tokens=10 + i,
                    completion_tokens=5,
                )
            )
        await ledger.integrate()
        await ledger.stop()
        return ledger

    return asyncio.run(go())


def test_a_rebuild_from_the_ledger_brings_no_pruned_row_back(opener: Callable[[], UsageDb], tmp_path: Path) -> None:
    times = [NOW - d * 86400 for d in range(400, 5, -9)]  # 2025-11-10 .. 2026-12-09
    ledger = old_ledger(tmp_path, times)
    accounting = Accounting(UsageConfig(retention_days=100), opener, None, ledger)
    db = opener()
    try:
        # before the fill has given the old entries their rows, nothing is cut
        pruned = accounting.maintain(db, NOW)
        assert pruned is not None and pruned.held_back and (pruned.rows, pruned.partitions) == (0, ())
        assert accounting.fill(db, NOW - 10) == len(times)
        totals = db.totals(["day", "key_id"])
        assert sum(t["requests"] for t in totals) == len(times)

        pruned = accounting.maintain(db, NOW)
        assert pruned is not None and pruned.before == day(2026, 9, 1) and not pruned.held_back
        kept = {i for i, t in enumerate(times) if day_of(t) >= day(2026, 9, 1)}
        assert indexes(db) == kept and 0 < len(kept) < len(times)

        # the fill goes over the ledger again (its mark lost, or a replica behind): the
        # pruned entries have no row, yet none comes back and no total moves
        db.set_meta("filled", 0)
        assert accounting.fill(db, NOW - 10) == 0
        assert indexes(db) == kept
        assert db.totals(["day", "key_id"]) == totals
        if db.kind == "postgres":
            assert db.execute("SELECT count(*) FROM usage_rows WHERE day < %s", (pruned.before,)).fetchone()[0] == 0
        # the ledger is never touched
        store = ledger.open_store()
        try:
            assert store.sequenced_size() == len(times)
        finally:
            store.close()
    finally:
        db.close()


def test_the_writer_prunes_on_its_own(tmp_path: Path) -> None:
    now = time.time()
    times = [now - d * 86400 for d in (400, 300, 200, 3)]
    ledger = old_ledger(tmp_path, times)
    accounting = Accounting(UsageConfig(retention_days=100), lambda: UsageDb.sqlite(tmp_path), None, ledger)
    accounting.start()  # its first pass fills from the ledger, then prunes
    try:
        db = UsageDb.sqlite(tmp_path)
        try:
            until(lambda: db.meta("pruned_before") > 0, 30, "the writer's first prune")
            assert indexes(db) == {3}
            assert db.totals([])[0]["requests"] == 4
        finally:
            db.close()
    finally:
        accounting.stop()


# -- migration from the unpartitioned table -------------------------------------------------
def version_2(dsn: str, schema: str, rows: list[Row]) -> None:
    """The schema as versions 1 and 2 left it, with `rows` and their roll-up."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate_postgres(conn, schema, "usage", POSTGRES_MIGRATIONS[:2])
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO usage_rows VALUES (" + ", ".join(["%s"] * 14) + ")", [astuple(r) for r in rows]
            )
        conn.execute(
            "INSERT INTO usage_daily SELECT day, tenant, key_id, cost_centre, model, route, data_class, count(*), "
            "count(*) FILTER (WHERE status >= 400), sum(input_tokens), sum(output_tokens), sum(reasoning_tokens), "
            "sum(cached_tokens), sum(cost_micros) FROM usage_rows "
            "GROUP BY day, tenant, key_id, cost_centre, model, route, data_class"
        )


def snapshot(dsn: str, schema: str) -> tuple[list[Any], list[Any], list[Any]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        return (
            conn.execute("SELECT * FROM usage_rows ORDER BY idx").fetchall(),
            conn.execute("SELECT * FROM usage_daily ORDER BY 1, 2, 3, 4, 5, 6, 7").fetchall(),
            conn.execute("SELECT version FROM souverain_migrations WHERE part = 'usage' ORDER BY 1").fetchall(),
        )


def old_rows() -> list[Row]:
    return [*spread(day(2026, 6, 20), day(2026, 12, 15), 1), row(1, day(1999, 12, 31)), row(2, day(2000, 1, 1))]


def test_the_migration_from_version_2_keeps_every_row_and_total(pg_dsn: str, pg_schema: str) -> None:
    rows = old_rows()
    version_2(pg_dsn, pg_schema, rows)
    before, daily, versions = snapshot(pg_dsn, pg_schema)
    assert len(before) == len(rows) and versions == [(1,), (2,)]

    db = UsageDb.postgres(pg_dsn, pg_schema)
    try:
        after, daily_after, versions = snapshot(pg_dsn, pg_schema)
        assert after == before and daily_after == daily and versions == [(1,), (2,), (3,)]
        # each row in its month's partition, none left over in the default one
        found = where(db)
        assert all(found[r.idx] == month_name(r.day * 86400) for r in rows)
        assert {"usage_rows_1999_12", "usage_rows_2000_01", "usage_rows_2026_06", "usage_rows_2026_12"} <= set(
            db.partitions()
        )
        # and it is written to as before: a row once, the roll-up in step
        assert db.write([rows[5], row(500_000, day(2026, 12, 15))]) == 1
        assert db.totals([])[0]["requests"] == len(rows) + 1
    finally:
        db.close()


def test_three_processes_migrating_at_once_migrate_once(pg_dsn: str, pg_schema: str, tmp_path: Path) -> None:
    rows = old_rows()
    version_2(pg_dsn, pg_schema, rows)
    before, daily, _ = snapshot(pg_dsn, pg_schema)
    go = tmp_path / "go"
    code = (
        "import os, sys, time\n"
        "from souverain.usage.store import UsageDb\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        f"db = UsageDb.postgres({pg_dsn!r}, {pg_schema!r})\n"
        "print(len(db.partitions())); db.close()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    go.touch()  # all three start their migration together
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outputs]
    assert len({out for out, _ in outputs}) == 1  # each saw the same partitions
    after, daily_after, versions = snapshot(pg_dsn, pg_schema)
    assert after == before and daily_after == daily
    assert versions == [(1,), (2,), (3,)]  # version 3 ran once


# -- souverain usage prune ------------------------------------------------------------------
def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return souverain_cli(tmp_path, "usage", *args)


def test_souverain_usage_prune(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    today = day_of(time.time())
    db = UsageDb.sqlite(state)
    try:
        rows = spread(today - 200, today, 7)
        db.write(rows)
    finally:
        db.close()
    (tmp_path / "forever.yaml").write_text("usage:\n  currency: EUR\n")
    (tmp_path / "souverain.yaml").write_text("usage:\n  retention_days: 60\n")
    totals = json.loads(cli(tmp_path, "--by", "day,tenant", "--format", "json").stdout)

    kept = cli(tmp_path, "prune", "--config", "forever.yaml")
    assert kept.returncode == 0 and "usage.retention_days is not set" in kept.stdout

    # the ledger is on (the default) and no writer has filled from it yet: nothing is cut
    held = cli(tmp_path, "prune")
    assert held.returncode == 0, held.stderr
    assert "nothing removed" in held.stdout and "has not yet given every older ledger entry its row" in held.stdout
    db = UsageDb.sqlite(state)
    try:
        assert len(indexes(db)) == len(rows)
        db.set_meta("filled_day", today)  # as the gateway's writer does once it has caught up
    finally:
        db.close()

    done = cli(tmp_path, "prune")
    assert done.returncode == 0, done.stderr
    db = UsageDb.sqlite(state)
    try:
        first = db.meta("pruned_before")
        assert first > today - 60 - 31 and first <= today - 60
        gone = [r for r in rows if r.day < first]
        assert gone and indexes(db) == {r.idx for r in rows if r.day >= first}
    finally:
        db.close()
    assert f"{len(gone)} rows deleted" in done.stdout
    assert json.loads(cli(tmp_path, "--by", "day,tenant", "--format", "json").stdout) == totals


def test_the_retention_setting_is_checked() -> None:
    from souverain.config import parse_config
    from souverain.errors import ConfigError

    assert parse_config("usage:\n  retention_days: 400\n", "t.yaml", {}).usage.retention_days == 400
    assert parse_config("usage: {}\n", "t.yaml", {}).usage.retention_days is None
    with pytest.raises(ConfigError, match=r"t.yaml:2: usage.retention_days"):
        parse_config("usage:\n  retention_days: 0\n", "t.yaml", {})
