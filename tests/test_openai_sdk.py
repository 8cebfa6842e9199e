"""The official `openai` SDK against a real gateway serving the embedded model."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from conftest import MODEL, Server
from translation import city_tool


@pytest.fixture(scope="module")
def client(gateway: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0, timeout=120)


def ask(client: openai.OpenAI, content: str, **options: Any) -> Any:
    """One user message to the gateway's model through the SDK, with the SDK's `options`."""
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}], **options)


def test_chat_completion(client: openai.OpenAI) -> None:
    out = ask(client, "Say hello.", max_tokens=16, temperature=0)
    assert out.object == "chat.completion"
    assert out.model == MODEL
    choice = out.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert out.usage.prompt_tokens > 0
    assert 0 < out.usage.completion_tokens <= 16
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens


def test_max_tokens_and_length_finish(client: openai.OpenAI) -> None:
    out = ask(client, "Write a long story about the sea.", max_tokens=5)
    assert out.choices[0].finish_reason == "length"
    assert out.usage.completion_tokens == 5


def test_seed_makes_sampling_repeatable(client: openai.OpenAI) -> None:
    def sample() -> str:
        out = ask(
            client,
            "Name a colour.",
            max_tokens=12,
            temperature=1.0,
            seed=1234,
        )
        return out.choices[0].message.content or ""

    assert sample() == sample()


def test_stop_sequence(client: openai.OpenAI) -> None:
    base = (
        ask(
            client,
            "Count: 1, 2, 3, 4, 5, 6",
            max_tokens=24,
            temperature=0,
            seed=3,
        )
        .choices[0]
        .message.content
    )
    assert base and len(base) > 3
    stop_at = base[2:4]
    out = ask(
        client,
        "Count: 1, 2, 3, 4, 5, 6",
        max_tokens=24,
        temperature=0,
        seed=3,
        stop=[stop_at],
    )
    assert stop_at not in (out.choices[0].message.content or "")
    assert out.choices[0].finish_reason == "stop"


def test_streaming(client: openai.OpenAI, gateway: Server) -> None:
    stream = ask(
        client,
        "Tell me about Paris.",
        max_tokens=20,
        temperature=0,
        seed=7,
        stream=True,
    )
    chunks = list(stream)
    assert len(chunks) >= 3
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    last = chunks[-1]
    assert last.choices[0].finish_reason in ("stop", "length")
    assert last.usage is not None and last.usage.completion_tokens > 0
    # The same prompt without streaming gives the same text (temperature 0).
    whole = ask(
        client,
        "Tell me about Paris.",
        max_tokens=20,
        temperature=0,
        seed=7,
    )
    assert whole.choices[0].message.content == text
    assert whole.usage.completion_tokens == last.usage.completion_tokens


def test_streaming_include_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        ask(
            client,
            "Hi",
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_json_schema_output_parses(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    out = ask(
        client,
        "Give the largest city of France and its population as JSON.",
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
        max_tokens=120,
        temperature=0,
    )
    data = json.loads(out.choices[0].message.content or "")
    assert set(data) == {"city", "population"}
    assert isinstance(data["city"], str) and isinstance(data["population"], int)


def test_json_object_output_parses(client: openai.OpenAI) -> None:
    out = ask(
        client,
        "Return a JSON object with a name and an age.",
        response_format={"type": "json_object"},
        max_tokens=150,
        temperature=0,
    )
    assert out.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(out.choices[0].message.content or ""), dict)


WEATHER_TOOL = city_tool("get_weather", "Current weather for a city")
TIME_TOOL = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}},
}


def test_forced_tool_call(client: openai.OpenAI) -> None:
    out = ask(
        client,
        "What is the weather in Paris?",
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=60,
        temperature=0,
    )
    choice = out.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    assert "city" in json.loads(calls[0].function.arguments)


def test_required_tool_call_streamed(client: openai.OpenAI) -> None:
    chunks = list(
        ask(
            client,
            "What time is it in Berlin?",
            tools=[WEATHER_TOOL, TIME_TOOL],
            tool_choice="required",
            max_tokens=80,
            temperature=0,
            stream=True,
        )
    )
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls and calls[0].function.name in ("get_weather", "get_time")
    json.loads(calls[0].function.arguments)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_auto_tool_choice_is_a_clear_400(client: openai.OpenAI, gateway: Server) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        ask(client, "Weather?", tools=[WEATHER_TOOL], max_tokens=10)
    assert err.value.code == "unsupported_tool_choice"
    assert "tool_choice" in str(err.value)
    assert gateway.alive()


def test_tool_result_round_trip(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
        ],
        max_tokens=20,
    )
    assert out.choices[0].message.content


def test_models_lists_what_the_key_may_use(client: openai.OpenAI, gateway: Server) -> None:
    assert [m.id for m in client.models.list()] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL
    # A key limited to another model sees nothing and cannot use this one.
    limited = gateway.cli("keys", "create", "--name", "limited", "--model", "some-other-model")
    assert limited.returncode == 0, limited.stderr
    other = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=limited.stdout.strip(), max_retries=0)
    assert list(other.models.list()) == []
    with pytest.raises(openai.NotFoundError):
        other.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2)


def test_embeddings(client: openai.OpenAI) -> None:
    out = client.embeddings.create(model=MODEL, input=["Bonjour", "Guten Tag", "Bonjour"])
    assert len(out.data) == 3
    first, second, third = (d.embedding for d in out.data)
    assert len(first) == len(second) > 100
    assert first == pytest.approx(third)
    assert first != pytest.approx(second)
    assert out.usage.prompt_tokens > 0
    # The SDK asks for base64 by default when numpy is present; both forms agree.
    single = client.embeddings.create(model=MODEL, input="Bonjour", encoding_format="float")
    assert single.data[0].embedding == pytest.approx(first, rel=1e-5)
