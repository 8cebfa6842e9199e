"""The spine in process (fake engines, `httpx.ASGITransport`): what leaves the gateway is
exactly what was classified, wherever in the request the personal data sits."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from inprocess import InProcess, chat, run
from upstreams import PIPES

from souverain.engines.fake import FakeEngine, answer
from souverain.errors import Overloaded, UpstreamError
from souverain.outbound import Outbound, Rules, Sealed, seal
from souverain.privacy import default_scanner

EMAIL, IBAN = "marie.dubois@exemple.fr", "FR7630006000011234567890189"
IBAN_SPACED = "FR76 3000 6000 0112 3456 7890 189"


def engines(onprem: Any = None, cloud: Any = None) -> dict[str, FakeEngine]:
    return {"assistant-onprem": FakeEngine(onprem), "assistant-cloud": FakeEngine(cloud)}


def down(operation: str, payload: Any) -> Any:
    raise UpstreamError("cannot reach the upstream of route 'a-onprem': ConnectError")


def tool(parameters: dict[str, Any], description: str = "Look up an order") -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": "lookup", "description": description, "parameters": parameters}}]


def call_args(arguments: Any) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Look it up"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": arguments}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
    ]


# Personal data in every place the issue found it leaking, and a few more.
PLACEMENTS: dict[str, dict[str, Any]] = {
    "content": chat(f"Write to {EMAIL}"),
    "text part": chat([{"type": "text", "text": f"IBAN {IBAN}"}]),
    "text part starting with data:": chat([{"type": "text", "text": f"data: the customer's IBAN is {IBAN}"}]),
    "stop string": chat("Hello", stop=EMAIL),
    "stop list": chat("Hello", stop=["END", f"IBAN {IBAN}"]),
    "user": chat("Hello", user=EMAIL),
    "message name": {"model": "assistant", "messages": [{"role": "user", "name": "x", "content": f"mail {EMAIL}"}]},
    "schema description": chat(
        "Hello",
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "r",
                "schema": {"type": "object", "description": f"Reply to {EMAIL}", "properties": {}},
            },
        },
    ),
    "schema enum": chat(
        "Hello",
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "r", "schema": {"type": "string", "enum": [IBAN]}},
        },
    ),
    "schema property name": chat(
        "Hello",
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "r", "schema": {"type": "object", "properties": {EMAIL: {"type": "string"}}}},
        },
    ),
    "tool description": chat("Hello", tools=tool({"type": "object", "properties": {}}, f"Mail {EMAIL} first")),
    "tool parameter default": chat(
        "Hello", tools=tool({"type": "object", "properties": {"iban": {"type": "string", "default": IBAN}}})
    ),
    "tool-call argument value": {"model": "assistant", "messages": call_args(json.dumps({"iban": IBAN}))},
    "tool-call argument key": {"model": "assistant", "messages": call_args(json.dumps({EMAIL: "owner"}))},
    "tool-call arguments as object": {"model": "assistant", "messages": call_args({"contact": {"mail": EMAIL}})},
    "escaped in arguments": {
        "model": "assistant",
        "messages": call_args('{"iban": "FR76\\u00a03000\\u00a06000\\u00a00112\\u00a03456\\u00a07890\\u00a0189"}'),
    },
    "escaped in text": chat("mail: marie.dubois\\u0040exemple.fr"),
    "split across turns": {
        "model": "assistant",
        "messages": [
            {"role": "user", "content": "Our IBAN starts FR76 3000 6000"},
            {"role": "assistant", "content": "0112 3456 7890 189"},
            {"role": "user", "content": "Thanks"},
        ],
    },
    "split across parts": chat(
        [{"type": "text", "text": "Mail marie.dubois@"}, {"type": "text", "text": "exemple.fr please"}]
    ),
    "tool message": {
        "model": "assistant",
        "messages": [*call_args("{}")[:2], {"role": "tool", "tool_call_id": "c1", "content": f"owner {EMAIL}"}],
    },
}

UNSCANNABLE: dict[str, dict[str, Any]] = {
    "image data URL": chat(
        [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ]
    ),
    "image by URL": chat([{"type": "image_url", "image_url": {"url": "https://example.org/scan.png"}}]),
    "audio": chat([{"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}}]),
    "file": chat([{"type": "file", "file": {"file_data": "JVBERi0xLjQ=", "filename": "a.pdf"}}]),
    "data URL as text": chat("data:application/pdf;base64,JVBERi0xLjQKJcfsj6IKNSAwIG9iago="),
    "base64 text": chat(base64.b64encode(f"Customer {EMAIL}, IBAN {IBAN}, call back".encode() * 4).decode()),
}


@pytest.mark.parametrize("name", sorted(PLACEMENTS))
def test_personal_data_anywhere_never_reaches_the_excluded_route(tmp_path: Path, name: str) -> None:
    fakes = engines(onprem=down)

    async def test(client: httpx.AsyncClient, g: InProcess) -> httpx.Response:
        return await client.post("/v1/chat/completions", json=PLACEMENTS[name], headers=g.headers)

    r = run(tmp_path, fakes, test)
    assert r.status_code == 502, r.text  # the allowed route failed; never the other one
    assert r.headers["x-souverain-data-class"] == "personal"
    assert r.headers["x-souverain-route"] == "a-onprem"
    assert fakes["assistant-cloud"].sent == []
    assert len(fakes["assistant-onprem"].sent) == 1


@pytest.mark.parametrize("name", sorted(PLACEMENTS))
def test_personal_data_anywhere_goes_to_the_allowed_route(tmp_path: Path, name: str) -> None:
    fakes = engines()

    async def test(client: httpx.AsyncClient, g: InProcess) -> httpx.Response:
        return await client.post("/v1/chat/completions", json=PLACEMENTS[name], headers=g.headers)

    r = run(tmp_path, fakes, test)
    assert r.status_code == 200, r.text
    assert (r.headers["x-souverain-route"], r.headers["x-souverain-data-class"]) == ("a-onprem", "personal")


def test_public_data_may_use_the_cloud_route_when_onprem_fails(tmp_path: Path) -> None:
    """The control: without personal data the excluded-for-personal route is used, so the
    tests above would see a leak if there were one."""
    fakes = engines(onprem=down)

    async def test(client: httpx.AsyncClient, g: InProcess) -> httpx.Response:
        return await client.post("/v1/chat/completions", json=chat("What is the capital of France?"), headers=g.headers)

    r = run(tmp_path, fakes, test)
    assert r.status_code == 200 and r.headers["x-souverain-route"] == "c-azure-eu"
    assert len(fakes["assistant-cloud"].sent) == 1


@pytest.mark.parametrize("name", sorted(UNSCANNABLE))
def test_what_cannot_be_scanned_fails_closed(tmp_path: Path, name: str) -> None:
    fakes = engines(onprem=down)

    async def test(client: httpx.AsyncClient, g: InProcess) -> list[httpx.Response]:
        refused = await client.post("/v1/chat/completions", json=UNSCANNABLE[name], headers=g.headers)
        # The caller may vouch for it: a declared class replaces the unscannable rule.
        declared = await client.post(
            "/v1/chat/completions", json=UNSCANNABLE[name], headers={**g.headers, "x-souverain-data-class": "internal"}
        )
        return [refused, declared]

    refused, declared = run(tmp_path, fakes, test)
    assert refused.status_code == 502 and refused.headers["x-souverain-data-class"] == "personal"
    assert len(fakes["assistant-onprem"].sent) == 2
    assert declared.status_code == 200 and declared.headers["x-souverain-route"] == "c-azure-eu"
    assert len(fakes["assistant-cloud"].sent) == 1


def test_refusal_says_the_content_could_not_be_scanned(tmp_path: Path) -> None:
    config = TWO_ROUTES_CLOUD_ONLY

    async def test(client: httpx.AsyncClient, g: InProcess) -> httpx.Response:
        return await client.post("/v1/chat/completions", json=UNSCANNABLE["image by URL"], headers=g.headers)

    r = run(tmp_path, {"assistant-cloud": FakeEngine()}, test, config)
    assert r.status_code == 403
    body = r.json()["error"]
    assert body["code"] == "no_permitted_route"
    assert "cannot be scanned" in body["message"] and "unscannable_class" in body["message"]
    assert "messages[0].content[0]" in body["message"]
    assert (r.headers["x-souverain-route"], r.headers["x-souverain-decision"]) == ("none", "refused")


def test_unscannable_class_is_configurable(tmp_path: Path) -> None:
    config = TWO_ROUTES_CLOUD_ONLY.replace("routing:\n", "routing:\n  unscannable_class: internal\n")

    async def test(client: httpx.AsyncClient, g: InProcess) -> httpx.Response:
        return await client.post("/v1/chat/completions", json=UNSCANNABLE["image by URL"], headers=g.headers)

    r = run(tmp_path, {"assistant-cloud": FakeEngine()}, test, config)
    assert r.status_code == 200 and r.headers["x-souverain-data-class"] == "internal"


def test_ledger_records_the_class_and_digest_of_exactly_the_bytes_sent(tmp_path: Path) -> None:
    fakes = engines(onprem=down)

    async def test(client: httpx.AsyncClient, g: InProcess) -> tuple[list[dict[str, Any]], list[str]]:
        await client.post("/v1/chat/completions", json=chat("Bonjour"), headers=g.headers)  # public: to the cloud
        await client.post("/v1/chat/completions", json=chat(f"Mail {EMAIL}"), headers=g.headers)  # personal: fails
        await client.post("/v1/chat/completions", json=chat("Hi", model="nope"), headers=g.headers)  # 404: sent nowhere
        entries = await g.entries()
        tenant = entries[0]["tenant"]
        sent = fakes["assistant-onprem"].sent + fakes["assistant-cloud"].sent
        return entries, [await g.digest(tenant, body) for body in sent]

    entries, digests = run(tmp_path, fakes, test)
    public, personal, unknown = entries
    # The public request went first to onprem (failed), then to the cloud: the entry
    # holds the digest of what the cloud got, the route it went to, and the failure.
    assert (public["route"], public["sent_class"], public["status"]) == ("c-azure-eu", "public", 200)
    assert public["sent_hmac"] == digests[2]
    assert any("a-onprem" in reason for reason in public["reasons"])
    assert (personal["sent_class"], personal["status"], personal["decision"]) == ("personal", 502, "failed")
    assert personal["sent_hmac"] == digests[1]
    assert (unknown["status"], unknown["sent_class"], unknown["sent_hmac"]) == (404, "", "")


def test_every_authenticated_request_is_recorded_even_malformed(tmp_path: Path) -> None:
    bodies = [
        b'{"model": "assistant", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
        b"[" * 2000 + b"]" * 2000,
        b"not json",
        json.dumps(chat("Hi", model="a b" * 100)).encode(),
    ]

    async def test(client: httpx.AsyncClient, g: InProcess) -> tuple[list[httpx.Response], list[dict[str, Any]]]:
        out = [
            await client.post(
                "/v1/chat/completions", content=b, headers={**g.headers, "content-type": "application/json"}
            )
            for b in bodies
        ]
        return out, await g.entries()

    responses, entries = run(tmp_path, engines(), test)
    assert [r.status_code for r in responses] == [400, 400, 400, 404]
    assert all(r.json()["error"]["message"] for r in responses)
    assert [e["status"] for e in entries] == [400, 400, 400, 404]
    assert entries[3]["model"] == "invalid-name"


def test_a_bug_in_an_engine_is_a_recorded_500_in_the_dialect(tmp_path: Path) -> None:
    def broken(operation: str, payload: Any) -> Any:
        raise RuntimeError("a bug")

    async def test(client: httpx.AsyncClient, g: InProcess) -> tuple[httpx.Response, list[dict[str, Any]]]:
        r = await client.post("/v1/chat/completions", json=chat("Hi"), headers=g.headers)
        return r, await g.entries()

    r, entries = run(tmp_path, engines(onprem=broken), test)
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    assert "a bug" not in r.text
    assert entries[-1]["status"] == 500 and r.headers["x-souverain-ledger-index"] == "0"


def test_embeddings_move_on_when_an_engine_is_busy(tmp_path: Path) -> None:
    def busy(operation: str, payload: Any) -> Any:
        raise Overloaded("model 'assistant-onprem' is busy")

    fakes = engines(onprem=busy)

    async def test(client: httpx.AsyncClient, g: InProcess) -> httpx.Response:
        return await client.post(
            "/v1/embeddings", json={"model": "assistant", "input": ["a public sentence"]}, headers=g.headers
        )

    r = run(tmp_path, fakes, test)
    assert r.status_code == 200 and r.headers["x-souverain-route"] == "c-azure-eu"
    assert len(r.json()["data"]) == 1


def test_personal_embeddings_never_reach_the_excluded_route(tmp_path: Path) -> None:
    fakes = engines(onprem=down)

    async def test(client: httpx.AsyncClient, g: InProcess) -> httpx.Response:
        return await client.post(
            "/v1/embeddings", json={"model": "assistant", "input": ["ok", f"mail {EMAIL}"]}, headers=g.headers
        )

    r = run(tmp_path, fakes, test)
    assert r.status_code == 502 and fakes["assistant-cloud"].sent == []
    assert r.headers["x-souverain-data-class"] == "personal"


def test_stream_carries_decision_headers_and_restores_placeholders(tmp_path: Path) -> None:
    def echo(operation: str, payload: Any) -> Any:
        return answer("Noted: " + payload["messages"][-1]["content"])

    config = TWO_ROUTES_CLOUD_ONLY.replace("routing:\n", "routing:\n" + PSEUDONYMISE)

    async def test(client: httpx.AsyncClient, g: InProcess) -> httpx.Response:
        return await client.post("/v1/chat/completions", json=chat(f"Mail {EMAIL}", stream=True), headers=g.headers)

    fake = FakeEngine(echo)
    r = run(tmp_path, {"assistant-cloud": fake}, test, config)
    assert r.status_code == 200 and r.headers["x-souverain-decision"] == "pseudonymised"
    text = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content", "")
        for line in r.text.splitlines()
        if line.startswith("data: {") and '"choices":[{' in line
    )
    assert text == f"Noted: Mail {EMAIL}"
    assert EMAIL.encode() not in fake.sent[0] and b"[EMAIL_1]" in fake.sent[0]


def test_seal_is_the_only_way_to_a_sealed_payload() -> None:
    with pytest.raises(TypeError):
        Sealed(object(), "chat", b"{}", "r", None)  # type: ignore[arg-type]
    sealed = seal(
        Outbound("chat", {"messages": [{"content": "hi"}]}),
        route="r",
        scanner=default_scanner(),
        rules=Rules(),
        unmet=lambda cls: [],
    )
    assert sealed.body == b'{"messages":[{"content":"hi"}]}'
    with pytest.raises(TypeError):
        sealed.body_for("stream")


PSEUDONYMISE = """  policy:
    classes:
      personal: {min_level: sovereign, no_non_eu_access: true, residency: [processing, storage], pseudonymise_to: internal}
"""
TWO_ROUTES_CLOUD_ONLY = f"""
routing:
  pipes: {PIPES}
  health_interval_s: 0
models:
  - name: assistant-cloud
    serves: assistant
    engine: openai_http
    base_url: http://127.0.0.1:9/v1
    route: c-azure-eu
"""
