"""Budget counters under concurrent admissions, on each real store (SQLite, PostgreSQL,
Redis): a burst of reservations is batched into one call to the store, and the outcome is
exactly that of reserving the requests one after the other in arrival order (admitted or
refused, each counter's figure after each request); a store that cannot be reached fails
every request of the batch closed; SQLite's reservation runs on the event loop only while
nobody else holds the write lock; a caller gone before its reservation returned has it
released; a settlement lost with its process (SIGKILL) leaves that request counted at its
worst case, never less and never twice. More gateway-level tests: tests/test_usage.py and
tests/test_usage_replicas.py.

PostgreSQL and Redis are real: skipped with the reason when absent, a failure under CI=true.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from conftest import Server
from polling import until
from upstreams import Upstream, assistant_config

from souverain.auth import Principal
from souverain.errors import BudgetUnavailable
from souverain.ledger import decode_entry
from souverain.usage.accounting import Accounting
from souverain.usage.budgets import (
    Admissions,
    Claim,
    Counters,
    CounterStoreDown,
    Exceeded,
    RedisCounters,
    StateCounters,
)
from souverain.usage.config import Budget, Price, UsageConfig
from souverain.usage.store import UsageDb

WINDOW = (1_800_000_000 // 60 * 60, 1_800_000_000 // 60 * 60 + 60)


def claims(money: int, tokens: int, money_limit: int, requests_limit: int, tokens_limit: int) -> list[Claim]:
    """A request's three claims: a tenant's money, requests and tokens in one window."""
    start, end = WINDOW
    return [
        Claim(
            "money:tenant:acme:day", "money", "the day's money budget of tenant acme", start, end, money_limit, money
        ),
        Claim("requests:tenant:acme", "requests", "requests per minute", start, end, requests_limit, 1),
        Claim("tokens:tenant:acme", "tokens", "tokens per minute", start, end, tokens_limit, tokens),
    ]


@pytest.fixture
def redis_url(redis_server: subprocess.Popen[bytes], tmp_path: Path) -> str:
    return f"unix://{tmp_path / 'redis.sock'}"


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def counters(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Counters]:
    made: Counters
    if request.param == "sqlite":
        made = StateCounters(lambda: UsageDb.sqlite(tmp_path))
    elif request.param == "postgres":
        dsn, schema = request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_schema")
        made = StateCounters(lambda: UsageDb.postgres(dsn, schema))
    else:
        made = RedisCounters(request.getfixturevalue("redis_url"))
    try:
        yield made
    finally:
        made.close()


def one_after_another(requests: list[list[Claim]]) -> list[list[int] | str]:
    """The reference: each request reserved alone, in order (all claims or none)."""
    used: dict[str, int] = {}
    out: list[list[int] | str] = []
    for request in requests:
        over = next((c for c in request if used.get(c.scope, 0) + c.amount > c.limit), None)
        if over is not None:
            out.append(over.kind)
            continue
        for c in request:
            used[c.scope] = used.get(c.scope, 0) + c.amount
        out.append([used[c.scope] for c in request])
    return out


async def burst(admissions: Admissions, requests: list[list[Claim]]) -> list[list[int] | str]:
    async def one(request: list[Claim]) -> list[int] | str:
        try:
            return await admissions.reserve(request)
        except Exceeded as exc:
            return exc.claim.kind

    return list(await asyncio.gather(*(one(r) for r in requests)))


def test_a_burst_that_fits_is_reserved_in_one_call_with_each_requests_figures(counters: Counters) -> None:
    rng = random.Random(7)
    requests = [claims(rng.randrange(1, 1000), rng.randrange(1, 300), 10**9, 10**6, 10**9) for _ in range(150)]
    admissions = Admissions(counters)
    try:
        outcome = asyncio.run(burst(admissions, requests))
        assert outcome == one_after_another(requests)
        assert admissions.calls == 1  # 150 requests, one round trip
        # and the next burst starts from there
        again = asyncio.run(burst(admissions, requests[:3]))
        assert again == one_after_another(requests + requests[:3])[-3:]
    finally:
        admissions.close()


def test_a_burst_against_small_limits_never_passes_them(counters: Counters) -> None:
    # A money budget that about a third of the burst fits in, and a requests limit that
    # bites too: the outcome is exactly the one-at-a-time reference (never over a limit).
    rng = random.Random(11)
    requests = [claims(rng.randrange(1, 400), rng.randrange(1, 50), 20_000, 90, 10**9) for _ in range(200)]
    admissions = Admissions(counters)
    try:
        outcome = asyncio.run(burst(admissions, requests))
    finally:
        admissions.close()
    expected = one_after_another(requests)
    assert outcome == expected
    admitted = [r for r, o in zip(requests, outcome, strict=True) if isinstance(o, list)]
    assert 0 < len(admitted) < len(requests) and {"money", "requests"} & set(o for o in outcome if isinstance(o, str))
    spent = sum(r[0].amount for r in admitted)
    assert spent <= 20_000 and len(admitted) <= 90
    # The store holds exactly what was admitted; a settlement moves it to the actual.
    check = Admissions(counters)
    try:
        [[money, count, _]] = asyncio.run(burst(check, [claims(0, 0, 10**9, 10**9, 10**9)]))
    finally:
        check.close()
    assert (money, count) == (spent, len(admitted) + 1)
    counters.settle([("money:tenant:acme:day", WINDOW[0], -5)] * 3 + [("money:tenant:acme:day", WINDOW[0], 2)])
    check = Admissions(counters)
    try:
        after = asyncio.run(burst(check, [claims(0, 0, 10**9, 10**9, 10**9)]))
    finally:
        check.close()
    assert after[0][0] == spent - 13  # type: ignore[index]


def test_names_with_any_character_are_counters_of_their_own(counters: Counters) -> None:
    # Tenant, key and cost-centre names come from the operator and the callers: quotes,
    # backslashes, braces and commas (array syntax on PostgreSQL), NULL, spaces, accents.
    names = ['a"b', "c\\d", "cd", "{e,f}", "e", "NULL", "é ü", " x ", "x'y", '\\"', '"']
    start, end = WINDOW
    request = [Claim(f"requests:key:{n}", "requests", "rpm", start, end, 10, 1) for n in names]
    admissions = Admissions(counters)
    try:
        assert asyncio.run(burst(admissions, [request])) == [[1] * len(names)]
        assert asyncio.run(burst(admissions, [request, request[:2]])) == [[2] * len(names), [3, 3]]
    finally:
        admissions.close()


@pytest.mark.parametrize("store", ["postgres", "redis"])
def test_an_unreachable_store_fails_every_request_of_the_batch_closed(store: str, tmp_path: Path) -> None:
    counters: Counters = (
        StateCounters(lambda: UsageDb.postgres("host=127.0.0.1 port=1 dbname=test user=postgres", "nowhere", 1))
        if store == "postgres"
        else RedisCounters(f"unix://{tmp_path / 'no-redis.sock'}")
    )
    admissions = Admissions(counters)

    async def go() -> list[BaseException | list[int]]:
        return await asyncio.gather(
            *(admissions.reserve(claims(10, 10, 10**9, 10**9, 10**9)) for _ in range(20)), return_exceptions=True
        )

    try:
        outcome = asyncio.run(go())
    finally:
        admissions.close()
        counters.close()
    assert len(outcome) == 20 and all(isinstance(o, CounterStoreDown) for o in outcome), outcome

    # Through the account stage: 503 budget_store_unavailable, never admitted.
    config = UsageConfig(
        prices=[Price(route="r", input_per_million=Decimal(1), output_per_million=Decimal(1))],
        budgets=[Budget(tenant="acme", money=Decimal(100))],
    )
    accounting = Accounting(config, lambda: UsageDb.sqlite(tmp_path), RedisCounters(f"unix://{tmp_path / 'x.sock'}"))
    principal = Principal("k1", "key", "acme", frozenset({"inference"}), None)
    try:
        with pytest.raises(BudgetUnavailable) as refused:
            asyncio.run(accounting.admit(principal, "", [("r", "m", "d")], 100, 10))
        assert refused.value.status == 503 and refused.value.code == "budget_store_unavailable"
    finally:
        accounting.stop()


def hold_sqlite_write_lock(directory: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(directory / "usage.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def read_counter(directory: Path, scope: str) -> int:
    db = sqlite3.connect(directory / "usage.db")
    try:
        row = db.execute("SELECT used FROM usage_counters WHERE scope = ? AND win = ?", (scope, WINDOW[0])).fetchone()
        return int(row[0]) if row else 0
    finally:
        db.close()


def test_sqlite_waits_for_another_writer_off_the_event_loop(tmp_path: Path) -> None:
    counters = StateCounters(lambda: UsageDb.sqlite(tmp_path))
    admissions = Admissions(counters)

    async def go() -> dict[str, Any]:
        first = await admissions.reserve(claims(5, 5, 10**9, 10**9, 10**9))  # opens the connections
        holder = hold_sqlite_write_lock(tmp_path)  # another process's writer, say
        waiting = asyncio.ensure_future(admissions.reserve(claims(7, 7, 10**9, 10**9, 10**9)))
        ticks = 0
        for _ in range(20):  # the loop goes on serving while the reservation waits
            await asyncio.sleep(0.01)
            ticks += 1
        done_while_locked = waiting.done()
        holder.execute("COMMIT")
        holder.close()
        return {"first": first, "second": await waiting, "ticks": ticks, "done_while_locked": done_while_locked}

    try:
        result = asyncio.run(go())
    finally:
        admissions.close()
        counters.close()
    assert result["ticks"] == 20 and not result["done_while_locked"]
    assert result["first"] == [5, 1, 5] and result["second"] == [12, 2, 12]


def test_a_reservation_whose_caller_left_is_released(tmp_path: Path) -> None:
    counters = StateCounters(lambda: UsageDb.sqlite(tmp_path))
    admissions = Admissions(counters)

    async def go() -> None:
        await admissions.reserve(claims(5, 5, 10**9, 10**9, 10**9))
        holder = hold_sqlite_write_lock(tmp_path)  # so that the next reservation is in flight
        leaving = asyncio.ensure_future(admissions.reserve(claims(100, 100, 10**9, 10**9, 10**9)))
        await asyncio.sleep(0.05)
        leaving.cancel()  # the client disconnected
        await asyncio.sleep(0)
        holder.execute("COMMIT")
        holder.close()
        # a later reservation (another counter) comes back after the abandoned one's
        start, end = WINDOW
        await admissions.reserve([Claim("requests:key:other", "requests", "rpm", start, end, 10, 1)])

    try:
        asyncio.run(go())
        # reserved on the store once the lock was free, then released: back to the first's
        until(lambda: read_counter(tmp_path, "money:tenant:acme:day") == 5, 30, "the reservation released")
        assert read_counter(tmp_path, "requests:tenant:acme") == 1
    finally:
        admissions.close()
        counters.close()


def test_a_settlement_lost_with_its_process_leaves_the_worst_case_never_less(tmp_path: Path) -> None:
    # Settling happens after the answer, on the usage writer's thread. A SIGKILL right
    # after the answers may take some settlements with it: each request is then counted
    # at its reservation (its worst case) instead of what it cost, until its window ends,
    # so the error is on the side of spending less; never below the cost, never twice.
    upstream = Upstream("upstream")  # answers 3 prompt and 2 completion tokens
    usage = """usage:
  prices:
    - {route: assistant, input_per_million: 10000, output_per_million: 100000}
  budgets:
    - {tenant: default, money: 1000, period: day, requests_per_minute: 100000}
"""
    server = Server(tmp_path, assistant_config(upstream, rest=usage))
    config_text = server.config_path.read_text() if server.config_path else ""
    body = {"model": "assistant", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 2}
    cost = 3 * 10_000 + 2 * 100_000  # micro-euros: 0.23 EUR
    worst = len(httpx.Request("POST", "/", json=body).content) * 10_000 + 2 * 100_000
    try:
        for _ in range(20):
            r = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=server.headers(), timeout=30)
            assert r.status_code == 200, r.text
        server.proc.kill()
        server.proc.wait()
        server._log_file.close()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()

    def counters() -> dict[str, int]:
        """Each kind's counters summed over their windows (a test may straddle a minute)."""
        db = sqlite3.connect(tmp_path / "state" / "usage.db")
        try:
            rows = db.execute("SELECT scope, used FROM usage_counters").fetchall()
        finally:
            db.close()
        sums: dict[str, int] = {}
        for scope, used in rows:
            sums[scope.split(":")[0]] = sums.get(scope.split(":")[0], 0) + int(used)
        return sums

    def spent() -> int:
        db = sqlite3.connect(tmp_path / "state" / "ledger.db")
        try:
            data = [bytes(d) for (d,) in db.execute("SELECT data FROM ledger_entries")]
        finally:
            db.close()
        entries = [msgspec.to_builtins(decode_entry(d)) for d in data]
        assert len(entries) == 20 and all(e["status"] == 200 for e in entries)
        return sum(int(Decimal(str(e["cost"])) * 1_000_000) for e in entries)

    assert spent() == 20 * cost
    after_kill = counters()
    unsettled, rest = divmod(after_kill["money"] - 20 * cost, worst - cost)
    assert rest == 0 and 0 <= unsettled <= 20, after_kill  # each settled, or at its worst case
    assert after_kill["requests"] == 20
    print(f"settlements lost with the process: {unsettled} of 20")
    again = Server(tmp_path, config_text)  # a restart settles nothing twice
    try:
        again.wait_ready()
        r = httpx.post(f"{again.url}/v1/chat/completions", json=body, headers=again.headers(server.key), timeout=30)
        assert r.status_code == 200
        until(lambda: counters()["money"] == after_kill["money"] + cost, 30, "the new request settled")
    finally:
        again.stop()
        upstream.stop()
