"""Conformance on a real third-party server: the gateway in front of llama-cpp-python's
OpenAI-compatible server (`llama_cpp.server`, from PyPI, the same llama.cpp build),
serving the SmolLM2 GGUF, driven by the official `openai` and `mistralai` clients.

The upstream is started by tests/llama_cpp_python_server.py (their app; only the CPU
backend is loaded by ours). Its three model aliases are three gateway models:

- `lcp`: the GGUF's chat template (tool calls only for a named function);
- `lcp-fc`: chat_format chatml-function-calling, declared with `capabilities:
  tool_choice: [auto, none, named]`;
- `lcp-embed`: embedding mode (SmolLM2 has no pooling: token-level vectors come back);
- `lcp-as-openai`: the `lcp` alias misdeclared as `flavor: openai`, to see what the caller
  gets when the upstream refuses what it was sent.

The server swaps models when another alias is asked for, so tests are grouped by alias.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import ROOT, Server
from mistralai.client import Mistral
from mistralai.client.errors import SDKError
from translation import SCHEMA, TOOL, USER, assert_answers_in_schema, city_tool

from souverain.engines.llamacpp import bundled_model_path

OTHER = city_tool("get_time", "Time in a city")
WEATHER = USER  # the translator tests' request: one question a tool answers
# A turn offering two tools, for one named by tool_choice (the same through both SDKs).
TOOL_TURN: dict[str, Any] = {"messages": WEATHER, "tools": [TOOL, OTHER], "max_tokens": 40, "temperature": 0}
N_CTX = 512
# What an upstream's error body holds and a caller must never see.
INTERNALS = ("Traceback", "site-packages", "pydantic", '.py"', "literal_error", "input_value")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's server on a free port; its base URL."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    log = (tmp_path_factory.mktemp("lcp") / "server.log").open("w")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "llama_cpp_python_server.py"),
            str(port),
            str(bundled_model_path()),
            str(N_CTX),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{base}/models", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"llama_cpp.server did not start:\n{Path(log.name).read_text()}")
        time.sleep(0.2)
    yield base
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture(scope="module")
def front(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = f"""
models:
  - name: lcp
    engine: openai_http
    flavor: llama-cpp-python
    base_url: {upstream}
    upstream_model: smollm2
  - name: lcp-fc
    engine: openai_http
    flavor: llama-cpp-python
    base_url: {upstream}
    upstream_model: smollm2-fc
    capabilities:
      tool_choice: [auto, none, named]
  - name: lcp-embed
    engine: openai_http
    flavor: llama-cpp-python
    base_url: {upstream}
    upstream_model: smollm2-embed
    embeddings: true
  - name: lcp-as-openai
    engine: openai_http
    flavor: openai
    base_url: {upstream}
    upstream_model: smollm2
"""
    server = Server(tmp_path_factory.mktemp("front"), config)
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(front: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{front.url}/v1", api_key=front.key, max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def mistral(front: Server) -> Mistral:
    return Mistral(api_key=front.key, server_url=front.url, timeout_ms=300_000)


def clean(message: str) -> None:
    assert not any(word in message for word in INTERNALS), message


# -- lcp: the GGUF's own chat template ------------------------------------------------------


def test_chat(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="lcp", messages=[{"role": "user", "content": "Say hi"}], max_tokens=8, temperature=0, seed=1
    )
    assert out.model == "lcp" and out.choices[0].message.content
    assert out.usage is not None and out.usage.completion_tokens > 0 and out.usage.prompt_tokens > 0


def test_stream(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="lcp",
            messages=[{"role": "user", "content": "Count to five."}],
            max_tokens=8,
            temperature=0,
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and all(c.model == "lcp" for c in chunks)
    # The server reports no usage in streams: the gateway counts the content chunks.
    assert chunks[-1].usage is not None and 0 < chunks[-1].usage.completion_tokens <= 8


def test_named_tool(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="lcp", tool_choice={"type": "function", "function": {"name": "get_weather"}}, **TOOL_TURN
    )
    call = out.choices[0].message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)


def test_required_with_one_tool(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="lcp", messages=WEATHER, tools=[TOOL], tool_choice="required", max_tokens=40, temperature=0
    )
    assert out.choices[0].message.tool_calls[0].function.name == "get_weather"


def test_named_tool_streamed(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="lcp",
            messages=WEATHER,
            tools=[TOOL],
            max_tokens=40,
            temperature=0,
            stream=True,
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
    )
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls and calls[0].function.name == "get_weather"
    assert json.loads("".join(tc.function.arguments or "" for tc in calls))["city"]


@pytest.mark.parametrize(
    ("tools", "choice", "what"),
    [
        ([TOOL, OTHER], "required", "tool_choice 'required'"),
        ([TOOL], None, "tool_choice 'auto'"),
    ],
)
def test_tool_choice_the_server_cannot_honour_is_refused(
    client: openai.OpenAI, tools: list, choice: str | None, what: str
) -> None:
    extra = {"tool_choice": choice} if choice else {}
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="lcp", messages=WEATHER, tools=tools, max_tokens=40, **extra)
    body = err.value.body
    assert isinstance(body, dict) and body["code"] == "unsupported_tool_choice" and body["param"] == "tool_choice"
    assert "'lcp'" in body["message"] and what in body["message"] and "llama-cpp-python" in body["message"]


def test_json_schema(client: openai.OpenAI) -> None:
    assert_answers_in_schema(client, "lcp", name="verdict", max_tokens=40)


def test_logprobs(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="lcp",
        messages=[{"role": "user", "content": "Say hi"}],
        max_tokens=4,
        temperature=0,
        logprobs=True,
        top_logprobs=2,
    )
    logprobs = out.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    assert all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in logprobs.content)


@pytest.mark.parametrize(
    ("extra", "code", "param"),
    [
        ({"n": 2}, "n_unsupported", "n"),
        ({"reasoning_effort": "low"}, "reasoning_unsupported", "reasoning_effort"),
    ],
)
def test_what_the_server_ignores_is_refused(client: openai.OpenAI, extra: dict, code: str, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="lcp", messages=[{"role": "user", "content": "Say hi"}], max_tokens=4, **extra
        )
    body = err.value.body
    assert isinstance(body, dict) and body["code"] == code and body["param"] == param and "'lcp'" in body["message"]


def test_context_overflow_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="lcp", messages=[{"role": "user", "content": "lorem ipsum " * 600}], max_tokens=8
        )
    body = err.value.body
    assert isinstance(body, dict) and body["code"] == "context_length_exceeded" and "'lcp'" in body["message"]
    clean(body["message"])


def test_mistral_client(mistral: Mistral) -> None:
    out = mistral.chat.complete(
        model="lcp", messages=[{"role": "user", "content": "Say bonjour."}], max_tokens=8, random_seed=3
    )
    assert isinstance(out.choices[0].message.content, str) and out.choices[0].message.content
    assert out.usage.completion_tokens > 0
    events = list(
        mistral.chat.stream(model="lcp", messages=[{"role": "user", "content": "Count to three."}], max_tokens=8)
    )
    assert "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices)
    assert events[-1].data.usage is not None and events[-1].data.usage.completion_tokens > 0


def test_mistral_tool_choice_any(mistral: Mistral) -> None:
    out = mistral.chat.complete(
        model="lcp", messages=WEATHER, tools=[TOOL], tool_choice="any", max_tokens=40, temperature=0
    )
    call = out.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and len(call.id) == 9 and call.id.isalnum()
    args = call.function.arguments if isinstance(call.function.arguments, dict) else json.loads(call.function.arguments)
    # The call and its result go back in the history, as Mistral clients send them.
    follow = mistral.chat.complete(
        model="lcp",
        max_tokens=8,
        messages=[
            *WEATHER,
            {"role": "assistant", "content": "", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "name": "get_weather", "content": f"Sunny in {args['city']}"},
        ],
    )
    assert follow.choices[0].message.content
    with pytest.raises(SDKError) as err:
        mistral.chat.complete(model="lcp", messages=WEATHER, tools=[TOOL, OTHER], tool_choice="any", max_tokens=40)
    assert err.value.status_code == 400
    body = json.loads(err.value.body)
    assert body["object"] == "error" and body["code"] == "unsupported_tool_choice" and "'lcp'" in body["message"]


def test_mistral_tool_call_streamed(mistral: Mistral) -> None:
    events = list(
        mistral.chat.stream(
            model="lcp", messages=WEATHER, tools=[TOOL], tool_choice="any", max_tokens=40, temperature=0
        )
    )
    calls = [tc for e in events if e.data.choices for tc in (e.data.choices[0].delta.tool_calls or [])]
    assert calls and calls[0].function.name == "get_weather"
    ids = {tc.id for tc in calls if tc.id and tc.id != "null"}
    assert len(ids) == 1 and all(len(i) == 9 and i.isalnum() for i in ids)  # one call, one Mistral id


def test_mistral_json_schema(mistral: Mistral) -> None:
    out = mistral.chat.complete(
        model="lcp",
        messages=[{"role": "user", "content": "Is Paris in France? Answer in JSON."}],
        max_tokens=40,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "verdict", "schema": SCHEMA}},
    )
    assert isinstance(json.loads(out.choices[0].message.content)["ok"], bool)


# -- lcp-as-openai: what the upstream refuses comes back as its kind, not its body ----------


def test_upstream_failure_is_not_relayed_raw(client: openai.OpenAI, front: Server) -> None:
    # Sent in OpenAI's form, json_schema is not in this server's request type: it answers
    # 500 with its validation dump and a file path of its code in the body.
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(
            model="lcp-as-openai",
            messages=[{"role": "user", "content": "Answer in JSON."}],
            max_tokens=8,
            response_format={"type": "json_schema", "json_schema": {"name": "verdict", "schema": SCHEMA}},
        )
    assert err.value.status_code == 502
    body = err.value.body
    assert isinstance(body, dict) and body["code"] == "upstream_error"
    assert body["message"] == "the upstream of route 'undeclared' failed (HTTP 500)"  # the route, not the address
    assert "literal_error" in front.log.read_text()  # the detail: for the operator


# -- lcp-fc: chatml-function-calling parses free tool choice ----------------------------------


def test_auto_tool_choice_where_declared(client: openai.OpenAI, mistral: Mistral) -> None:
    # tool_choice left implicit: auto, which this chat format parses (the model may call).
    out = client.chat.completions.create(model="lcp-fc", messages=WEATHER, tools=[TOOL], max_tokens=40, temperature=0)
    # The model chooses: a call, or an answer. (When it answers, this handler of the server
    # returns an empty message: its follow-up grammar allows only a call or the end.)
    choice = out.choices[0]
    assert choice.finish_reason in ("stop", "tool_calls", "length")
    assert all(c.function.name == "get_weather" for c in choice.message.tool_calls or [])
    forced = mistral.chat.complete(
        model="lcp-fc", tool_choice={"type": "function", "function": {"name": "get_time"}}, **TOOL_TURN
    )
    call = forced.choices[0].message.tool_calls[0]
    assert call.function.name == "get_time" and len(call.id) == 9


# -- lcp-embed: an answer of an unexpected shape ----------------------------------------------


def test_token_level_embeddings_are_a_clear_502(client: openai.OpenAI, mistral: Mistral) -> None:
    with pytest.raises(openai.APIStatusError) as err:
        client.embeddings.create(model="lcp-embed", input=["un", "deux"], encoding_format="float")
    assert err.value.status_code == 502
    body = err.value.body
    assert isinstance(body, dict) and body["code"] == "upstream_bad_response" and "unexpected shape" in body["message"]
    with pytest.raises(SDKError) as merr:
        mistral.embeddings.create(model="lcp-embed", inputs=["un"])
    assert merr.value.status_code == 502 and json.loads(merr.value.body)["object"] == "error"


def test_embeddings_not_declared_are_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model="lcp", input=["un"])
    assert err.value.body["code"] == "embeddings_unsupported"  # type: ignore[index]
