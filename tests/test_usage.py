"""Accounting, `souverain usage` and budgets on one gateway (SQLite state), against a
real upstream server: costs against figures computed by hand, refusals in OpenAI's
shapes with their reset, the FOCUS export, and rows that survive a SIGKILL (rebuilt from
the ledger). Replicas on PostgreSQL: tests/test_usage_replicas.py."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from conftest import Server
from polling import until
from upstreams import Upstream, assistant_config

from souverain.ledger import decode_entry
from souverain.usage.config import Price, UsageConfig
from souverain.usage.focus import COLUMNS
from souverain.usage.prices import Catalogue, Tokens

CHAT = {"model": "assistant", "messages": [{"role": "user", "content": "Say hello"}]}


def config(upstream: Upstream, usage: str) -> str:
    return assistant_config(upstream, rest=f"usage:\n{usage}")


# -- prices, by hand ------------------------------------------------------------------
def test_costs_match_hand_computed_figures() -> None:
    catalogue = Catalogue(
        UsageConfig(
            currency="EUR",
            prices=[
                # The seed guide's Mistral Medium 3.5 API prices.
                Price(route="mistral-api", input_per_million=Decimal("1.50"), output_per_million=Decimal("7.50")),
                Price(
                    route="mistral-api",
                    model="cheap",
                    input_per_million=Decimal("0.10"),
                    output_per_million=Decimal("0.30"),
                    cached_input_per_million=Decimal("0.01"),
                ),
                Price(route="onprem", per_hour=Decimal("12"), concurrency=8),
            ],
        )
    )
    # 1,000 in and 500 out: 1000 × 1.50 / 1e6 + 500 × 7.50 / 1e6 = 0.0015 + 0.00375
    assert catalogue.cost("mistral-api", "medium", "", Tokens(1000, 500), 2.0) == Decimal("0.005250")
    # the model's own price wins; 400 of 1,000 prompt tokens cached:
    # 600 × 0.10 / 1e6 + 400 × 0.01 / 1e6 + 200 × 0.30 / 1e6 = 0.00006 + 0.000004 + 0.00006
    assert catalogue.cost("mistral-api", "cheap", "", Tokens(1000, 200, cached=400), 1.0) == Decimal("0.000124")
    # self-hosted, by the deployment's name: 12 €/h × 3 s / 3600 s / 8 slots = 0.00125
    assert catalogue.cost("undeclared", "x", "onprem", Tokens(50, 50), 3.0) == Decimal("0.001250")
    # no price: free
    assert catalogue.cost("other", "x", "", Tokens(10**6, 10**6), 1.0) == Decimal(0)
    # the worst case: every input token, the whole cap, rounded up
    assert catalogue.worst_case("mistral-api", "medium", "", 1, 1, 0) == Decimal("0.000009")
    assert catalogue.worst_case("mistral-api", "medium", "", 2000, 1000, 0) == Decimal("0.010500")


def test_tokens_read_the_routes_own_details() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 40,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 30},
    }
    assert Tokens.of(usage) == Tokens(100, 40, 30, 64)
    assert Tokens.of({"prompt_tokens": True, "completion_tokens": -3}) == Tokens()


# -- one gateway ------------------------------------------------------------------------
PRICED = """
  currency: EUR
  prices:
    - {route: assistant, input_per_million: 1.5, output_per_million: 7.5}
  cost_centres: {tenants: {default: cc-it}}
"""


def post(server: Server, token: str, body: dict | None = None, headers: dict | None = None) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/chat/completions",
        json=body or CHAT,
        headers={"Authorization": f"Bearer {token}", **(headers or {})},
        timeout=30,
    )


def usage_json(server: Server, *args: str) -> dict:
    done = server.cli("usage", "--config", str(server.config_path), "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def ledger_entries(state: Path) -> list[tuple[int, dict]]:
    db = sqlite3.connect(state / "ledger.db")
    try:
        rows = db.execute("SELECT idx, data FROM ledger_entries ORDER BY idx").fetchall()
    finally:
        db.close()
    import msgspec

    return [(idx, msgspec.to_builtins(decode_entry(bytes(data)))) for idx, data in rows]


def test_each_request_is_priced_into_the_ledger_and_the_usage_rows(tmp_path: Path) -> None:
    upstream = Upstream("upstream")  # answers 3 prompt and 2 completion tokens
    server = Server(tmp_path, config(upstream, PRICED))
    try:
        for _ in range(4):
            assert post(server, server.key).status_code == 200
        refused = post(server, server.key, {**CHAT, "model": "nope"})
        assert refused.status_code == 404
        # one request: 3 × 1.5 / 1e6 + 2 × 7.5 / 1e6 = 0.0000195 → 0.000020 (half up)
        until(lambda: usage_json(server)["rows"] and usage_json(server)["rows"][0]["requests"] == 5, 30, "rows")
        rows = usage_json(server, "--by", "tenant,cost_centre,model,route,data_class,day")["rows"]
        assert len(rows) == 2, rows  # the 404 names no route
        ok = next(r for r in rows if r["route"] == "undeclared")
        assert ok["requests"] == 4 and ok["input_tokens"] == 12 and ok["output_tokens"] == 8
        assert ok["cost"] == "0.000080" and ok["currency"] == "EUR" and ok["cost_centre"] == "cc-it"
        assert ok["data_class"] == "public" and ok["day"] == time.strftime("%Y-%m-%d", time.gmtime())
        bad = next(r for r in rows if r["route"] != "undeclared")
        assert bad["refused"] == 1 and bad["cost"] == "0.000000" and bad["cost_centre"] == "cc-it"
        entries = ledger_entries(server.state)
        assert [e["cost"] for _, e in entries if e["status"] == 200] == ["0.000020"] * 4
        assert all(e["currency"] == "EUR" for _, e in entries)
        # the admin API says the same; an inference key may not read it
        api = httpx.get(f"{server.url}/admin/usage?by=route", headers=server.headers()).json()
        assert {r["route"]: r["cost"] for r in api["rows"]}["undeclared"] == "0.000080"
        user = server.cli("keys", "create", "--name", "user").stdout.strip()
        assert httpx.get(f"{server.url}/admin/usage", headers=server.headers(user)).status_code == 403
        assert httpx.get(f"{server.url}/admin/usage?by=colour", headers=server.headers()).status_code == 400
        # FOCUS 1.2
        done = server.cli("usage", "--config", str(server.config_path), "--format", "csv")
        table = list(csv.DictReader(io.StringIO(done.stdout)))
        assert tuple(table[0]) == COLUMNS
        line = next(r for r in table if r["ResourceId"] == "undeclared")
        assert line["BilledCost"] == line["EffectiveCost"] == "0.000080" and line["BillingCurrency"] == "EUR"
        assert line["ConsumedQuantity"] == "20" and line["ConsumedUnit"] == "Tokens"
        assert line["ChargePeriodStart"].endswith("T00:00:00Z") and line["ChargeCategory"] == "Usage"
        assert json.loads(line["Tags"])["cost_centre"] == "cc-it" and line["SubAccountId"] == "default"
    finally:
        server.stop()
        upstream.stop()


def test_budgets_refuse_with_the_budget_named_and_its_reset(tmp_path: Path) -> None:
    upstream = Upstream("upstream")
    # Prices that make the upstream's 3 + 2 tokens dear: 3 × 0.01 + 2 × 0.1 = 0.23 € a
    # request. Its worst case with max_tokens 2: the body's bytes as input tokens (an
    # upper bound) × 0.01 + 2 × 0.1. A day's budget of 2 €.
    usage = """
  prices:
    - {route: assistant, input_per_million: 10000, output_per_million: 100000}
  budgets:
    - {tenant: default, money: 2, period: day}
    - {key: limited, requests_per_minute: 2}
"""
    server = Server(tmp_path, config(upstream, usage))
    try:
        body = {**CHAT, "max_tokens": 2}
        worst = Decimal(len(httpx.Request("POST", "/", json=body).content)) * Decimal("0.01") + Decimal("0.2")
        spent, admitted = Decimal(0), 0
        while spent + worst <= 2:  # what the budget must admit, computed by hand
            spent, admitted = spent + Decimal("0.23"), admitted + 1
        answers = []
        for n in range(admitted + 1):
            answers.append(post(server, server.key, body))
            # wait for the settlement (it comes with the row) before the next request
            until(lambda n=n: usage_json(server)["rows"][0]["requests"] == n + 1, 30, "row and settlement")
        assert [a.status_code for a in answers] == [200] * admitted + [429], [a.text for a in answers]
        refusal = answers[-1]
        error = refusal.json()["error"]
        assert error["code"] == "insufficient_quota" and error["type"] == "insufficient_quota"
        assert "day's money budget of tenant default (2 EUR)" in error["message"], error
        assert 0 < int(refusal.headers["retry-after"]) <= 86400
        assert refusal.headers["x-souverain-decision"] == "refused"
        assert "x-souverain-ledger-index" in refusal.headers  # recorded like any refusal
        total = Decimal(usage_json(server)["rows"][0]["cost"])
        assert total == spent == admitted * Decimal("0.23") and total <= 2
        # a too-large request by itself
        big = post(server, server.key, {**CHAT, "max_tokens": 100})
        assert big.status_code == 429 and "by itself" in big.json()["error"]["message"]

        # requests per minute of one key, in OpenAI's rate-limit shape (wait for a fresh
        # minute when this one is nearly over, so that both requests fall in one window)
        limited = server.cli("keys", "create", "--name", "limited", "--tenant", "other").stdout.strip()
        if time.time() % 60 > 50:
            time.sleep(61 - time.time() % 60)
        answers = [post(server, limited) for _ in range(3)]
        assert [a.status_code for a in answers[:2]] == [200, 200]
        # answers carry the limit too, as OpenAI's do
        assert [a.headers["x-ratelimit-remaining-requests"] for a in answers[:2]] == ["1", "0"]
        assert answers[0].headers["x-ratelimit-limit-requests"] == "2"
        third = answers[2]
        assert third.status_code == 429
        assert third.json()["error"]["code"] == "rate_limit_exceeded" and third.json()["error"]["type"] == "requests"
        assert third.headers["x-ratelimit-limit-requests"] == "2"
        assert third.headers["x-ratelimit-remaining-requests"] == "0"
        assert third.headers["x-ratelimit-reset-requests"].endswith("s")
        assert 1 <= int(third.headers["retry-after"]) <= 60
        # Mistral's clients get Mistral's error shape (docs/dialects.md), same headers
        mistral = post(server, limited, headers={"x-souverain-dialect": "mistral"})
        assert mistral.status_code == 429 and mistral.headers["x-ratelimit-limit-requests"] == "2"
        assert mistral.json()["object"] == "error" and mistral.json()["code"] == "rate_limit_exceeded"
    finally:
        server.stop()
        upstream.stop()


def test_rows_survive_a_sigkill_from_the_ledger(tmp_path: Path) -> None:
    upstream = Upstream("upstream")
    server = Server(tmp_path, config(upstream, PRICED))
    config_text = server.config_path.read_text()
    try:
        for _ in range(30):
            assert post(server, server.key).status_code == 200
        server.proc.kill()  # rows still in the writer's queue go with the process
        server.proc.wait()
        server._log_file.close()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    entries = ledger_entries(server.state)
    assert len(entries) == 30
    db = sqlite3.connect(server.state / "usage.db")
    (before,) = db.execute("SELECT count(*) FROM usage_rows").fetchone()
    db.close()
    print(f"rows written before the kill: {before} of 30")
    # Entries older than the grace period are filled from the ledger at the next start.
    time.sleep(10.5)
    again = Server(tmp_path, config_text)
    try:
        until(lambda: usage_json(again)["rows"] and usage_json(again)["rows"][0]["requests"] == 30, 60, "filled")
        row = usage_json(again)["rows"][0]
        assert row["cost"] == "0.000600" and row["input_tokens"] == 90  # 30 × 0.000020; 30 × 3
        db = sqlite3.connect(again.state / "usage.db")
        indexes = sorted(i for (i,) in db.execute("SELECT idx FROM usage_rows"))
        db.close()
        assert indexes == [i for i, _ in entries]  # each entry once: none lost, none twice
    finally:
        again.stop()
        upstream.stop()


def test_a_redis_budget_store_obeys_the_air_gap() -> None:
    from souverain.config import parse_config
    from souverain.errors import ConfigError

    local = "usage:\n  budget_store: {kind: redis, url: 'redis://127.0.0.1:6379/2'}\n"
    assert parse_config(local, "t.yaml", {}).usage.budget_store.url.startswith("redis://127.0.0.1")
    assert parse_config(local.replace("redis://127.0.0.1:6379/2", "unix:///run/redis.sock"), "t.yaml", {})
    with pytest.raises(ConfigError, match=r"t.yaml:2: usage.budget_store.url: air gap is on and 'redis.example.com'"):
        parse_config(local.replace("127.0.0.1:6379", "redis.example.com:6379"), "t.yaml", {})
