"""Usage rows, their daily roll-ups, and budget counters: one "usage" part of the state
(SQLite `usage.db` in the state directory, or the `state:` PostgreSQL schema).

A row is one recorded request (numbers and short names, never content), keyed by its
ledger index, so a row written twice is written once (`ON CONFLICT DO NOTHING`) and the
ledger tells which are missing. Each batch adds what it inserted to `usage_daily`, in the
same transaction, so reports read the roll-up (one row per day and combination of names),
never the rows.

By time. PostgreSQL keeps the rows in one partition per UTC calendar month (range on
`day`), made ahead by `prepare` (this month's and the next), and a default partition that
takes a row whose month has none (it moves into its month's partition when that is
made): no row is ever refused for want of a partition. SQLite keeps one table indexed by
day. `prune` removes the rows of whole months older than `usage.retention_days`
(PostgreSQL: detaches and drops their partitions; SQLite: deletes them in small
transactions), never the roll-up, and remembers where it cut (`pruned_before`): a row for
a day before it is never written again (it is in the roll-up already), so a rebuild from
the ledger cannot bring pruned rows back or count them twice.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from souverain.state.migrate import Migration, lock_key, migrate_postgres, migrate_sqlite, use_wal

DIMENSIONS = ("day", "tenant", "key_id", "cost_centre", "model", "route", "data_class")
SUMS = ("requests", "refused", "input_tokens", "output_tokens", "reasoning_tokens", "cached_tokens", "cost_micros")

_TABLES = (
    """CREATE TABLE usage_rows (
        idx BIGINT PRIMARY KEY, day INTEGER NOT NULL, tenant TEXT NOT NULL, key_id TEXT NOT NULL,
        cost_centre TEXT NOT NULL, model TEXT NOT NULL, route TEXT NOT NULL, data_class TEXT NOT NULL,
        status SMALLINT NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, cost_micros BIGINT NOT NULL)""",
    "CREATE INDEX usage_rows_day ON usage_rows (day)",
    """CREATE TABLE usage_daily (
        day INTEGER NOT NULL, tenant TEXT NOT NULL, key_id TEXT NOT NULL, cost_centre TEXT NOT NULL,
        model TEXT NOT NULL, route TEXT NOT NULL, data_class TEXT NOT NULL,
        requests BIGINT NOT NULL, refused BIGINT NOT NULL, input_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL, cached_tokens BIGINT NOT NULL,
        cost_micros BIGINT NOT NULL,
        PRIMARY KEY (day, tenant, key_id, cost_centre, model, route, data_class))""",
    "CREATE TABLE usage_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    # Budget and limit counters: one row per (scope, window start), used in micro-units
    # (money) or tokens or requests; old windows are deleted as new ones start.
    "CREATE TABLE usage_counters (scope TEXT NOT NULL, win BIGINT NOT NULL, used BIGINT NOT NULL, "
    "PRIMARY KEY (scope, win))",
)
_RESERVE = """CREATE FUNCTION usage_reserve(scopes text[], wins bigint[], amounts bigint[], limits bigint[])
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
  result bigint[] := '{}';
  now_used bigint;
BEGIN
  FOR i IN 1 .. coalesce(array_length(scopes, 1), 0) LOOP
    now_used := NULL;
    INSERT INTO usage_counters AS c VALUES (scopes[i], wins[i], amounts[i])
      ON CONFLICT (scope, win) DO UPDATE SET used = c.used + EXCLUDED.used
      WHERE c.used + EXCLUDED.used <= limits[i]
      RETURNING c.used INTO now_used;
    IF now_used IS NULL THEN
      SELECT c.used INTO now_used FROM usage_counters AS c WHERE c.scope = scopes[i] AND c.win = wins[i];
      RAISE EXCEPTION 'budget exceeded' USING ERRCODE = 'SV001', DETAIL = i || ':' || coalesce(now_used, 0);
    END IF;
    result := result || now_used;
  END LOOP;
  RETURN result;
END $$"""
# PostgreSQL: the rows of one UTC calendar month in a partition of their own (named
# usage_rows_YYYY_MM, days [first of the month, first of the next)). usage_partition(day)
# makes the partition of the month holding `day` unless it exists, moving that month's
# rows out of the default partition first (PostgreSQL refuses a partition whose rows the
# default partition holds). The caller holds the "usage-partitions" advisory lock.
_PARTITION = """CREATE FUNCTION usage_partition(d integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  month date := date_trunc('month', date '1970-01-01' + d)::date;
  lo integer := month - date '1970-01-01';
  hi integer := (month + interval '1 month')::date - date '1970-01-01';
  name text := 'usage_rows_' || to_char(month, 'YYYY_MM');
BEGIN
  IF to_regclass(format('%I.%I', current_schema(), name)) IS NULL THEN
    EXECUTE format('CREATE TABLE %I (LIKE usage_rows)', name);
    EXECUTE format('WITH moved AS (DELETE FROM usage_rows_default WHERE day >= %s AND day < %s RETURNING *) '
                   'INSERT INTO %I SELECT * FROM moved', lo, hi, name);
    EXECUTE format('ALTER TABLE usage_rows ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', name, lo, hi);
  END IF;
  RETURN name;
END $$"""
# The unpartitioned table of versions 1 and 2 becomes the partitioned one: a partition for
# every month it has rows in, then its rows copied over, in the migration's transaction.
# The key is (idx, day), as PostgreSQL requires the partition key in it; `_write` looks up
# an index under the neighbouring days before inserting, so an index still has one row.
_PARTITIONED = (
    "ALTER TABLE usage_rows RENAME TO usage_rows_v2",
    "ALTER INDEX usage_rows_pkey RENAME TO usage_rows_v2_pkey",
    "DROP INDEX usage_rows_day",
    """CREATE TABLE usage_rows (
        idx BIGINT NOT NULL, day INTEGER NOT NULL, tenant TEXT NOT NULL, key_id TEXT NOT NULL,
        cost_centre TEXT NOT NULL, model TEXT NOT NULL, route TEXT NOT NULL, data_class TEXT NOT NULL,
        status SMALLINT NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, cost_micros BIGINT NOT NULL,
        PRIMARY KEY (idx, day)) PARTITION BY RANGE (day)""",
    "CREATE TABLE usage_rows_default PARTITION OF usage_rows DEFAULT",
    _PARTITION,
    "SELECT usage_partition(d) FROM (SELECT DISTINCT date_trunc('month', date '1970-01-01' + day)::date "
    "- date '1970-01-01' AS d FROM usage_rows_v2) AS months",
    "INSERT INTO usage_rows SELECT * FROM usage_rows_v2",
    "DROP TABLE usage_rows_v2",
)
MIGRATIONS = (Migration(1, "usage rows, daily roll-ups, budget counters", _TABLES),)
# PostgreSQL: every claim of a request reserved in one statement (one round trip, row
# locks held only while it runs), all or none: the function raises on the first that does
# not fit, which undoes the statement.
POSTGRES_MIGRATIONS = (
    *MIGRATIONS,
    Migration(2, "usage_reserve(): reserve all claims in one statement", (_RESERVE,)),
    Migration(3, "usage rows partitioned by month, with a default partition", _PARTITIONED),
)
_MONTHLY = re.compile(r"^usage_rows_(\d{4})_(\d{2})$")


def day_of(when: float) -> int:
    """Days since 1970-01-01 of a time in epoch seconds (UTC)."""
    return int(when // 86400)


def _date(day: int) -> date:
    return datetime.fromtimestamp(day * 86400, UTC).date()


def _day(d: date) -> int:
    return day_of(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def day_iso(day: int) -> str:
    """A day (days since 1970-01-01) as YYYY-MM-DD."""
    return _date(day).isoformat()


def month_start(day: int) -> int:
    """The first day of the UTC calendar month holding `day` (days since 1970-01-01)."""
    return _day(_date(day).replace(day=1))


def month_after(day: int) -> int:
    """The first day of the month after the one holding `day`."""
    d = _date(day)
    return _day(date(d.year + (d.month == 12), d.month % 12 + 1, 1))


@dataclass(frozen=True, slots=True)
class Pruned:
    """What `prune` removed: the rows of every day before `before` (a month's first day),
    `rows` of them counted where they were deleted one by one (SQLite, PostgreSQL's
    default partition), and the monthly `partitions` dropped whole (PostgreSQL).
    `held_back`: the cut was moved earlier because the ledger's rows before the retention's
    cut are not all in the roll-up yet (the writer has not caught up with the ledger)."""

    before: int
    rows: int
    partitions: tuple[str, ...]
    held_back: bool


@dataclass(frozen=True, slots=True)
class Row:
    idx: int  # the ledger index (negative: a request recorded without a ledger)
    day: int  # days since 1970-01-01, UTC
    tenant: str
    key_id: str
    cost_centre: str
    model: str
    route: str
    data_class: str
    status: int
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cached_tokens: int
    cost_micros: int


class UsageDb:
    """One connection to the usage part; not thread-safe (one per thread)."""

    def __init__(self, conn: Any, kind: str, schema: str = "") -> None:
        self.conn = conn
        self.kind = kind
        self.schema = schema

    @classmethod
    def sqlite(cls, directory: Path) -> UsageDb:
        path = directory / "usage.db"
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        use_wal(db)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=10000")
        migrate_sqlite(db, "usage", MIGRATIONS, str(path))
        return cls(db, "sqlite")

    @classmethod
    def postgres(cls, dsn: str, schema: str, connect_timeout: float = 5) -> UsageDb:
        import psycopg

        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=max(1, int(connect_timeout)))
        try:
            migrate_postgres(conn, schema, "usage", POSTGRES_MIGRATIONS)
            db = cls(conn, "postgres", schema)
            db.prepare()
        except BaseException:
            conn.close()
            raise
        return db

    def close(self) -> None:
        self.conn.close()

    def sql(self, statement: str) -> str:
        return statement.replace("%s", "?") if self.kind == "sqlite" else statement

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self.sql(statement), tuple(params))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.kind == "postgres":
            with self.conn.transaction():
                yield
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def relaxed(self) -> None:
        """This connection's commits need not wait for the WAL to reach the disk
        (PostgreSQL; SQLite's WAL with synchronous=NORMAL already does not)."""
        if self.kind == "postgres":
            self.conn.execute("SET synchronous_commit TO off")

    # -- rows ------------------------------------------------------------------------
    def write(self, rows: Sequence[Row]) -> int:
        """Insert `rows` (those already there are skipped) and add the new ones to the
        daily roll-up, in one transaction. Returns how many were new."""
        if not rows:
            return 0
        with self.transaction():
            return self._write(rows)

    def _write(self, rows: Sequence[Row]) -> int:
        # A row of a pruned day is in the roll-up already (see the module's docstring).
        floor = self.meta("pruned_before")
        rows = [row for row in rows if row.day >= floor]
        if self.kind == "postgres" and rows:
            # The key is (idx, day): an index already written under a neighbouring day is
            # skipped. (Rows are dated by their ledger entry's time, as the fill dates them;
            # this guards rows written by a version that dated them apart.)
            near = {
                r[0]
                for r in self.execute(
                    "SELECT idx FROM usage_rows WHERE idx = ANY(%s) AND day >= %s AND day <= %s",
                    ([row.idx for row in rows], min(row.day for row in rows) - 1, max(row.day for row in rows) + 1),
                )
            }
            rows = [row for row in rows if row.idx not in near]
        new: list[Row] = []
        for start in range(0, len(rows), 200):
            batch = rows[start : start + 200]
            values = ", ".join(["(" + ", ".join(["%s"] * 14) + ")"] * len(batch))
            params = [v for row in batch for v in astuple(row)]
            inserted = {
                r[0]
                for r in self.execute(
                    f"INSERT INTO usage_rows VALUES {values} ON CONFLICT ({self._key}) DO NOTHING RETURNING idx", params
                ).fetchall()
            }
            new.extend(row for row in batch if row.idx in inserted)
        daily: dict[tuple[Any, ...], list[int]] = {}
        for row in new:
            key = (row.day, row.tenant, row.key_id, row.cost_centre, row.model, row.route, row.data_class)
            sums = daily.setdefault(key, [0] * 7)
            for i, value in enumerate(
                (
                    1,
                    int(row.status >= 400),
                    row.input_tokens,
                    row.output_tokens,
                    row.reasoning_tokens,
                    row.cached_tokens,
                    row.cost_micros,
                )
            ):
                sums[i] += value
        for key, sums in sorted(daily.items()):  # one order for every writer: no deadlock
            self.execute(
                "INSERT INTO usage_daily VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (day, tenant, key_id, cost_centre, model, route, data_class) DO UPDATE SET "
                + ", ".join(f"{s} = usage_daily.{s} + EXCLUDED.{s}" for s in SUMS),
                [*key, *sums],
            )
        return len(new)

    @property
    def _key(self) -> str:
        return "idx, day" if self.kind == "postgres" else "idx"

    def present(self, start: int, end: int) -> set[int]:
        """Ledger indexes in [start, end) that have a row."""
        return {r[0] for r in self.execute("SELECT idx FROM usage_rows WHERE idx >= %s AND idx < %s", (start, end))}

    def meta(self, name: str) -> int:
        row = self.execute("SELECT value FROM usage_meta WHERE name = %s", (name,)).fetchone()
        return int(row[0]) if row else 0

    def set_meta(self, name: str, value: int) -> None:
        self.execute(
            "INSERT INTO usage_meta VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            (name, value),
        )

    # -- by time ---------------------------------------------------------------------
    def prepare(self, now: float | None = None) -> list[str]:
        """Make the partitions of the month holding `now` (default: now) and of the next
        month, where missing (PostgreSQL; SQLite has none); returns those made. One read
        when they exist; else under the schema's "usage-partitions" advisory lock, so
        replicas starting together make each once."""
        if self.kind != "postgres":
            return []
        first = month_start(day_of(time.time() if now is None else now))
        months = (first, month_after(first))
        names = [f"usage_rows_{_date(m):%Y_%m}" for m in months]
        found = self.execute(
            "SELECT " + ", ".join(["to_regclass(%s)"] * len(names)), [f'"{self.schema}".{n}' for n in names]
        ).fetchone()
        missing = [m for m, n, f in zip(months, names, found, strict=True) if f is None]
        made = []
        if missing:
            with self.transaction():
                self.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(self.schema, "usage-partitions"),))
                before = set(self.partitions())
                for m in missing:
                    name = self.execute("SELECT usage_partition(%s)", (m,)).fetchone()[0]
                    if name not in before:
                        made.append(name)
        return made

    def partitions(self) -> dict[str, tuple[int, int]]:
        """PostgreSQL's monthly partitions of the rows: name -> [first day, end day)
        (SQLite: none)."""
        found: dict[str, tuple[int, int]] = {}
        if self.kind != "postgres":
            return found
        for (name,) in self.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'usage_rows'::regclass"
        ):
            matched = _MONTHLY.match(name)
            if matched:
                first = _day(date(int(matched[1]), int(matched[2]), 1))
                found[name] = (first, month_after(first))
        return found

    def prune(self, retention_days: int, now: float, fed_by_ledger: bool, batch: int = 5000) -> Pruned:
        """Remove the rows of every whole UTC month that ended more than `retention_days`
        days before `now`; the daily roll-up stays. `fed_by_ledger`: rows are rebuilt from
        the ledger (`Accounting.fill`), so nothing is cut after the day before which the
        fill has given every entry its row (`filled_day`): a row not yet in the roll-up is
        never removed."""
        before = month_start(day_of(now) - retention_days)
        held_back = False
        if fed_by_ledger:
            filled = month_start(self.meta("filled_day"))
            held_back, before = filled < before, min(before, filled)
        if self.kind == "postgres":
            with self.transaction():
                self.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(self.schema, "usage-partitions"),))
                self._mark_pruned(before)
                dropped = []
                for name, (_, end) in sorted(self.partitions().items()):
                    if end <= before:
                        self.execute(f'ALTER TABLE usage_rows DETACH PARTITION "{name}"')
                        self.execute(f'DROP TABLE "{name}"')
                        dropped.append(name)
                rows = self.execute("DELETE FROM usage_rows_default WHERE day < %s", (before,)).rowcount
            return Pruned(before, rows, tuple(dropped), held_back)
        with self.transaction():
            self._mark_pruned(before)
        rows = 0
        while True:  # in small transactions: the writer and budget counters wait little
            with self.transaction():
                deleted = self.execute(
                    "DELETE FROM usage_rows WHERE rowid IN "
                    "(SELECT rowid FROM usage_rows WHERE day < %s ORDER BY day LIMIT %s)",
                    (before, batch),
                ).rowcount
            rows += deleted
            if deleted < batch:
                return Pruned(before, rows, (), held_back)

    def _mark_pruned(self, before: int) -> None:
        if before > self.meta("pruned_before"):
            self.set_meta("pruned_before", before)

    # -- reports ---------------------------------------------------------------------
    def totals(
        self, by: Sequence[str], first_day: int | None = None, last_day: int | None = None, tenant: str | None = None
    ) -> list[dict[str, Any]]:
        """Sums over the daily roll-up, grouped by `by` (names from DIMENSIONS)."""
        for name in by:
            if name not in DIMENSIONS:
                raise ValueError(f"cannot group by {name!r}; one of {', '.join(DIMENSIONS)}")
        where: list[str] = ["1 = 1"]
        params: list[object] = []
        if first_day is not None:
            where.append("day >= %s")
            params.append(first_day)
        if last_day is not None:
            where.append("day <= %s")
            params.append(last_day)
        if tenant is not None:
            where.append("tenant = %s")
            params.append(tenant)
        columns = list(by) + [f"sum({s})" for s in SUMS]
        group = f" GROUP BY {', '.join(by)} ORDER BY {', '.join(by)}" if by else ""
        cursor = self.execute(
            f"SELECT {', '.join(columns)} FROM usage_daily WHERE {' AND '.join(where)}{group}", params
        )
        result = []
        for row in cursor.fetchall():
            if not by and row[0] is None:
                continue  # no rows at all
            names = dict(zip(by, row[: len(by)], strict=True))
            sums = {s: int(v or 0) for s, v in zip(SUMS, row[len(by) :], strict=True)}
            result.append({**names, **sums})
        return result
