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
from translation import assert_answers_in_schema
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
    assert_answers_in_schema(client, "relayed", name="a", max_tokens=30)
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
    # The breaker would stop forwarding after a few failures in a row: these tests are
    # about what each failure looks like, so it never opens here.
    config = f"""
routing:
  circuit: {{failures: 1000}}
models:
  - name: flaky
    engine: openai_http
    base_url: http://127.0.0.1:{faulty.port}/v1
    read_timeout_s: 1
    embeddings: true
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
    assert (
        http.post(
            f"{fault_front.url}/v1/chat/completions", json={**CHAT, "model": "flaky"}, headers=fault_front.headers()
        ).json()["choices"][0]["message"]["content"]
        == "fine"
    )


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("validation_dump", 400, "upstream_rejected"),
        ("context_full", 400, "context_length_exceeded"),
        ("no_choices", 502, "upstream_bad_response"),
    ],
)
def test_upstream_answers_reach_the_caller_as_their_kind(
    fault_front: Server, faulty: FaultServer, mode: str, status: int, code: str
) -> None:
    faulty.mode = mode
    for headers in ({}, {"x-souverain-dialect": "mistral"}):
        response = http.post(
            f"{fault_front.url}/v1/chat/completions",
            json={**CHAT, "model": "flaky"},
            headers={**fault_front.headers(), **headers},
        )
        assert response.status_code == status, response.text
        error = response.json() if headers else response.json()["error"]
        assert error["code"] == code
        # The upstream's body (its validation dump, its file paths) is not in the answer.
        assert "literal_error" not in response.text and "site-packages" not in response.text
        assert "Requested tokens" not in response.text and "127.0.0.1" not in response.text
    faulty.mode = "ok"
    assert "literal_error" in fault_front.log.read_text()  # the operator's log has it


def test_finish_reasons_outside_openais_enum_are_mapped(fault_front: Server, faulty: FaultServer) -> None:
    faulty.mode = "model_length"  # Mistral's API: the model's context ran out
    response = http.post(
        f"{fault_front.url}/v1/chat/completions", json={**CHAT, "model": "flaky"}, headers=fault_front.headers()
    )
    faulty.mode = "ok"
    assert response.json()["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize("mode", ["token_level", "short", "strings", "no_data"])
def test_embeddings_of_an_unexpected_shape_are_a_502(fault_front: Server, faulty: FaultServer, mode: str) -> None:
    faulty.mode = mode
    response = http.post(
        f"{fault_front.url}/v1/embeddings",
        json={"model": "flaky", "input": ["un", "deux"]},
        headers=fault_front.headers(),
    )
    faulty.mode = "ok"
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "upstream_bad_response"
    ok = http.post(
        f"{fault_front.url}/v1/embeddings",
        json={"model": "flaky", "input": ["un", "deux"]},
        headers=fault_front.headers(),
    )
    assert ok.status_code == 200 and [d["embedding"] for d in ok.json()["data"]] == [[0.1, 0.2, 0.3]] * 2


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
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "call_abc-123", "function": {"name": "f", "arguments": "{}"}}],
                },
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
