"""Sovereign routing through a real gateway: two upstreams serve one model, one allowed
for personal data (on-premises) and one not (a US hyperscaler's EU region). The allowed
one is stopped, slowed and restarted under a mixed load; the other must never receive a
request that carried personal data."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time

import httpx
import openai
import pytest
from conftest import Server, http
from upstreams import PIPES, one_route

from souverain.privacy import default_scanner

EMAIL, IBAN, PHONE = "marie.dubois@exemple.fr", "FR7630006000011234567890189", "+33 6 12 34 56 78"


def ask(content: str, **extra) -> dict:
    return {"model": "assistant", "messages": [{"role": "user", "content": content}], **extra}


def test_sdk_sees_the_decision_in_headers(routed: Server, upstreams) -> None:
    onprem, cloud = upstreams
    client = openai.OpenAI(base_url=f"{routed.url}/v1", api_key=routed.key, max_retries=0)
    assert [m.id for m in client.models.list()] == ["assistant"]
    raw = client.chat.completions.with_raw_response.create(**ask("What is the capital of France?"))
    assert raw.headers["x-souverain-route"] == "a-onprem"
    assert raw.headers["x-souverain-data-class"] == "public"
    assert raw.headers["x-souverain-decision"] == "allowed"
    assert raw.parse().choices[0].message.content == "onprem says ok"
    personal = client.chat.completions.with_raw_response.create(**ask(f"Write to {EMAIL} about IBAN {IBAN}"))
    assert personal.headers["x-souverain-data-class"] == "personal"
    assert personal.headers["x-souverain-route"] == "a-onprem"
    declared = client.chat.completions.with_raw_response.create(
        **ask("Quarterly numbers"), extra_headers={"x-souverain-data-class": "confidential"}
    )
    assert declared.headers["x-souverain-data-class"] == "confidential"


def test_allowed_route_down_refuses_personal_and_lets_public_fall_back(routed: Server, upstreams) -> None:
    onprem, cloud = upstreams
    client = openai.OpenAI(base_url=f"{routed.url}/v1", api_key=routed.key, max_retries=0)
    onprem.stop()
    try:
        before = len(cloud.received)
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(**ask(f"Call me on {PHONE}, my email is {EMAIL}"))
        assert err.value.status_code in (502, 503)
        # The failure explains itself: the class, that it failed, on which route, and its entry.
        failed = err.value.response.headers
        assert failed["x-souverain-data-class"] == "personal"
        assert failed["x-souverain-decision"] in ("failed", "refused")
        assert failed["x-souverain-route"] in ("a-onprem", "none")
        assert int(failed["x-souverain-ledger-index"]) >= 0
        # Public data may use the cloud route.
        raw = client.chat.completions.with_raw_response.create(**ask("Hello there"))
        assert raw.headers["x-souverain-route"] == "c-azure-eu"
        # Once the breaker is open, personal data is refused before anything is sent.
        for _ in range(3):
            try:
                client.chat.completions.create(**ask(f"Customer IBAN {IBAN}"))
            except openai.APIStatusError as exc:
                last = exc
        assert last.status_code == 503
        assert last.body["code"] == "no_route_available" and "personal" in last.body["message"]
        assert last.response.headers["retry-after"]
        assert last.response.headers["x-souverain-route"] == "none"  # sent nowhere
        assert last.response.headers["x-souverain-data-class"] == "personal"
        assert last.response.headers["x-souverain-decision"] == "failed"
        for body in cloud.received[before:]:
            assert EMAIL.encode() not in body and IBAN.encode() not in body
    finally:
        onprem.start()
    deadline = time.monotonic() + 10
    while True:
        r = http.post(f"{routed.url}/v1/chat/completions", json=ask(f"IBAN {IBAN}"), headers=routed.headers())
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 200 and r.headers["x-souverain-route"] == "a-onprem"


def test_refusal_when_policy_excludes_every_route(start_server, upstreams) -> None:
    onprem, cloud = upstreams
    server = start_server(one_route("only-cloud", f"http://127.0.0.1:{cloud.port}/v1", "c-azure-eu"))
    response = http.post(
        f"{server.url}/v1/chat/completions",
        json={**ask(f"mail {EMAIL}"), "model": "only-cloud"},
        headers=server.headers(),
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "no_permitted_route" and "c-azure-eu" in error["message"]
    assert "non-EU law" in error["message"]


def personal_request(i: int, stream: bool) -> dict:
    """Personal data in the places the issue names: text, tool-call arguments, JSON
    strings, and spread over several messages."""
    kind = i % 4
    if kind == 0:
        messages = [{"role": "user", "content": f"Please email {EMAIL} today"}]
    elif kind == 1:
        messages = [
            {"role": "user", "content": "Pay the invoice"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "pay", "arguments": json.dumps({"iban": IBAN, "amount": 12})},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "done"},
        ]
    elif kind == 2:
        messages = [{"role": "user", "content": json.dumps({"customer": {"contact": {"phone": PHONE}}})}]
    else:
        messages = [
            {"role": "system", "content": "You help clerks."},
            {"role": "user", "content": "The customer is reachable at"},
            {"role": "user", "content": f"{EMAIL} and pays from {IBAN}"},
        ]
    return {"model": "assistant", "messages": messages, "stream": stream}


def test_fault_injection_no_personal_data_reaches_the_excluded_route(routed: Server, upstreams) -> None:
    onprem, cloud = upstreams
    cloud_before = len(cloud.received)
    statuses: dict[int, int] = {}
    rng = random.Random(7)

    async def load() -> None:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(timeout=60, limits=limits, headers=routed.headers()) as client:
            sem = asyncio.Semaphore(16)

            async def one(i: int) -> None:
                personal = rng.random() < 0.5
                body = (
                    personal_request(i, i % 3 == 0)
                    if personal
                    else ask(f"Tell me a fact number {i}", stream=i % 3 == 0)
                )
                async with sem:
                    r = await client.post(f"{routed.url}/v1/chat/completions", json=body)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

            await asyncio.gather(*(one(i) for i in range(2000)))

    def chaos() -> None:
        # While the load runs: stop the allowed upstream, restart it, slow it, heal it.
        for _ in range(3):
            time.sleep(1.0)
            onprem.stop()
            time.sleep(1.0)
            onprem.start()
            time.sleep(0.5)
            onprem.delay = 1.0  # past the gateway's 0.5 s read timeout
            time.sleep(1.0)
            onprem.delay = 0.0

    chaos_thread = threading.Thread(target=chaos)
    chaos_thread.start()
    asyncio.run(load())
    chaos_thread.join()
    assert sum(statuses.values()) == 2000
    assert statuses.get(200, 0) > 0
    assert set(statuses) <= {200, 502, 503, 504}, statuses
    assert statuses.get(503, 0) > 0, f"the chaos never left personal data without a route: {statuses}"
    leaked = cloud.received[cloud_before:]
    assert leaked, "public requests should have used the cloud route while on-prem was down"
    scanner = default_scanner()
    for raw in leaked:
        assert EMAIL.encode() not in raw and IBAN.encode() not in raw and b"6 12 34 56 78" not in raw
        assert scanner.scan_request(json.loads(raw)) == []


def test_pseudonymise_then_forward_and_restore(start_server, upstreams) -> None:
    onprem, cloud = upstreams
    pseudonymise = "  policy:\n    classes:\n      personal: {min_level: sovereign, no_non_eu_access: true, pseudonymise_to: internal}\n"
    server = start_server(one_route("helper", f"http://127.0.0.1:{cloud.port}/v1", "c-azure-eu", routing=pseudonymise))
    cloud.echo = True
    try:
        before = len(cloud.received)
        prompt = f"Remind {EMAIL} that IBAN {IBAN} is due"
        whole = http.post(
            f"{server.url}/v1/chat/completions", json={**ask(prompt), "model": "helper"}, headers=server.headers()
        )
        assert whole.status_code == 200, whole.text
        assert whole.headers["x-souverain-decision"] == "pseudonymised"
        assert whole.headers["x-souverain-data-class"] == "personal"
        assert whole.json()["choices"][0]["message"]["content"] == f"Noted: {prompt}"
        streamed = http.post(
            f"{server.url}/v1/chat/completions",
            json={**ask(prompt), "model": "helper", "stream": True},
            headers=server.headers(),
        )
        text = "".join(
            (json.loads(line[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
            for line in streamed.text.splitlines()
            if line.startswith("data: {")
        )
        assert text == f"Noted: {prompt}"
        sent = cloud.received[before:]
        assert len(sent) == 2
        for raw in sent:
            assert EMAIL.encode() not in raw and IBAN.encode() not in raw
            assert b"[EMAIL_1]" in raw and b"[IBAN_1]" in raw
    finally:
        cloud.echo = False


def test_active_health_checks_steer_before_any_request_fails(start_server, upstreams) -> None:
    onprem, cloud = upstreams
    server = start_server(f"""
routing:
  pipes: {PIPES}
  health_interval_s: 0.2
  retries: 0
  circuit: {{failures: 1, cooldown_s: 60}}
models:
  - {{name: a, serves: assistant, engine: openai_http, base_url: "http://127.0.0.1:{onprem.port}/v1", route: a-onprem}}
  - {{name: b, serves: assistant, engine: openai_http, base_url: "http://127.0.0.1:{cloud.port}/v1", route: c-azure-eu, priority: 1}}
""")
    onprem.stop()
    try:
        time.sleep(1.0)  # a few probes fail: the breaker opens with no request sent
        r = http.post(f"{server.url}/v1/chat/completions", json=ask("hello"), headers=server.headers())
        assert r.status_code == 200 and r.headers["x-souverain-route"] == "c-azure-eu"
    finally:
        onprem.start()
    deadline = time.monotonic() + 10  # a passing probe closes it again, long before the 60 s cooldown
    while True:
        r = http.post(f"{server.url}/v1/chat/completions", json=ask("hello"), headers=server.headers())
        if r.headers.get("x-souverain-route") == "a-onprem" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.headers["x-souverain-route"] == "a-onprem"


def test_a_repeated_class_header_can_only_raise_the_class(routed: Server) -> None:
    """A proxy appends a minimum class; the client's own, lower header must not win,
    whichever comes first, repeated or folded with a comma, or given in the body."""
    url, key = f"{routed.url}/v1/chat/completions", routed.key
    body = json.dumps(ask("Quarterly numbers")).encode()
    cases = [
        [("x-souverain-data-class", "public"), ("x-souverain-data-class", "confidential")],
        [("x-souverain-data-class", "confidential"), ("x-souverain-data-class", "public")],
        [("x-souverain-data-class", "public, confidential")],
    ]
    for extra in cases:
        headers = [("authorization", f"Bearer {key}"), ("content-type", "application/json"), *extra]
        response = httpx.post(url, content=body, headers=headers, timeout=60)
        assert response.status_code == 200, response.text
        assert response.headers["x-souverain-data-class"] == "confidential", extra
    in_body = httpx.post(
        url,
        json=ask("Quarterly numbers", data_class="confidential"),
        headers={"authorization": f"Bearer {key}", "x-souverain-data-class": "public"},
        timeout=60,
    )
    assert in_body.headers["x-souverain-data-class"] == "confidential"
    bad = httpx.post(
        url,
        content=body,
        timeout=60,
        headers=[
            ("authorization", f"Bearer {key}"),
            ("x-souverain-data-class", "public"),
            ("x-souverain-data-class", "secret"),
        ],
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "x-souverain-data-class"


def test_an_error_before_classification_claims_no_class(routed: Server) -> None:
    response = http.post(f"{routed.url}/v1/chat/completions", json=ask("hi", temperature=7), headers=routed.headers())
    assert response.status_code == 400
    assert response.headers["x-souverain-decision"] == "refused"
    assert response.headers["x-souverain-route"] == "none"
    assert "x-souverain-data-class" not in response.headers
    assert int(response.headers["x-souverain-ledger-index"]) >= 0
