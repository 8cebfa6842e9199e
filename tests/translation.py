"""Helpers for the translator tests (tests/test_translators_*.py): internal requests made
the way the gateway makes them, the exact bytes an engine would send for them, and the
request schemas that third parties publish, to check those bytes against.

Shared by the translator tests; tests import helpers from here, never from each other.
"""

from __future__ import annotations

import functools
import json
from collections import abc
from collections.abc import Iterable, Iterator
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

import msgspec
from pydantic import TypeAdapter, ValidationError
from typing_extensions import is_typeddict

from souverain.chat import ChatRequest, decode
from souverain.config import OpenAIHTTPModel
from souverain.config.schema import CapabilityOverrides
from souverain.engines.openai_http import OpenAIHTTPEngine
from souverain.engines.translators import Target, target_for


def city_tool(name: str, description: str) -> dict[str, Any]:
    """A function tool whose one required argument is a city."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }


TOOL = city_tool("get_weather", "Weather for a city")
# A tool as callers write it when they rely on the defaults: no `type`, no `parameters`.
BARE_TOOL = {"function": {"name": "get_time"}}
SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


def assert_answers_in_schema(client: Any, model: str, *, name: str, max_tokens: int) -> None:
    """Through the OpenAI SDK `client`, `model` answers a yes/no question as SCHEMA's JSON."""
    out = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Is Paris in France? Answer in JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": name, "schema": SCHEMA}},
        max_tokens=max_tokens,
        temperature=0,
    )
    assert isinstance(json.loads(out.choices[0].message.content)["ok"], bool)


USER = [{"role": "user", "content": "What is the weather in Lyon?"}]

# Requests that, together, use every field the internal request has and every default a
# struct encoded with omit_defaults would drop (a tool's type and parameters, a tool
# call's type and arguments, a schema's name, stream: false, tool_choice "none").
CORPUS: list[dict[str, Any]] = [
    {"messages": USER},
    {
        "messages": [{"role": "developer", "content": "Be brief."}, *USER],
        "temperature": 0,
        "top_p": 1,
        "max_tokens": 5,
        "stop": ["\n"],
        "seed": 4,
        "presence_penalty": 0.5,
        "frequency_penalty": 0,
        "user": "u-1",
    },
    {"messages": USER, "max_completion_tokens": 7, "stop": "END"},
    {"messages": USER, "tools": [TOOL, BARE_TOOL]},
    {"messages": USER, "tools": [TOOL], "tool_choice": "auto", "parallel_tool_calls": False},
    {"messages": USER, "tools": [TOOL], "tool_choice": "none"},
    {"messages": USER, "tools": [TOOL, BARE_TOOL], "tool_choice": "required"},
    {
        "messages": USER,
        "tools": [TOOL, BARE_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    },
    {
        "messages": [
            *USER,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "function": {"name": "get_time"}},
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": {"city": "Lyon"}},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "name": "get_time", "content": "noon"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "sunny"}]},
        ],
        "tools": [TOOL, BARE_TOOL],
        "tool_choice": "none",
    },
    {
        "messages": [
            {"role": "system", "content": "Answer in JSON."},
            {"role": "user", "name": "ana", "content": [{"type": "text", "text": "Is Paris in France?"}]},
        ],
        "response_format": {"type": "json_schema", "json_schema": {"schema": SCHEMA}},
    },
    {
        "messages": USER,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "verdict", "description": "d", "schema": SCHEMA, "strict": True},
        },
    },
    {"messages": USER, "response_format": {"type": "json_object"}},
    {"messages": USER, "response_format": {"type": "text"}},
    {"messages": USER, "logprobs": True, "top_logprobs": 2},
    {"messages": USER, "n": 2},
    {"messages": USER, "reasoning_effort": "low"},
    {"messages": USER, "safe_prompt": True, "random_seed": 9},
    {"messages": USER, "data_class": "internal"},
    {
        "messages": [
            *USER,
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": [{"type": "text", "text": "Lyon is in France."}]},
                    {"type": "text", "text": "Let me check."},
                ],
            },
            {"role": "user", "content": "Go on."},
        ]
    },
]


def request(body: dict[str, Any]) -> ChatRequest:
    """The internal request the gateway makes of a caller's JSON body (parsed, normalised)."""
    chat: ChatRequest = decode(json.dumps({"model": "m", **body}).encode(), ChatRequest)
    return chat.normalise()


def config(flavor: str, **extra: Any) -> OpenAIHTTPModel:
    caps = extra.pop("capabilities", None)
    return OpenAIHTTPModel(
        name="m",
        base_url="http://127.0.0.1:9/v1",
        flavor=flavor,
        upstream_model="up",  # type: ignore[arg-type]
        capabilities=CapabilityOverrides(**caps) if caps else None,
        **extra,
    )


def target(flavor: str, **extra: Any) -> Target:
    return target_for(config(flavor, **extra))


def sent(flavor: str, body: dict[str, Any], *, stream: bool = False, **extra: Any) -> dict[str, Any]:
    """What the engine would send for `body`: the payload it hands to the seal, encoded
    and decoded as the seal does (so exactly the bytes that leave)."""
    engine = OpenAIHTTPEngine(config(flavor, **extra))
    outbound = engine.outbound(request(body), stream=stream)
    decoded: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(outbound.payload))
    return decoded


def sent_embed(flavor: str, texts: list[str], **extra: Any) -> dict[str, Any]:
    engine = OpenAIHTTPEngine(config(flavor, **extra))
    decoded: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(engine.outbound_embed(texts).payload))
    return decoded


# -- OpenAI's published request schema: the official SDK's request types ------------------
#
# The SDK's request types are TypedDicts, checked with pydantic in strict mode. Pydantic
# lets TypedDicts keep keys it does not know and takes no config for them from outside,
# so `unknown_keys` walks the body along the same types and lists every key that the
# schema does not have: together, "valid by OpenAI's schema, and nothing beside it".


class SchemaMismatch(AssertionError):
    pass


def openai_chat_schema(stream: bool) -> Any:
    from openai.types.chat import completion_create_params as params

    return params.CompletionCreateParamsStreaming if stream else params.CompletionCreateParamsNonStreaming


def openai_embedding_schema() -> Any:
    from openai.types import embedding_create_params as params

    return params.EmbeddingCreateParams


def validate(schema: Any, body: dict[str, Any]) -> None:
    """`body` is valid by `schema` (strict) and holds no key the schema lacks."""
    try:
        _consume(_adapter(schema).validate_python(body, strict=True))
    except ValidationError as exc:
        raise SchemaMismatch(str(exc)) from None
    extra = unknown_keys(body, schema)
    if extra:
        raise SchemaMismatch(f"keys the schema does not have: {extra}")


@functools.cache
def _adapter(tp: Any) -> TypeAdapter[Any]:
    """One adapter per type, kept: the lazy validators of `Iterable` fields need theirs
    alive while they are iterated."""
    return TypeAdapter(tp)


def _fits(value: Any, tp: Any) -> bool:
    try:
        _consume(_adapter(tp).validate_python(value, strict=True))
    except ValidationError:
        return False
    return True


def unknown_keys(value: Any, tp: Any, path: str = "$") -> list[str]:
    """Keys in `value` that type `tp` (a TypedDict, or a type containing them) lacks."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return unknown_keys(value, args[0], path)
    if is_typeddict(tp):
        if not isinstance(value, dict):
            return []
        hints = get_type_hints(tp)
        found: list[str] = []
        for key, item in value.items():
            found += [f"{path}.{key}"] if key not in hints else unknown_keys(item, hints[key], f"{path}.{key}")
        return found
    if origin in (Union, UnionType):
        # The members the value is valid for; the one with fewest unknown keys decides.
        fits = [unknown_keys(value, member, path) for member in args if _fits(value, member)]
        return min(fits, key=len) if fits else []
    if origin in (list, tuple, abc.Iterable, abc.Sequence) and isinstance(value, list) and args:
        return [k for i, item in enumerate(value) for k in unknown_keys(item, args[0], f"{path}[{i}]")]
    if origin in (dict, abc.Mapping) and isinstance(value, dict) and len(args) == 2:
        return [k for key, item in value.items() for k in unknown_keys(item, args[1], f"{path}.{key}")]
    return []


def _consume(value: Any) -> None:
    """Iterate what pydantic validates lazily (`Iterable` fields: messages, tools, parts)."""
    if isinstance(value, dict):
        for item in value.values():
            _consume(item)
    elif isinstance(value, (str, bytes)):
        return
    elif isinstance(value, (list, tuple, Iterator)) or (
        isinstance(value, Iterable) and not isinstance(value, (set, frozenset))
    ):
        for item in value:
            _consume(item)
