"""The `mistral` translator: bodies in Mistral's own request schema (the official
`mistralai` SDK's request type), Mistral's names, nine-character tool-call ids."""

from __future__ import annotations

import pytest
from translation import CORPUS, TOOL, USER, sent

from souverain.errors import Unsupported


def mistral_valid(body: dict) -> None:
    """Mistral's ChatCompletionRequest accepts the body, and every key in it is one the
    SDK knows (Mistral's API refuses unknown fields)."""
    from mistralai.client.models import ChatCompletionRequest

    parsed = ChatCompletionRequest.model_validate(body)
    dumped = parsed.model_dump(by_alias=True, exclude_unset=True)
    assert set(body) <= set(dumped), set(body) - set(dumped)
    for sent_m, known in zip(body["messages"], dumped["messages"], strict=True):
        assert set(sent_m) <= set(known), (sent_m, known)


MISTRAL_OK = [i for i, b in enumerate(CORPUS) if "logprobs" not in b]


@pytest.mark.parametrize("index", MISTRAL_OK)
def test_bodies_validate_against_mistrals_request_type(index: int) -> None:
    body = sent("mistral", CORPUS[index], stream=True)
    mistral_valid(body)
    assert "stream_options" not in body and "user" not in body and "seed" not in body


def test_translations() -> None:
    body = sent("mistral", {**CORPUS[1], "max_completion_tokens": 9})
    assert body["random_seed"] == 4 and body["max_tokens"] == 9 and "max_completion_tokens" not in body
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent("mistral", CORPUS[6])["tool_choice"] == "any"
    assert sent("mistral", CORPUS[16])["safe_prompt"] is True
    assert sent("mistral", {"messages": USER, "prompt_mode": "reasoning"})["prompt_mode"] == "reasoning"
    assert sent("mistral", CORPUS[15])["reasoning_effort"] == "low"
    assert sent("mistral", CORPUS[18])["messages"][1]["content"][0]["type"] == "thinking"  # Mistral has them


def test_tool_call_ids_are_nine_alphanumerics_consistently() -> None:
    messages = sent("mistral", CORPUS[8])["messages"]
    first, second = (c["id"] for c in messages[1]["tool_calls"])
    assert all(len(i) == 9 and i.isalnum() for i in (first, second)) and first != second
    assert messages[2]["tool_call_id"] == first and messages[3]["tool_call_id"] == second
    assert messages[2]["name"] == "get_time"  # Mistral's tool messages keep their name
    assert sent("mistral", CORPUS[8])["messages"][1]["tool_calls"][0]["id"] == first  # the same every time
    kept = sent(
        "mistral",
        {
            "messages": [
                *USER,
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "abcDEF123", "function": {"name": "get_weather", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": "abcDEF123", "content": "r"},
            ],
            "tools": [TOOL],
        },
    )
    assert kept["messages"][1]["tool_calls"][0]["id"] == "abcDEF123"


def test_refused_before_sending() -> None:
    with pytest.raises(Unsupported) as err:
        sent("mistral", {"messages": USER, "reasoning_budget_tokens": 10})
    assert err.value.code == "reasoning_budget_unsupported" and "reasoning_effort" in err.value.message
    with pytest.raises(Unsupported) as err:
        sent("mistral", CORPUS[13])
    assert err.value.code == "logprobs_unsupported"
