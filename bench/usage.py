"""What the account stage adds to a request, and how fast usage rows are written.

    .venv/bin/python bench/usage.py [--rounds 3] [--gateway] [--json bench/results/usage.json]

1. Added per request: the account stage's own calls, timed in process around exactly
   what the spine runs for one request: `admit` (reserve the worst case on the budgets),
   `cost` (the price), `book` (queue the row and settlement; the writer thread runs
   alongside, as in the gateway), at concurrency 1 (one request at a time) and at
   saturation (32 at once on one event loop, uvloop's as in the gateway: each figure then
   includes waiting for the other 31 and for the budget store), per budget store: none
   (accounting only), SQLite (one machine), PostgreSQL (replicas), Redis (a redis-server
   of this run, on a Unix socket). A request with budgets reserves on 3 counters (a
   tenant's money, requests and tokens per minute). Nothing here is an HTTP round trip: it
   is the stage's cost alone. The setups run in turn, `--rounds` times; each figure is the
   median over the rounds (kept in the JSON), and "added" is a setup's p50 minus that of
   "none" in the same round. `store_calls_per_request` at saturation shows the batching
   of reservations.
2. With `--gateway`: the same, end to end, against the mock upstream (bench/harness.py):
   `souverain serve` with accounting only and with budgets, SQLite state, then Redis as
   the budget store, then PostgreSQL state; closed loops at concurrency 1 and 32 with the
   load generator of bench/replicas.py; added = p50 with budgets minus without, per round,
   and the gateway process's CPU time per request at saturation (where a closed loop's
   p50 is about concurrency × CPU per request, so CPU per request is the figure to read;
   the budget store's own CPU, PostgreSQL's or Redis's, is not in it).
3. Usage rows written per second by the writer's `UsageDb.write` (batches of 500, with the
   daily roll-up in the same transaction; days of this month, so PostgreSQL's rows go to
   this month's partition), SQLite and PostgreSQL.
4. The bytes a row takes on disk, its index and the roll-up included: 50,000 rows written
   as the writer does into a fresh store (SQLite: the pages of the usage tables and their
   indexes, from `dbstat`; PostgreSQL: `pg_total_relation_size` of every partition and the
   roll-up), divided by 50,000; and the seconds `prune` takes to remove them (SQLite:
   deleted in batches; PostgreSQL: one partition dropped).

PostgreSQL: $SOUVERAIN_BENCH_PG_DSN, default host=127.0.0.1 dbname=test user=postgres;
a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # harness, replicas (part 2)
from souverain.auth import Principal  # noqa: E402
from souverain.usage.accounting import Accounting, Booking  # noqa: E402
from souverain.usage.budgets import Counters, RedisCounters, StateCounters  # noqa: E402
from souverain.usage.config import Budget, Price, UsageConfig  # noqa: E402
from souverain.usage.prices import Tokens  # noqa: E402
from souverain.usage.store import Row, UsageDb, day_of, month_start  # noqa: E402

PG_DSN = os.environ.get("SOUVERAIN_BENCH_PG_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres")
SATURATION = 32
PRINCIPAL = Principal("k1", "bench", "acme", frozenset({"inference"}), None)
CONFIG = UsageConfig(
    prices=[Price(route="r", input_per_million=Decimal("1.5"), output_per_million=Decimal("7.5"))],
    budgets=[Budget(tenant="acme", money=Decimal(10**9), requests_per_minute=10**9, tokens_per_minute=10**12)],
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one(accounting: Accounting, samples: list[float], index: int) -> None:
    started = time.perf_counter()
    grant = await accounting.admit(PRINCIPAL, "", [("r", "m", "d")], 300, 16)
    tokens = Tokens(30, 16)
    cost = accounting.cost("r", "m", "d", tokens, 0.01)
    # with a ledger index, as in a gateway with its ledger (on by default)
    accounting.book(Booking(PRINCIPAL, "", "m", "r", "public", 200, tokens, cost, grant, time.time()), index)
    samples.append((time.perf_counter() - started) * 1000)


async def drive(accounting: Accounting, concurrency: int, requests: int, first: int) -> dict[str, float]:
    samples: list[float] = []
    index = itertools.count(first)
    for _ in range(200):  # warm-up: connections, prepared plans
        await one(accounting, [], next(index))
    calls = accounting.admissions.calls if accounting.admissions is not None else 0
    began = time.perf_counter()
    remaining = requests

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one(accounting, samples, next(index))

    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    calls = (accounting.admissions.calls if accounting.admissions is not None else 0) - calls
    return {
        "p50_ms": round(statistics.median(samples), 4),
        "p99_ms": round(percentile(samples, 0.99), 4),
        "per_s": round(len(samples) / elapsed, 1),
        "store_calls_per_request": round(calls / len(samples), 3),
    }


def stage(open_db: Any, counters: Counters | None, requests: int, first: int) -> dict[str, Any]:
    config = CONFIG if counters is not None else UsageConfig(prices=CONFIG.prices)
    accounting = Accounting(config, open_db, counters)
    accounting.start()
    try:
        return {
            "c1": uvloop.run(drive(accounting, 1, requests, first)),
            f"c{SATURATION}": uvloop.run(drive(accounting, SATURATION, requests, first + 10**7)),
        }
    finally:
        accounting.stop()


def medians(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The median over the rounds of every figure of a setup (same shape as one round)."""
    out: dict[str, Any] = {}
    for shape in rounds[0]:
        if isinstance(rounds[0][shape], dict):
            out[shape] = {k: round(statistics.median(r[shape][k] for r in rounds), 4) for k in rounds[0][shape]}
        else:
            out[shape] = round(statistics.median(r[shape] for r in rounds), 4)
    return out


def in_process(
    opener: dict[str, Any], redis_url: str | None, requests: int, rounds: int, waiter: Any
) -> dict[str, Any]:
    """Part 1: every setup in turn, `rounds` times (medians), "none" in each round."""
    sqlite, postgres = opener["sqlite"], opener["postgres"]
    setups: dict[str, Callable[[], Counters | None]] = {
        "none": lambda: None,
        "sqlite": lambda: StateCounters(sqlite),
        "postgres": lambda: StateCounters(postgres),
    }
    if redis_url is not None:
        setups["redis"] = lambda: RedisCounters(redis_url)
    per_round: dict[str, list[dict[str, Any]]] = {name: [] for name in setups}
    first = secrets.randbits(40)
    for n in range(rounds):
        waiter.wait()
        for name, make in setups.items():
            counters = make()
            row = stage(postgres if name == "postgres" else sqlite, counters, requests, first)
            first += 2 * 10**7
            per_round[name].append(row)
        for name in setups:
            row = per_round[name][-1]
            for shape in ("c1", f"c{SATURATION}"):
                row[f"added_{shape}_p50_ms"] = round(row[shape]["p50_ms"] - per_round["none"][-1][shape]["p50_ms"], 4)
            print(f"round {n + 1} {name}: {json.dumps(row)}", file=sys.stderr, flush=True)
    return {name: {**medians(runs), "rounds": runs} for name, runs in per_round.items()}


# Part 2: each setup's "added" is over the one named here, in the same round.
GATEWAY_BASE = {
    "sqlite-none": "sqlite-none",
    "sqlite-accounting": "sqlite-none",
    "sqlite-budgets": "sqlite-accounting",
    "redis-budgets": "sqlite-accounting",
    "postgres-accounting": "postgres-accounting",
    "postgres-budgets": "postgres-accounting",
}


def gateway_setups(upstream: int, redis_url: str | None, schema: str, keys: Path) -> dict[str, str]:
    """Part 2's configurations: (name → souverain.yaml). The PostgreSQL setups share one
    schema, so their ledger shares one signing key too (`keys`)."""
    from harness import mock_config

    prices = "usage:\n  prices:\n    - {route: mock, input_per_million: 1.5, output_per_million: 7.5}\n"
    budgets = (
        "  budgets:\n    - {tenant: default, money: 1000000000, requests_per_minute: 1000000000, "
        "tokens_per_minute: 1000000000000}\n"
    )
    postgres = (
        f'state: {{kind: postgres, dsn: "{PG_DSN}", schema: {schema}}}\n'
        f"ledger:\n  keys: {{provider: file, path: {keys}}}\n"
    )
    setups = {
        "sqlite-none": "",
        "sqlite-accounting": prices,
        "sqlite-budgets": prices + budgets,
        "postgres-accounting": postgres + prices,
        "postgres-budgets": postgres + prices + budgets,
    }
    if redis_url is not None:
        setups["redis-budgets"] = prices + budgets + f'  budget_store: {{kind: redis, url: "{redis_url}"}}\n'
    return {name: mock_config(upstream) + text for name, text in setups.items()}


def process_cpu_s(pid: int) -> float:
    """User and system CPU seconds of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def through_gateway(redis_url: str | None, rounds: int, waiter: Any) -> dict[str, Any]:
    """Part 2: each setup's gateway in turn, closed loops at c=1 and c=32, `rounds` times."""
    import harness
    from replicas import closed_loop

    per_round: dict[str, list[dict[str, Any]]] = {}
    with (
        harness.mock_upstream() as upstream,
        pg_schema() as schema,
        tempfile.TemporaryDirectory(prefix="souverain-bench-usage-") as tmp,
    ):
        for n in range(rounds):
            waiter.wait()
            setups = list(gateway_setups(upstream, redis_url, schema, Path(tmp) / "ledger-keys").items())
            # Each round starts at another setup: a gateway started right after another ran
            # slower (the same setup measured first and second differed by 0.4 to 1.5 ms at
            # c=1 p50), which a fixed order books as the later setup's cost.
            shift = n % len(setups)
            for name, config in setups[shift:] + setups[:shift]:
                with harness.gateway(config) as gw:
                    row = {"c1": uvloop.run(closed_loop([gw.url], gw.key, 1, 1000))}
                    cpu = process_cpu_s(gw.pid)
                    row[f"c{SATURATION}"] = saturated = uvloop.run(closed_loop([gw.url], gw.key, SATURATION, 3000))
                    # the closed loop's warm-up (4 × concurrency) is in the CPU time too
                    served = saturated["requests"] + max(50, 4 * SATURATION)
                    row["cpu_us_per_request"] = round((process_cpu_s(gw.pid) - cpu) / served * 1e6, 1)
                per_round.setdefault(name, []).append(row)
            for name, runs in per_round.items():
                base, row = per_round[GATEWAY_BASE[name]][-1], runs[-1]
                for shape in ("c1", f"c{SATURATION}"):
                    row[f"added_{shape}_p50_ms"] = round(row[shape]["p50_ms"] - base[shape]["p50_ms"], 3)
                row["added_cpu_us_per_request"] = round(row["cpu_us_per_request"] - base["cpu_us_per_request"], 1)
                print(f"gateway round {n + 1} {name}: {json.dumps(row)}", file=sys.stderr, flush=True)
    return {name: {**medians(runs), "rounds": runs} for name, runs in per_round.items()}


def rows(total: int, days: list[int]) -> list[Row]:
    base = secrets.randbits(40)
    return [
        Row(base + i, days[i % len(days)], "acme", f"k{i % 7}", "cc", "m", "r", "public", 200, 30, 16, 0, 0, 165)
        for i in range(total)
    ]


def rows_per_second(db: UsageDb, total: int = 20_000, batch: int = 500) -> float:
    today = day_of(time.time())
    first = month_start(today)
    batch_rows = rows(total, [max(first, today - 2), max(first, today - 1), today])
    began = time.perf_counter()
    for start in range(0, total, batch):
        db.write(batch_rows[start : start + batch])
    return round(total / (time.perf_counter() - began), 1)


USAGE_TABLES = ("usage_rows", "usage_rows_day", "sqlite_autoindex_usage_rows_1", "usage_daily")
USAGE_TABLES += ("sqlite_autoindex_usage_daily_1",)


def row_size(db: UsageDb, total: int = 50_000, batch: int = 500) -> dict[str, float]:
    """Bytes a row takes (50,000 rows of one past month, as the writer writes them), and
    the seconds `prune` takes to remove them."""
    now = time.time()
    past = month_start(month_start(day_of(now)) - 1)  # the first day of last month
    db.prepare(past * 86400)
    written = rows(total, [past + d for d in range(28)])
    for start in range(0, total, batch):
        db.write(written[start : start + batch])
    if db.kind == "postgres":
        db.execute("VACUUM ANALYZE usage_rows")
        db.execute("VACUUM ANALYZE usage_daily")
        (size,) = db.execute(
            "SELECT (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('usage_rows')) "
            "+ pg_total_relation_size('usage_daily')"
        ).fetchone()
    else:
        marks = ", ".join("?" * len(USAGE_TABLES))
        (size,) = db.conn.execute(f"SELECT sum(pgsize) FROM dbstat WHERE name IN ({marks})", USAGE_TABLES).fetchone()
    began = time.perf_counter()
    pruned = db.prune(1, (month_start(day_of(now)) + 1) * 86400, fed_by_ledger=False)  # cut: this month's start
    seconds = time.perf_counter() - began
    assert db.execute("SELECT count(*) FROM usage_rows").fetchone()[0] == 0, pruned
    return {"bytes_per_row": round(int(size) / total, 1), "prune_s": round(seconds, 3)}


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    import psycopg

    schema = f"bench_usage_{secrets.token_hex(4)}"
    try:
        yield schema
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as db:
            db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[str | None]:
    if shutil.which("redis-server") is None:
        yield None
        return
    sock = tmp / "redis.sock"
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--requests", type=int, default=3000, help="measured requests per setup and concurrency")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the setups; figures are medians")
    parser.add_argument("--gateway", action="store_true", help="also measure through `souverain serve` (part 2)")
    parser.add_argument("--rows-only", action="store_true", help="only the rows: written per second, size, prune")
    args = parser.parse_args(argv)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    results: dict[str, Any] = {
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()},
        "saturation_concurrency": SATURATION,
        "rounds": args.rounds,
        "added_per_request": {},
        "rows_per_s": {},
        "row_size": {},
    }
    import harness

    waiter = harness.QuietWaiter(20.0 * args.rounds)
    with tempfile.TemporaryDirectory(prefix="souverain-bench-usage-") as name, pg_schema() as schema:
        tmp = Path(name)
        sqlite_dir = tmp / "sqlite"
        sqlite_dir.mkdir()

        def sqlite() -> UsageDb:
            return UsageDb.sqlite(sqlite_dir)

        def postgres() -> UsageDb:
            return UsageDb.postgres(PG_DSN, schema)

        if not args.rows_only:
            with harness.OtherLoad() as background, redis_server(tmp) as url:
                openers = {"sqlite": sqlite, "postgres": postgres}
                results["added_per_request"] = in_process(openers, url, args.requests, args.rounds, waiter)
                if args.gateway:
                    results["through_gateway"] = through_gateway(url, args.rounds, waiter)
            results["other_processes_cores"] = round(background.cores, 2)
            results["waited_for_quiet_s"] = waiter.waited_s
        for kind, opener_ in (("sqlite", sqlite), ("postgres", postgres)):
            db = opener_()
            try:
                results["rows_per_s"][kind] = rows_per_second(db)
            finally:
                db.close()
        # the size of a row, in a store of its own
        fresh = tmp / "fresh"
        fresh.mkdir()
        with pg_schema() as other:
            for kind, opener in (
                ("sqlite", lambda: UsageDb.sqlite(fresh)),
                ("postgres", lambda: UsageDb.postgres(PG_DSN, other)),
            ):
                db = opener()
                try:
                    results["row_size"][kind] = row_size(db)
                finally:
                    db.close()
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
