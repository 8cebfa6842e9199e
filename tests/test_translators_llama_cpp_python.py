"""The `llama-cpp-python` translator: every body it makes is accepted by that server's own
request type (llama_cpp.server.types.CreateChatCompletionRequest), with nothing in it that
the server would drop silently. The same server is run for real in
tests/test_conformance_llama_cpp_python.py."""

from __future__ import annotations

import pytest
from translation import CORPUS, SCHEMA, TOOL, USER, sent

from souverain.errors import Unsupported

REFUSED = {
    3: "unsupported_tool_choice",
    4: "unsupported_tool_choice",
    6: "unsupported_tool_choice",
    14: "n_unsupported",
    15: "reasoning_unsupported",
}


def server_valid(body: dict) -> None:
    from llama_cpp.server.types import CreateChatCompletionRequest

    parsed = CreateChatCompletionRequest.model_validate(body)
    known = set(CreateChatCompletionRequest.model_fields)
    assert set(body) <= known, f"fields the server would ignore: {set(body) - known}"
    assert len(parsed.messages) == len(body["messages"])


@pytest.mark.parametrize("index", [i for i in range(len(CORPUS)) if i not in REFUSED])
def test_bodies_validate_against_the_servers_request_type(index: int) -> None:
    server_valid(sent("llama-cpp-python", CORPUS[index], stream=True))


@pytest.mark.parametrize("index", sorted(REFUSED))
def test_refused_before_sending(index: int) -> None:
    with pytest.raises(Unsupported) as err:
        sent("llama-cpp-python", CORPUS[index])
    assert err.value.code == REFUSED[index]
    assert "'m'" in err.value.message and "llama-cpp-python" in err.value.message


def test_json_schema_as_json_object_with_schema() -> None:
    assert sent("llama-cpp-python", CORPUS[9])["response_format"] == {"type": "json_object", "schema": SCHEMA}


def test_required_with_one_tool_names_it() -> None:
    body = sent("llama-cpp-python", {"messages": USER, "tools": [TOOL], "tool_choice": "required"})
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    with pytest.raises(Unsupported, match="single tool"):
        sent("llama-cpp-python", CORPUS[6])


def test_auto_where_the_chat_format_parses_it() -> None:
    body = sent("llama-cpp-python", CORPUS[4], capabilities={"tool_choice": ["auto", "none", "named"]})
    assert body["tool_choice"] == "auto" and "parallel_tool_calls" not in body
    implicit = sent("llama-cpp-python", CORPUS[3], capabilities={"tool_choice": ["auto", "none", "named"]})
    assert implicit["tool_choice"] == "auto"  # left out, chatml-function-calling would not call at all


def test_messages_in_the_servers_shapes() -> None:
    messages = sent("llama-cpp-python", CORPUS[8])["messages"]
    assert "content" not in messages[1]  # no null content for assistant messages there
    assert messages[3]["content"] == "sunny" and "name" not in messages[2]
    assert sent("llama-cpp-python", CORPUS[1])["messages"][0]["role"] == "system"
    stream = sent("llama-cpp-python", {"messages": USER, "max_completion_tokens": 4}, stream=True)
    assert stream["max_tokens"] == 4 and "stream_options" not in stream
