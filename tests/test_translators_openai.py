"""The `openai` translator: every body it makes is a valid request by OpenAI's published
schema (the official SDK's own request types, strict, unknown keys forbidden), and no
field is lost to the internal structs' omit_defaults."""

from __future__ import annotations

import pytest
from translation import (
    BARE_TOOL,
    CORPUS,
    TOOL,
    USER,
    SchemaMismatch,
    openai_chat_schema,
    openai_embedding_schema,
    sent,
    sent_embed,
    validate,
)

from souverain.errors import Unsupported


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_every_body_validates_against_openais_request_schema(index: int, stream: bool) -> None:
    body = sent("openai", CORPUS[index], stream=stream)
    validate(openai_chat_schema(stream), body)
    assert body["stream"] is stream
    assert "data_class" not in body and "random_seed" not in body and "safe_prompt" not in body


def test_the_schema_check_can_fail() -> None:
    # Guards the check itself: what the old encoding sent is refused by OpenAI's schema.
    body = sent("openai", {"messages": USER, "tools": [TOOL]})
    del body["tools"][0]["type"]
    with pytest.raises(SchemaMismatch):
        validate(openai_chat_schema(False), body)
    body = sent("openai", {"messages": USER})
    body["data_class"] = "internal"
    with pytest.raises(SchemaMismatch):
        validate(openai_chat_schema(False), body)
    history = sent("openai", CORPUS[8])
    del history["messages"][1]["tool_calls"][0]["function"]["arguments"]
    with pytest.raises(SchemaMismatch):
        validate(openai_chat_schema(False), history)


def test_defaults_are_written_out() -> None:
    body = sent("openai", {"messages": USER, "tools": [TOOL, BARE_TOOL]})
    assert [t["type"] for t in body["tools"]] == ["function", "function"]
    assert body["tools"][1]["function"]["parameters"] == {"type": "object", "properties": {}}
    history = sent("openai", CORPUS[8])["messages"][1]["tool_calls"]
    assert history[0] == {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
    assert history[1]["function"]["arguments"] == '{"city": "Lyon"}'  # an object, as Mistral callers send it
    fmt = sent("openai", CORPUS[9])["response_format"]
    assert fmt["json_schema"]["name"] == "response" and fmt["json_schema"]["schema"]["required"] == ["ok"]
    assert sent("openai", CORPUS[5])["tool_choice"] == "none"
    assert sent("openai", CORPUS[3])["tool_choice"] == "auto"  # implicit with tools: written out
    assert sent("openai", {"messages": USER})["stream"] is False


def test_passed_as_they_are() -> None:
    body = sent("openai", CORPUS[1])
    assert body["messages"][0] == {"role": "developer", "content": "Be brief."}
    assert (body["temperature"], body["max_tokens"], body["seed"], body["user"]) == (0, 5, 4, "u-1")
    assert sent("openai", CORPUS[6])["tool_choice"] == "required"  # caller's "any" included
    assert sent("openai", {**CORPUS[6], "tool_choice": "any"})["tool_choice"] == "required"
    assert sent("openai", CORPUS[13])["top_logprobs"] == 2
    assert sent("openai", CORPUS[14])["n"] == 2
    assert sent("openai", CORPUS[15])["reasoning_effort"] == "low"
    assert sent("openai", {"messages": USER}, stream=True)["stream_options"] == {"include_usage": True}


def test_mistral_fields_done_by_the_gateway() -> None:
    body = sent("openai", CORPUS[16])
    assert body["messages"][0]["role"] == "system" and body["seed"] == 9
    # A past turn's thinking (Mistral's content part) is not an OpenAI part: left out.
    assert sent("openai", CORPUS[18])["messages"][1]["content"] == [{"type": "text", "text": "Let me check."}]


def test_refused_before_sending() -> None:
    with pytest.raises(Unsupported) as err:
        sent("openai", {"messages": USER, "reasoning_budget_tokens": 100})
    assert err.value.code == "reasoning_budget_unsupported" and "'m'" in err.value.message
    with pytest.raises(Unsupported) as err:
        sent("openai", {"messages": USER, "tools": [TOOL]}, tools=False)
    assert err.value.code == "tools_unsupported" and err.value.param == "tools"
    with pytest.raises(Unsupported) as err:
        sent("openai", CORPUS[9], capabilities={"json_schema": False})
    assert err.value.code == "response_format_unsupported" and "json_schema" in err.value.message


def test_embeddings_body_validates() -> None:
    validate(openai_embedding_schema(), sent_embed("openai", ["un", "deux"], embeddings=True))
    with pytest.raises(Unsupported) as err:
        sent_embed("openai", ["un"])
    assert err.value.code == "embeddings_unsupported"


def test_every_default_omit_defaults_can_drop_is_accounted_for() -> None:
    """The fields of the request structs that encoding would drop because they equal a
    non-null default. Each is either written by the translators (checked above) or never
    forwarded. A new one fails here until it is put in one of the two lists."""
    import msgspec

    from souverain import chat

    written = {
        "FunctionCall.arguments",
        "ToolCall.type",
        "FunctionDef.parameters",
        "Tool.type",
        "JSONSchemaFormat.name",
        "ChatRequest.stream",
        "ChatRequest.safe_prompt",
    }
    never_forwarded = {
        "StreamOptions.include_usage",  # the gateway asks for usage itself
        "EmbeddingRequest.encoding_format",  # vectors are encoded by the gateway
        "Usage.prompt_tokens",
        "Usage.completion_tokens",
        "Usage.total_tokens",
    }  # not a request
    found = set()
    for name in dir(chat):
        cls = getattr(chat, name)
        if isinstance(cls, type) and issubclass(cls, chat.Wire) and cls is not chat.Wire:
            for f in msgspec.structs.fields(cls):
                default = (
                    f.default
                    if f.default is not msgspec.NODEFAULT
                    else (f.default_factory() if f.default_factory is not msgspec.NODEFAULT else None)
                )
                if default is not None:
                    found.add(f"{cls.__name__}.{f.name}")
    assert found == written | never_forwarded
    body = sent("openai", {"messages": USER, "safe_prompt": False, "tools": [BARE_TOOL]})
    assert body["stream"] is False and body["tools"][0]["type"] == "function"
