"""The official `mistralai` SDK, unmodified, against a real gateway on the embedded model."""

from __future__ import annotations

import json

import pytest
from conftest import MODEL, Server, http
from mistralai.client import Mistral
from mistralai.client.errors import HTTPValidationError, SDKError

from souverain.engines.reasoning import SAFE_PROMPT


@pytest.fixture(scope="module")
def mistral(gateway: Server) -> Mistral:
    return Mistral(api_key=gateway.key, server_url=gateway.url, timeout_ms=120_000)


def test_chat_complete(mistral: Mistral) -> None:
    out = mistral.chat.complete(
        model=MODEL, messages=[{"role": "user", "content": "Say bonjour."}], max_tokens=12, random_seed=3
    )
    assert out.model == MODEL
    assert isinstance(out.choices[0].message.content, str) and out.choices[0].message.content
    assert out.choices[0].finish_reason in ("stop", "length")
    assert out.usage.prompt_tokens > 0 and out.usage.completion_tokens > 0
    again = mistral.chat.complete(
        model=MODEL, messages=[{"role": "user", "content": "Say bonjour."}], max_tokens=12, random_seed=3
    )
    assert again.choices[0].message.content == out.choices[0].message.content


def test_chat_stream(mistral: Mistral) -> None:
    events = list(
        mistral.chat.stream(model=MODEL, messages=[{"role": "user", "content": "Count to three."}], max_tokens=12)
    )
    assert len(events) >= 3
    text = "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices)
    assert text
    assert events[-1].data.choices[0].finish_reason in ("stop", "length")
    assert events[-1].data.usage is not None and events[-1].data.usage.completion_tokens > 0


def test_tools_with_tool_choice_any(mistral: Mistral) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]
    out = mistral.chat.complete(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the weather in Lyon?"}],
        tools=tools,
        tool_choice="any",
        max_tokens=60,
        temperature=0,
    )
    choice = out.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    args = call.function.arguments if isinstance(call.function.arguments, dict) else json.loads(call.function.arguments)
    assert "city" in args
    assert len(call.id) == 9 and call.id.isalnum()
    # The call and its result go back in the history, as Mistral clients send them.
    follow = mistral.chat.complete(
        model=MODEL,
        messages=[
            {"role": "user", "content": "What is the weather in Lyon?"},
            {"role": "assistant", "content": "", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "name": "get_weather", "content": "Sunny"},
        ],
        max_tokens=10,
    )
    assert follow.choices[0].message.content


def test_json_schema_output(mistral: Mistral) -> None:
    schema = {
        "type": "object",
        "properties": {"country": {"type": "string"}, "capital": {"type": "string"}},
        "required": ["country", "capital"],
    }
    out = mistral.chat.complete(
        model=MODEL,
        messages=[{"role": "user", "content": "The capital of Italy, as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "capital", "schema": schema, "strict": True}},
        max_tokens=60,
        temperature=0,
    )
    data = json.loads(out.choices[0].message.content)
    assert set(data) == {"country", "capital"}


def test_embeddings_and_models(mistral: Mistral) -> None:
    emb = mistral.embeddings.create(model=MODEL, inputs=["Bonjour", "Hallo"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) > 100
    assert emb.usage.prompt_tokens > 0
    models = mistral.models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert models.data[0].capabilities.completion_chat is True


def test_validation_error_is_a_422_the_sdk_parses(mistral: Mistral, gateway: Server) -> None:
    with pytest.raises(HTTPValidationError) as err:
        mistral.chat.complete(model=MODEL, messages=[{"role": "user", "content": "x"}], temperature=7.5)
    detail = err.value.data.detail
    assert detail and list(detail[0].loc) == ["body", "temperature"]
    assert gateway.alive()


def test_unauthorized_is_an_sdk_error(gateway: Server) -> None:
    bad = Mistral(api_key="sk-sv-000000000000-nope", server_url=gateway.url)
    with pytest.raises(SDKError) as err:
        bad.chat.complete(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert err.value.status_code == 401
    body = json.loads(err.value.body)
    assert body["object"] == "error" and body["type"] == "authentication_error"


def test_dialects_are_told_apart(gateway: Server) -> None:
    url = f"{gateway.url}/v1/chat/completions"
    bad = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "temperature": 9}
    openai_style = http.post(url, json=bad, headers=gateway.headers())
    assert openai_style.status_code == 400 and "error" in openai_style.json()
    by_agent = http.post(url, json=bad, headers={**gateway.headers(), "user-agent": "speakeasy-sdk/python mistralai"})
    assert by_agent.status_code == 422 and by_agent.json()["detail"][0]["loc"] == ["body", "temperature"]
    # A Mistral-only field marks the body as Mistral's even from a plain HTTP client.
    ok = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 2, "random_seed": 1}
    by_field = http.post(url, json=ok, headers=gateway.headers())
    assert by_field.status_code == 200 and by_field.headers["x-souverain-dialect"] == "mistral"
    forced = http.post(
        url, json=bad, headers={**gateway.headers(), "x-souverain-dialect": "openai", "user-agent": "mistralai"}
    )
    assert forced.status_code == 400
    plain = http.post(url, json={**ok, "random_seed": None, "seed": 1}, headers=gateway.headers())
    assert plain.headers["x-souverain-dialect"] == "openai"


def test_safe_prompt_is_applied(gateway: Server) -> None:
    url = f"{gateway.url}/v1/chat/completions"
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    safe = http.post(url, json={**body, "safe_prompt": True}, headers=gateway.headers()).json()
    explicit = {**body, "messages": [{"role": "system", "content": SAFE_PROMPT}, *body["messages"]]}
    by_hand = http.post(url, json=explicit, headers=gateway.headers()).json()
    plain = http.post(url, json=body, headers=gateway.headers()).json()
    # The guardrail is exactly a system message with Mistral's text, placed first.
    assert safe["usage"]["prompt_tokens"] == by_hand["usage"]["prompt_tokens"]
    assert safe["usage"]["prompt_tokens"] != plain["usage"]["prompt_tokens"]
