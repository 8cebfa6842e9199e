"""What each kind of upstream can do: the capability table (docs/dialects.md).

One row per flavor, from each server's own documentation and request schema (sources in
docs/dialects.md). A configured model may differ from its flavor's row (`capabilities:` in
its configuration, e.g. a llama-cpp-python server started with a chat format that parses
free tool choice); `resolve` applies that. The translators read the result to decide,
before anything is sent, whether a request is translated or refused (`refuse`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from souverain.config.schema import Flavor, OpenAIHTTPModel, ToolChoiceMode
from souverain.errors import Unsupported

Capability = Literal[
    "tools",
    "tool_choice",
    "json_object",
    "json_schema",
    "reasoning_effort",
    "reasoning_budget",
    "logprobs",
    "n",
    "embeddings",
    "stream_usage",
]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an upstream model honours. Modes of `tool_choice` it lacks may still be
    translated (`translators.common.tool_choice`); other missing capabilities are refused."""

    tools: bool
    tool_choice: frozenset[ToolChoiceMode]
    json_object: bool
    json_schema: bool
    reasoning_effort: bool
    reasoning_budget: bool
    logprobs: bool
    n: bool
    embeddings: bool
    stream_usage: bool


_ALL_MODES: frozenset[ToolChoiceMode] = frozenset({"auto", "none", "required", "named"})

# OpenAI's API (and Azure OpenAI): the reference every other row is measured against, so
# each other row below names only where its flavor differs from it.
_OPENAI = Capabilities(
    tools=True,
    tool_choice=_ALL_MODES,
    json_object=True,
    json_schema=True,
    reasoning_effort=True,
    reasoning_budget=False,
    logprobs=True,
    n=True,
    embeddings=True,
    stream_usage=True,
)

TABLE: dict[Flavor, Capabilities] = {
    "openai": _OPENAI,
    # vLLM's OpenAI server: `auto` needs --enable-auto-tool-choice (on in its tool recipes).
    "vllm": replace(_OPENAI, reasoning_budget=True),
    # Mistral's API: `required` is spelt `any`; no logprobs; usage always ends a stream.
    "mistral": replace(_OPENAI, logprobs=False),
    # llama.cpp's llama-server (--jinja): tool_choice is a string only (no named function);
    # one completion per request.
    "llama-server": replace(
        _OPENAI, tool_choice=frozenset({"auto", "none", "required"}), reasoning_budget=True, n=False
    ),
    # llama-cpp-python's server (llama_cpp.server): with a model's own chat template a tool
    # call is produced only when tool_choice names the function; json_schema only as
    # json_object + schema; no reasoning controls, n ignored, no usage in streams.
    "llama-cpp-python": replace(
        _OPENAI, tool_choice=frozenset({"none", "named"}), reasoning_effort=False, n=False, stream_usage=False
    ),
    # Hugging Face TGI's Messages API: grammar through response_format {type, value};
    # embeddings are a separate server (TEI); one choice per request.
    "tgi": replace(_OPENAI, reasoning_effort=False, n=False, embeddings=False),
    # Ollama's /v1: tools are offered, tool_choice is not read (the model decides).
    "ollama": replace(_OPENAI, tool_choice=frozenset({"auto"}), logprobs=False, n=False),
}


def resolve(config: OpenAIHTTPModel) -> Capabilities:
    """The flavor's row, with the model's `tools`, `embeddings` and `capabilities` applied."""
    caps = replace(TABLE[config.flavor], tools=config.tools, embeddings=config.embeddings)
    over = config.capabilities
    if over is None:
        return caps
    if over.tool_choice is not None:
        caps = replace(caps, tool_choice=frozenset(over.tool_choice))
    for name in ("json_object", "json_schema", "reasoning_effort", "reasoning_budget", "logprobs", "n", "stream_usage"):
        value = getattr(over, name)
        if value is not None:
            caps = replace(caps, **{name: value})
    return caps


_CODES: dict[Capability, str] = {
    "tools": "tools_unsupported",
    "tool_choice": "unsupported_tool_choice",
    "json_object": "response_format_unsupported",
    "json_schema": "response_format_unsupported",
    "reasoning_effort": "reasoning_unsupported",
    "reasoning_budget": "reasoning_budget_unsupported",
    "logprobs": "logprobs_unsupported",
    "n": "n_unsupported",
    "embeddings": "embeddings_unsupported",
    "stream_usage": "stream_usage_unsupported",
}


def refuse(model: str, flavor: str, capability: Capability, param: str, what: str, hint: str = "") -> Unsupported:
    """The refusal for `what` (the request's wording of the capability) on `model`."""
    message = f"model {model!r} cannot honour {what}: its upstream ({flavor}) does not support it"
    return Unsupported(
        message + (f"; {hint}" if hint else ""), capability=capability, param=param, code=_CODES[capability]
    )


__all__ = ["TABLE", "Capabilities", "Capability", "Unsupported", "refuse", "resolve"]
