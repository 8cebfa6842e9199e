"""The `ollama` translator (Ollama's /v1 API, which does not read tool_choice)."""

from __future__ import annotations

import pytest
from translation import CORPUS, SCHEMA, TOOL, USER, openai_chat_schema, sent, validate

from souverain.errors import Unsupported


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 15, 16, 17, 18])
def test_bodies_are_openai_bodies(index: int) -> None:
    validate(openai_chat_schema(False), sent("ollama", CORPUS[index]))


def test_tool_choice_translated() -> None:
    auto = sent("ollama", CORPUS[4])
    assert auto["tools"] == [TOOL] and "tool_choice" not in auto
    none = sent("ollama", CORPUS[5])
    assert "tools" not in none and "tool_choice" not in none  # no tool offered: none can be called


@pytest.mark.parametrize("index", [6, 7])
def test_forced_tool_calls_refused(index: int) -> None:
    with pytest.raises(Unsupported) as err:
        sent("ollama", CORPUS[index])
    assert err.value.code == "unsupported_tool_choice" and "'auto'" in err.value.message


def test_translations() -> None:
    assert sent("ollama", {"messages": USER, "max_completion_tokens": 9})["max_tokens"] == 9
    fmt = sent("ollama", CORPUS[9])["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == SCHEMA


@pytest.mark.parametrize(("index", "code"), [(13, "logprobs_unsupported"), (14, "n_unsupported")])
def test_refused_before_sending(index: int, code: str) -> None:
    with pytest.raises(Unsupported) as err:
        sent("ollama", CORPUS[index])
    assert err.value.code == code
