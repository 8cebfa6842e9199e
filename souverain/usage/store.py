"""Usage rows, their daily roll-ups, and budget counters: one "usage" part of the state
(SQLite `usage.db` in the state directory, or the `state:` PostgreSQL schema).

A row is one recorded request (about 100 bytes: numbers and short names, never content),
keyed by its ledger index, so a row written twice is written once (`ON CONFLICT DO
NOTHING`) and the ledger tells which are missing. Rows are indexed by day; each batch
adds what it inserted to `usage_daily`, in the same transaction, so reports read the
roll-up (one row per day and combination of names), never the rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from souverain.state.migrate import Migration, migrate_postgres, migrate_sqlite, use_wal

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
MIGRATIONS = (Migration(1, "usage rows, daily roll-ups, budget counters", _TABLES),)
# PostgreSQL: every claim of a request reserved in one statement (one round trip, row
# locks held only while it runs), all or none: the function raises on the first that does
# not fit, which undoes the statement.
POSTGRES_MIGRATIONS = (*MIGRATIONS, Migration(2, "usage_reserve(): reserve all claims in one statement", (_RESERVE,)))


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

    def __init__(self, conn: Any, kind: str) -> None:
        self.conn = conn
        self.kind = kind

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
        except BaseException:
            conn.close()
            raise
        return cls(conn, "postgres")

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
        new: list[Row] = []
        for start in range(0, len(rows), 200):
            batch = rows[start : start + 200]
            values = ", ".join(["(" + ", ".join(["%s"] * 14) + ")"] * len(batch))
            params = [v for row in batch for v in astuple(row)]
            inserted = {
                r[0]
                for r in self.execute(
                    f"INSERT INTO usage_rows VALUES {values} ON CONFLICT (idx) DO NOTHING RETURNING idx", params
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
