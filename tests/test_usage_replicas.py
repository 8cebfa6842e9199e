"""Budgets and limits across replicas, on real parts: three `souverain serve` processes on
one PostgreSQL schema in front of one upstream, concurrent clients.

- a tenant with a small money budget: the spend recorded never passes the budget by more
  than one request's worst case, and every ledger entry has exactly one usage row with its
  cost (nothing charged twice, nothing not at all); the counters settle to the spend;
- a requests-per-minute limit holds across the replicas within one window;
- the budget store gone mid-run (its table renamed): requests are refused with 503
  `budget_store_unavailable`, none is served unaccounted; back, they are served again;
- Redis as the budget store, stopped mid-run (a redis-server of the test's own): refused.

PostgreSQL is real: skipped with the reason when absent, a failure under CI=true.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx
import msgspec
from clients import Clients
from conftest import Server
from polling import until
from upstreams import Upstream, assistant_config, shared_state

from souverain.ledger import decode_entry

CHAT = {"model": "assistant", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 2}
# The upstream answers 3 prompt and 2 completion tokens: 3 × 0.01 + 2 × 0.1 = 0.23 €.
COST = Decimal("0.23")
PRICES = "    - {route: assistant, input_per_million: 10000, output_per_million: 100000}"


def replicas_config(tmp_path: Path, pg_dsn: str, pg_schema: str, upstream: Upstream, usage: str) -> str:
    return assistant_config(
        upstream, state=shared_state(tmp_path, pg_dsn, pg_schema), rest=f"usage:\n  prices:\n{PRICES}\n{usage}"
    )


def start(tmp_path: Path, config: str, n: int = 3) -> list[Server]:
    servers = []
    for i in range(n):
        folder = tmp_path / f"replica{i}"
        folder.mkdir()
        servers.append(Server(folder, config))
    return servers


def worst_case() -> Decimal:
    body = httpx.Request("POST", "/", json=CHAT).content
    return Decimal(len(body)) * Decimal("0.01") + 2 * Decimal("0.1")


def db_rows(pg_dsn: str, pg_schema: str, query: str, *args: object) -> list[tuple]:
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as db:
        db.execute(f'SET search_path TO "{pg_schema}"')
        cursor = db.execute(query, args)
        return cursor.fetchall() if cursor.description else []


def entries(pg_dsn: str, pg_schema: str) -> dict[int, dict]:
    return {
        idx: msgspec.to_builtins(decode_entry(bytes(data)))
        for idx, data in db_rows(pg_dsn, pg_schema, "SELECT idx, data FROM ledger_entries ORDER BY idx")
    }


def test_a_money_budget_holds_across_three_replicas(tmp_path: Path, pg_dsn: str, pg_schema: str) -> None:
    upstream = Upstream("upstream")
    budget = Decimal(5)
    config = replicas_config(
        tmp_path, pg_dsn, pg_schema, upstream, f"  budgets:\n    - {{tenant: acme, money: {budget}}}"
    )
    replicas: list[Server] = []
    try:
        replicas = start(tmp_path, config)
        token = replicas[0].cli("keys", "create", "--name", "acme", "--tenant", "acme").stdout.strip()
        clients = Clients(replicas, token, CHAT, threads=32 * len(replicas))  # 32 clients a replica
        # run until the budget is spent: a good run of refusals for lack of money
        until(lambda: clients.count(429, "insufficient_quota") >= 200, 180, "the budget spent")
        clients.finish()
        served = clients.count(200)
        assert served >= 1 and clients.count() == served + clients.count(429, "insufficient_quota"), Counter(
            (a.status, a.code) for a in clients.answers
        )
        # every recorded request gets its row (the writers flush within a fraction of a second)
        log = entries(pg_dsn, pg_schema)
        acme = {i: e for i, e in log.items() if e["tenant"] == "acme"}
        until(
            lambda: (
                db_rows(pg_dsn, pg_schema, "SELECT count(*) FROM usage_rows WHERE tenant = 'acme'")[0][0] == len(acme)
            ),
            30,
            "a usage row for every ledger entry",
        )
        rows = {
            idx: (status, Decimal(cost) / 1_000_000)
            for idx, status, cost in db_rows(
                pg_dsn, pg_schema, "SELECT idx, status, cost_micros FROM usage_rows WHERE tenant = 'acme'"
            )
        }
        # one row per entry, same status, same cost: nothing charged twice or not at all
        assert set(rows) == set(acme)
        for idx, entry in acme.items():
            assert rows[idx] == (entry["status"], Decimal(entry["cost"])), (idx, entry, rows[idx])
        answered = [a.index for a in clients.answers if a.status == 200]
        assert len(set(answered)) == len(answered) == served and all(rows[i] == (200, COST) for i in answered)
        spent = sum(cost for _, cost in rows.values())
        assert spent == served * COST  # by hand: 0.23 € each, refusals free
        assert spent <= budget + worst_case(), f"spent {spent} of {budget}"
        # the counter settled to what was spent: no reservation left behind
        until(
            lambda: (
                db_rows(pg_dsn, pg_schema, "SELECT sum(used) FROM usage_counters WHERE scope LIKE 'money:%%'")[0][0]
                == int(spent * 1_000_000)
            ),
            10,
            "reservations settled",
        )
        print(f"served {served}, refused {clients.count(429)}, spent {spent} of {budget} EUR")
    finally:
        for replica in replicas:
            replica.stop()
        upstream.stop()


def test_a_rate_limit_holds_across_replicas_in_one_window(tmp_path: Path, pg_dsn: str, pg_schema: str) -> None:
    upstream = Upstream("upstream")
    config = replicas_config(
        tmp_path, pg_dsn, pg_schema, upstream, "  budgets:\n    - {key: burst, requests_per_minute: 10}"
    )
    replicas: list[Server] = []
    try:
        replicas = start(tmp_path, config)
        token = replicas[0].cli("keys", "create", "--name", "burst").stdout.strip()
        for r in replicas:  # each replica knows the key (without spending the limit: a 404)
            until(
                lambda r=r: (
                    httpx.get(f"{r.url}/v1/models", headers={"Authorization": f"Bearer {token}"}).status_code == 200
                ),
                5,
                "key known",
            )
        if time.time() % 60 > 45:  # all in one minute window
            time.sleep(61 - time.time() % 60)
        window = int(time.time() // 60)
        clients = Clients(replicas, token, CHAT, threads=12, limit=60)
        until(lambda: clients.stop.is_set(), 60, "60 answers")
        clients.finish()
        assert int(time.time() // 60) == window, "the run crossed a minute boundary"
        assert clients.count(200) == 10, Counter((a.status, a.code) for a in clients.answers)
        assert clients.count(429, "rate_limit_exceeded") == clients.count() - 10
    finally:
        for replica in replicas:
            replica.stop()
        upstream.stop()


def test_the_budget_store_gone_refuses_and_serves_nothing_unaccounted(
    tmp_path: Path, pg_dsn: str, pg_schema: str
) -> None:
    upstream = Upstream("upstream")
    config = replicas_config(tmp_path, pg_dsn, pg_schema, upstream, "  budgets:\n    - {tenant: acme, money: 1000000}")
    replicas: list[Server] = []
    try:
        replicas = start(tmp_path, config)
        token = replicas[0].cli("keys", "create", "--name", "acme", "--tenant", "acme").stdout.strip()
        clients = Clients(replicas, token, CHAT, threads=6)
        until(lambda: clients.count(200) >= 30, 60, "load under way")
        db_rows(pg_dsn, pg_schema, "ALTER TABLE usage_counters RENAME TO usage_counters_gone")
        try:
            until(lambda: clients.count(503, "budget_store_unavailable") >= 30, 60, "refusals while the store is gone")
        finally:
            db_rows(pg_dsn, pg_schema, "ALTER TABLE usage_counters_gone RENAME TO usage_counters")
        served = clients.count(200)
        until(lambda: clients.count(200) >= served + 30, 60, "served again once the store is back")
        clients.finish()
        assert {(a.status, a.code) for a in clients.answers} == {(200, ""), (503, "budget_store_unavailable")}
        acme = {i: e for i, e in entries(pg_dsn, pg_schema).items() if e["tenant"] == "acme"}
        until(
            lambda: db_rows(pg_dsn, pg_schema, "SELECT count(*) FROM usage_rows")[0][0] == len(acme),
            30,
            "a row for every entry",
        )
        rows = dict(db_rows(pg_dsn, pg_schema, "SELECT idx, status FROM usage_rows"))
        answered = [a.index for a in clients.answers if a.status == 200]
        assert all(rows[i] == 200 for i in answered)  # every answer served is accounted
        refused = [a.index for a in clients.answers if a.status == 503]
        assert all(rows[i] == 503 and acme[i]["decision"] == "failed" and acme[i]["sent_class"] == "" for i in refused)
        # nothing was sent upstream for a refused request: the upstream saw only the served
        assert len(upstream.received) == len(answered)
    finally:
        for replica in replicas:
            replica.stop()
        upstream.stop()


def test_redis_as_the_budget_store_stopped_mid_run(tmp_path: Path, redis_server: subprocess.Popen[bytes]) -> None:
    sock = tmp_path / "redis.sock"
    upstream = Upstream("upstream")
    server = None
    try:
        config = assistant_config(
            upstream,
            rest=f"""usage:
  prices:
{PRICES}
  budgets:
    - {{tenant: default, money: 2, period: day}}
  budget_store: {{kind: redis, url: "unix://{sock}"}}""",
        )
        server = Server(tmp_path, config)
        answers = []
        for _ in range(20):
            answers.append(
                httpx.post(f"{server.url}/v1/chat/completions", json=CHAT, headers=server.headers(), timeout=30)
            )
            if answers[-1].status_code == 429:
                break
            time.sleep(0.3)  # let the settlement land (it is batched off the response's path)
        assert answers[0].status_code == 200 and answers[-1].status_code == 429
        assert answers[-1].json()["error"]["code"] == "insufficient_quota"
        redis_server.terminate()
        redis_server.wait(10)
        down = httpx.post(f"{server.url}/v1/chat/completions", json=CHAT, headers=server.headers(), timeout=30)
        assert down.status_code == 503 and down.json()["error"]["code"] == "budget_store_unavailable"
        assert down.headers["retry-after"] == "5"
    finally:
        if server is not None:
            server.stop()
        upstream.stop()
