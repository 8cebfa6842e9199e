"""The `llama-server` translator (llama.cpp's C++ server)."""

from __future__ import annotations

import pytest
from translation import CORPUS, SCHEMA, TOOL, USER, sent

from souverain.errors import Unsupported


def test_translations() -> None:
    assert sent("llama-server", {"messages": USER, "max_completion_tokens": 9, "max_tokens": 3})["max_tokens"] == 9
    assert sent("llama-server", CORPUS[9])["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert sent("llama-server", CORPUS[11])["response_format"] == {"type": "json_object"}
    assert sent("llama-server", {"messages": USER, "reasoning_budget_tokens": 32})["reasoning_budget_tokens"] == 32
    assert sent("llama-server", {"messages": USER}, stream=True)["stream_options"] == {"include_usage": True}
    assert sent("llama-server", CORPUS[1])["messages"][0]["role"] == "system"


def test_named_function_becomes_required_with_that_tool_only() -> None:
    body = sent("llama-server", CORPUS[7])
    assert body["tool_choice"] == "required"
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather"]
    assert body["tools"][0] == TOOL


def test_defaults_are_written_out() -> None:
    body = sent("llama-server", CORPUS[3])
    assert all(t["type"] == "function" and "parameters" in t["function"] for t in body["tools"])


def test_refused_before_sending() -> None:
    with pytest.raises(Unsupported) as err:
        sent("llama-server", CORPUS[14])
    assert err.value.code == "n_unsupported" and err.value.param == "n"
