"""What every translator does the same way: the request written out field by field in
OpenAI's names, and the capability checks that translate or refuse.

The internal structs (`souverain/chat.py`) are encoded with `omit_defaults`, which drops
any field equal to its default: a tool's `type: "function"`, a tool call's `type` and its
`arguments: "{}"`, a JSON schema's `name: "response"`, `stream: false`. So no body is
made by encoding them: `chat_body` writes every field an upstream needs explicitly, and
only the fields it names (Souverain's own, such as `data_class`, never leave).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from souverain.chat import ChatRequest, Message, ResponseFormat, Tool, ToolCall
from souverain.config.schema import Flavor, ToolChoiceMode
from souverain.engines.reasoning import SAFE_PROMPT
from souverain.engines.translators.capabilities import Capabilities, Capability, refuse
from souverain.errors import InvalidRequest, Unsupported


@dataclass(frozen=True, slots=True)
class Target:
    """The upstream model a body is for."""

    name: str  # the model's name at the gateway (what callers and error messages say)
    upstream_model: str  # the name the upstream knows it by
    flavor: Flavor
    capabilities: Capabilities
    reasoning_system_prompt: str | None = None

    def refuse(self, capability: Capability, param: str, what: str, hint: str = "") -> Unsupported:
        return refuse(self.name, self.flavor, capability, param, what, hint)


# Sampling and limits fields copied as they are when set (OpenAI's names).
PLAIN = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "parallel_tool_calls",
    "user",
)


def chat_body(
    request: ChatRequest, target: Target, *, stream: bool, message: Callable[[Message], dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The OpenAI-shaped body for `request`, every capability checked: a request the
    upstream cannot honour raises `Unsupported` here, before anything is sent.

    Left for the flavor's translator: `response_format` (`json_schema(request)` gives the
    schema), `reasoning_budget_tokens` (`budget(request, target)` checks it), and renames."""
    caps = target.capabilities
    write = message or openai_message
    body: dict[str, Any] = {
        "model": target.upstream_model,
        "messages": [write(m) for m in request.messages],
        "stream": stream,
    }
    for name in PLAIN:
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.n not in (None, 1):
        if not caps.n:
            raise target.refuse("n", "n", f"n={request.n}", "ask for one choice per request")
        body["n"] = request.n
    if request.logprobs or request.top_logprobs is not None:
        if not caps.logprobs:
            raise target.refuse("logprobs", "logprobs", "logprobs")
        if request.logprobs is not None:
            body["logprobs"] = request.logprobs
        if request.top_logprobs is not None:
            body["top_logprobs"] = request.top_logprobs
    if request.reasoning_effort is not None:
        if not caps.reasoning_effort:
            raise target.refuse(
                "reasoning_effort", "reasoning_effort", f"reasoning_effort {request.reasoning_effort!r}"
            )
        body["reasoning_effort"] = request.reasoning_effort
    if stream and caps.stream_usage:
        body["stream_options"] = {"include_usage": True}
    tools, choice = tool_choice(request, target)
    if tools is not None:
        body["tools"] = [tool(t) for t in tools]
    if choice is not None:
        body["tool_choice"] = choice
    if body.get("tools") is None:
        body.pop("parallel_tool_calls", None)
    return body


def tool(t: Tool) -> dict[str, Any]:
    """A tool as OpenAI's schema has it: `type` always, `parameters` always (servers
    that build a grammar from it need one)."""
    fn: dict[str, Any] = {"name": t.function.name, "parameters": t.function.parameters}
    if t.function.description is not None:
        fn["description"] = t.function.description
    if t.function.strict is not None:
        fn["strict"] = t.function.strict
    return {"type": "function", "function": fn}


def tool_choice(request: ChatRequest, target: Target) -> tuple[list[Tool] | None, str | dict[str, Any] | None]:
    """The tools and tool_choice to send: the request's, or an equivalent the upstream
    honours, or `Unsupported`.

    Equivalences: `none` = offering no tool (for upstreams that cannot be told `none`);
    `required` with a single tool = naming it; naming a function = `required` with only
    that tool offered."""
    caps = target.capabilities
    tools = request.tools
    if not tools:
        if request.tool_choice not in (None, "none", "auto"):  # these two say nothing without tools
            raise InvalidRequest("tool_choice 'required' or a named function needs tools", param="tool_choice")
        return None, None
    if not caps.tools:
        raise target.refuse("tools", "tools", "tools", "send the request without tools")
    named = request.named_tool()
    mode = _mode(request.tool_choice, named)
    if mode in caps.tool_choice:
        # `auto` is written out when the caller left it implicit: OpenAI's default with
        # tools, not every server's (llama-cpp-python's chatml-function-calling then
        # answers without tools; vLLM's field defaults to none).
        return list(tools), {"type": "function", "function": {"name": named}} if named else mode
    if mode == "none":
        return None, None
    if mode == "required" and "named" in caps.tool_choice and len(tools) == 1:
        return list(tools), {"type": "function", "function": {"name": tools[0].function.name}}
    if mode == "named" and "required" in caps.tool_choice:
        return [t for t in tools if t.function.name == named], "required"
    what = (
        "tool_choice 'auto' (the default when tools are given)"
        if request.tool_choice is None
        else (f"tool_choice {'naming a function' if mode == 'named' else repr(mode)}")
    )
    honoured = sorted(caps.tool_choice)
    hint = f"it honours tool_choice {', '.join(repr(m) for m in honoured)}" if honoured else ""
    if mode == "required" and "named" in caps.tool_choice:
        hint += " ('required' is translated only when a single tool is offered)"
    raise target.refuse("tool_choice", "tool_choice", what, hint)


def _mode(choice: object, named: str | None) -> ToolChoiceMode:
    if named is not None:
        return "named"
    if choice is None or choice == "auto":
        return "auto"
    if choice in ("required", "any"):  # `any` is normalised by the dialect parser already
        return "required"
    return "none"


def json_schema(request: ChatRequest, target: Target) -> tuple[str, dict[str, Any] | None] | None:
    """The response format asked for: None (text), or ("json_object" | "json_schema", the
    schema or None), after checking the upstream can produce it."""
    rf: ResponseFormat | None = request.response_format
    if rf is None or rf.type == "text":
        return None
    schema = rf.target_schema()
    kind: Literal["json_object", "json_schema"] = "json_schema" if schema is not None else "json_object"
    if not getattr(target.capabilities, kind):
        raise target.refuse(
            kind,
            "response_format",
            f"response_format {kind}",
            "ask for json_object" if kind == "json_schema" and target.capabilities.json_object else "",
        )
    return kind, schema


def openai_response_format(request: ChatRequest, target: Target) -> dict[str, Any] | None:
    """The response format in OpenAI's own form (with its required `json_schema.name`),
    or None for text. llama.cpp's `{"type": "json_object", "schema": ...}` becomes
    OpenAI's json_schema: the same constraint, in the form OpenAI's schema has."""
    fmt = json_schema(request, target)
    if fmt is None:
        return None
    kind, schema = fmt
    if kind == "json_object":
        return {"type": "json_object"}
    js = request.response_format.json_schema if request.response_format else None
    out: dict[str, Any] = {"name": js.name if js else "response", "schema": schema}
    if js is not None and js.description is not None:
        out["description"] = js.description
    if js is not None and js.strict is not None:
        out["strict"] = js.strict
    return {"type": "json_schema", "json_schema": out}


def llama_response_format(request: ChatRequest, target: Target) -> dict[str, Any] | None:
    """The response format in llama.cpp's form, `{"type": "json_object", "schema": ...}`
    (the form every llama-server and llama-cpp-python version reads, turned into a
    grammar), or None for text."""
    fmt = json_schema(request, target)
    if fmt is None:
        return None
    return {"type": "json_object", **({"schema": fmt[1]} if fmt[1] is not None else {})}


def put(body: dict[str, Any], field: str, value: object) -> None:
    """Set `field` only when there is a value: an absent field is the upstream's default."""
    if value is not None:
        body[field] = value


def budget(request: ChatRequest, target: Target) -> int | None:
    """The thinking budget to send, if the request has one and the upstream takes it."""
    if request.reasoning_budget_tokens is None:
        return None
    if not target.capabilities.reasoning_budget:
        raise target.refuse(
            "reasoning_budget",
            "reasoning_budget_tokens",
            "a per-request reasoning budget",
            "use reasoning_effort" if target.capabilities.reasoning_effort else "",
        )
    return request.reasoning_budget_tokens


def openai_message(m: Message, *, keep_thinking: bool = False) -> dict[str, Any]:
    """A message as OpenAI's request schema has it, for each role. Mistral's `thinking`
    parts of past assistant turns are left out (`keep_thinking` for Mistral's API, which
    has them): other servers have no such part, and a past turn's reasoning is not fed
    back to a model."""
    out: dict[str, Any] = {"role": m.role}
    if m.role == "assistant":
        content = m.content
        if isinstance(content, list) and not keep_thinking:
            content = [part for part in content if part.get("type") != "thinking"] or None
        if content is not None:
            out["content"] = content
        if m.tool_calls:
            out["tool_calls"] = [tool_call(c, n) for n, c in enumerate(m.tool_calls)]
    else:
        out["content"] = m.content if m.content is not None else ""
    if m.role == "tool":
        if m.tool_call_id is None:
            raise InvalidRequest("a tool message needs tool_call_id", param="messages")
        out["tool_call_id"] = m.tool_call_id
    elif m.name is not None:
        out["name"] = m.name
    return out


def tool_call(call: ToolCall, n: int) -> dict[str, Any]:
    """A past tool call: `type` and `id` always, `arguments` as a JSON string (Mistral's
    callers may send an object)."""
    args = call.function.arguments
    return {
        "id": call.id if call.id is not None else f"call_{n}",
        "type": "function",
        "function": {"name": call.function.name, "arguments": args if isinstance(args, str) else json.dumps(args)},
    }


def as_text(parts: list[dict[str, Any]]) -> str:
    """Content parts as one string, for servers that take no parts there (text parts
    only: another kind is a 400, as on the embedded engine)."""
    return Message(role="user", content=parts).text()


def gateway_side_prompts(request: ChatRequest, target: Target, body: dict[str, Any]) -> None:
    """Do what Mistral's API does server-side for upstreams that do not: `safe_prompt`
    and `prompt_mode: "reasoning"` become system messages placed first."""
    prefix: list[dict[str, Any]] = []
    if request.safe_prompt:
        prefix.append({"role": "system", "content": SAFE_PROMPT})
    if request.prompt_mode == "reasoning":
        if not target.reasoning_system_prompt:
            raise InvalidRequest(
                f"prompt_mode 'reasoning' needs `reasoning_system_prompt` configured for model {target.name!r}",
                param="prompt_mode",
                code="reasoning_unsupported",
            )
        prefix.append({"role": "system", "content": target.reasoning_system_prompt})
    if prefix:
        body["messages"] = prefix + body["messages"]


def token_limit(body: dict[str, Any], field: str) -> None:
    """The output cap under the one name the upstream reads: `max_completion_tokens` if
    the request gave it, else `max_tokens` (ChatRequest.token_limit)."""
    limit = body.pop("max_completion_tokens", None) or body.pop("max_tokens", None)
    body.pop("max_tokens", None)
    if limit is not None:
        body[field] = limit


def system_message(m: Message) -> dict[str, Any]:
    """A message in OpenAI's form, with `developer` written as `system`: OpenAI's
    `developer` role is its newer name for `system`; other servers' chat templates know
    only `system`."""
    message = openai_message(m)
    if message.get("role") == "developer":
        message["role"] = "system"
    return message


def embed_body(texts: list[str], target: Target) -> dict[str, Any]:
    if not target.capabilities.embeddings:
        raise target.refuse("embeddings", "model", "embeddings", "set `embeddings: true` for it if its server has them")
    return {"model": target.upstream_model, "input": texts}


class OpenAIEmbeddings:
    """The `embed` half of a translator: every flavor takes OpenAI's embeddings body."""

    def embed(self, texts: list[str], target: Target) -> dict[str, Any]:
        return embed_body(texts, target)
