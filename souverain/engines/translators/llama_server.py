"""llama.cpp's `llama-server` (started with --jinja, its default now).

Translated: `max_completion_tokens` → `max_tokens`; `json_schema` → `{"type":
"json_object", "schema": ...}` (the form every llama-server version reads, turned into a
grammar); a named function in `tool_choice` → `required` with only that tool offered
(tool_choice is a string there); `reasoning_budget_tokens` passed under its own name;
`developer` → `system`. Refused: `n` > 1. Streams ask for usage.
"""

from __future__ import annotations

from typing import Any

from souverain.chat import ChatRequest, Message
from souverain.engines.translators import common
from souverain.engines.translators.common import Target


def _message(m: Message) -> dict[str, Any]:
    return common.system_for_developer(common.openai_message(m))


class LlamaServerTranslator:
    flavor = "llama-server"

    def chat(self, request: ChatRequest, target: Target, *, stream: bool) -> dict[str, Any]:
        body = common.chat_body(request, target, stream=stream, message=_message)
        common.token_limit(body, "max_tokens")
        fmt = common.json_schema(request, target)
        if fmt is not None:
            body["response_format"] = {"type": "json_object", **({"schema": fmt[1]} if fmt[1] is not None else {})}
        budget = common.budget(request, target)
        if budget is not None:
            body["reasoning_budget_tokens"] = budget
        common.gateway_side_prompts(request, target, body)
        return body

    def embed(self, texts: list[str], target: Target) -> dict[str, Any]:
        return common.embed_body(texts, target)
