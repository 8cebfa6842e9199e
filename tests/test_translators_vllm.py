"""The `vllm` translator: OpenAI's schema plus vLLM's own fields, nothing vLLM would
silently ignore."""

from __future__ import annotations

import pytest
from translation import CORPUS, SCHEMA, USER, openai_chat_schema, sent, validate

from souverain.errors import Unsupported


@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_bodies_are_openai_bodies_with_vllms_names(index: int) -> None:
    body = sent("vllm", CORPUS[index], stream=True)
    assert "max_tokens" not in body  # deprecated there: max_completion_tokens
    validate(openai_chat_schema(True), body)
    assert not any(m["role"] == "developer" for m in body["messages"])


def test_translations() -> None:
    assert sent("vllm", CORPUS[1])["max_completion_tokens"] == 5
    both = sent("vllm", {"messages": USER, "max_tokens": 5, "max_completion_tokens": 9})
    assert both["max_completion_tokens"] == 9 and "max_tokens" not in both
    assert sent("vllm", {"messages": USER, "reasoning_budget_tokens": 64})["thinking_token_budget"] == 64
    assert sent("vllm", CORPUS[1])["messages"][0] == {"role": "system", "content": "Be brief."}
    fmt = sent("vllm", CORPUS[9])["response_format"]
    assert fmt == {"type": "json_schema", "json_schema": {"name": "response", "schema": SCHEMA}}
    assert sent("vllm", CORPUS[6])["tool_choice"] == "required"
    assert sent("vllm", {"messages": USER}, stream=True)["stream_options"] == {"include_usage": True}


def test_mistral_fields_done_by_the_gateway() -> None:
    body = sent("vllm", CORPUS[16])
    assert "safe_prompt" not in body and body["messages"][0]["role"] == "system"
    with pytest.raises(Exception) as err:
        sent("vllm", {"messages": USER, "prompt_mode": "reasoning"})
    assert getattr(err.value, "code", None) == "reasoning_unsupported"
    body = sent("vllm", {"messages": USER, "prompt_mode": "reasoning"}, reasoning_system_prompt="Think.")
    assert body["messages"][0] == {"role": "system", "content": "Think."}


def test_capabilities_overridden_per_model() -> None:
    with pytest.raises(Unsupported) as err:
        sent(
            "vllm",
            {"messages": USER, "tools": CORPUS[4]["tools"]},
            capabilities={"tool_choice": ["none", "required", "named"]},
        )
    assert err.value.code == "unsupported_tool_choice" and "auto" in err.value.message
