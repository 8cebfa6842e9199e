"""The `openai_http` engine: a gateway in front of another OpenAI-compatible server.

The upstream is a second real gateway serving the embedded model, so streaming, JSON
schemas and embeddings go through two hops of real code. Failures are injected with a
small fault server (fine for fault injection: it plays a broken upstream).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import openai
import pytest

from conftest import MODEL, Server, http
from upstreams import FaultServer
from souverain.chat import ChatRequest, decode
from souverain.config import OpenAIHTTPModel
from souverain.engines.openai_http import OpenAIHTTPEngine


@pytest.fixture(scope="module")
def front(gateway: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = f"""
models:
  - name: relayed
    engine: openai_http
    base_url: {gateway.url}/v1
    upstream_model: {MODEL}
    api_key: ${{UPSTREAM_KEY}}
    embeddings: true
"""
    server = Server(tmp_path_factory.mktemp("front"), config, env={"UPSTREAM_KEY": gateway.key})
    server.wait_ready()
    yield server
    server.stop()


def test_chat_through_upstream(front: Server) -> None:
    client = openai.OpenAI(base_url=f"{front.url}/v1", api_key=front.key, max_retries=0)
    out = client.chat.completions.create(
        model="relayed", messages=[{"role": "user", "content": "Say hi"}], max_tokens=8, temperature=0, seed=1
    )
    assert out.model == "relayed"
    assert out.choices[0].message.content
    assert out.usage.completion_tokens > 0
    raw = http.post(
        f"{front.url}/v1/chat/completions",
        json={"model": "relayed", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 2},
        headers=front.headers(),
    )
    assert raw.headers["x-souverain-engine"] == "openai_http"
    assert raw.headers["x-souverain-model"] == "relayed"


def test_stream_through_upstream_matches_direct(front: Server, gateway: Server) -> None:
    messages = [{"role": "user", "content": "Tell me about Lyon."}]
    relayed = openai.OpenAI(base_url=f"{front.url}/v1", api_key=front.key, max_retries=0)
    chunks = list(
        relayed.chat.completions.create(
            model="relayed", messages=messages, max_tokens=16, temperature=0, seed=5, stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    direct = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0)
    expected = direct.chat.completions.create(model=MODEL, messages=messages, max_tokens=16, temperature=0, seed=5)
    assert text == expected.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == expected.usage.completion_tokens
    assert all(c.model == "relayed" for c in chunks)


def test_json_schema_and_embeddings_through_upstream(front: Server) -> None:
    client = openai.OpenAI(base_url=f"{front.url}/v1", api_key=front.key, max_retries=0)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    out = client.chat.completions.create(
        model="relayed",
        messages=[{"role": "user", "content": "Is Paris in France? Answer in JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        max_tokens=30,
        temperature=0,
    )
    assert isinstance(json.loads(out.choices[0].message.content)["ok"], bool)
    emb = client.embeddings.create(model="relayed", input=["un", "deux"], encoding_format="float")
    assert len(emb.data) == 2 and len(emb.data[0].embedding) > 100


def test_upstream_client_errors_come_back_as_their_kind(front: Server) -> None:
    client = openai.OpenAI(base_url=f"{front.url}/v1", api_key=front.key, max_retries=0)
    # The upstream refuses tool_choice auto on its embedded engine; the front says it was
    # refused as invalid (a 400), and keeps the upstream's own words for its log.
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="relayed",
            messages=[{"role": "user", "content": "x"}],
            tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        )
    body = err.value.body
    assert isinstance(body, dict) and body["code"] == "upstream_rejected"
    assert "route 'undeclared'" in body["message"] and "HTTP 400" in body["message"]
    assert "choose freely" not in body["message"]
    assert "choose freely" in front.log.read_text()


# -- fault injection ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def faulty() -> Iterator[FaultServer]:
    server = FaultServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fault_front(faulty: FaultServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    config = f"""
models:
  - name: flaky
    engine: openai_http
    base_url: http://127.0.0.1:{faulty.port}/v1
    read_timeout_s: 1
  - name: gone
    engine: openai_http
    base_url: http://127.0.0.1:{dead_port}/v1
"""
    server = Server(tmp_path_factory.mktemp("fault"), config)
    server.wait_ready()
    yield server
    server.stop()


CHAT = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("model", "mode", "status", "code"),
    [
        ("gone", "ok", 502, "upstream_error"),
        ("flaky", "error500", 502, "upstream_error"),
        ("flaky", "unauthorized", 502, "upstream_error"),
        ("flaky", "rate_limited", 429, "upstream_rate_limited"),
        ("flaky", "hang", 504, "upstream_timeout"),
        ("flaky", "not_json", 502, "upstream_error"),
    ],
)
def test_upstream_failures_map_to_clear_errors(
    fault_front: Server, faulty: FaultServer, model: str, mode: str, status: int, code: str
) -> None:
    faulty.mode = mode
    for stream in (False, True):
        response = http.post(
            f"{fault_front.url}/v1/chat/completions",
            json={**CHAT, "model": model, "stream": stream},
            headers=fault_front.headers(),
            timeout=30,
        )
        if mode == "not_json" and stream:
            continue  # a non-SSE body on a stream is covered by the broken-stream test
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
        if mode == "rate_limited":
            assert response.headers["retry-after"] == "7"
    faulty.mode = "ok"
    assert http.post(
        f"{fault_front.url}/v1/chat/completions", json={**CHAT, "model": "flaky"}, headers=fault_front.headers()
    ).json()["choices"][0]["message"]["content"] == "fine"


def test_broken_stream_ends_with_an_error_event(fault_front: Server, faulty: FaultServer) -> None:
    faulty.mode = "broken_stream"
    response = http.post(
        f"{fault_front.url}/v1/chat/completions",
        json={**CHAT, "model": "flaky", "stream": True},
        headers=fault_front.headers(),
    )
    assert response.status_code == 200
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "Hel"
    assert json.loads(events[-1])["error"]["code"] == "upstream_error"
    assert "[DONE]" not in events
    faulty.mode = "ok"


# -- translation per flavor -----------------------------------------------------------------


def translate(flavor: str, body: dict, stream: bool = False) -> dict:
    engine = OpenAIHTTPEngine(OpenAIHTTPModel(name="m", base_url="http://127.0.0.1/v1", flavor=flavor))
    return engine.translate(decode(json.dumps({"model": "m", **body}).encode(), ChatRequest), stream=stream)


def test_mistral_flavor_translation() -> None:
    body = translate(
        "mistral",
        {
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [{"id": "call_abc-123", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_abc-123", "content": "r"},
            ],
            "seed": 4,
            "tool_choice": "required",
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "max_completion_tokens": 9,
            "user": "u",
        },
        stream=True,
    )
    assert body["random_seed"] == 4 and "seed" not in body
    assert body["tool_choice"] == "any"
    assert body["max_tokens"] == 9 and "max_completion_tokens" not in body
    assert "user" not in body and "stream_options" not in body
    new_id = body["messages"][1]["tool_calls"][0]["id"]
    assert len(new_id) == 9 and new_id.isalnum()
    assert body["messages"][2]["tool_call_id"] == new_id


def test_vllm_and_openai_flavors() -> None:
    vllm = translate("vllm", {"messages": [{"role": "user", "content": "x"}], "max_tokens": 5}, stream=True)
    assert vllm["max_completion_tokens"] == 5 and "max_tokens" not in vllm
    assert vllm["stream_options"] == {"include_usage": True}
    plain = translate("openai", {"messages": [{"role": "user", "content": "x"}], "seed": 3})
    assert plain["seed"] == 3 and plain["stream"] is False and "stream_options" not in plain


def test_tools_refused_when_upstream_has_none() -> None:
    engine = OpenAIHTTPEngine(OpenAIHTTPModel(name="m", base_url="http://127.0.0.1/v1", tools=False))
    request = decode(
        json.dumps(
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"function": {"name": "f"}}]}
        ).encode(),
        ChatRequest,
    )
    with pytest.raises(Exception) as err:
        engine.translate(request, stream=False)
    assert getattr(err.value, "status", None) == 400
