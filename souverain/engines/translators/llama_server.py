"""llama.cpp's `llama-server` (started with --jinja, its default now).

Translated: `max_completion_tokens` → `max_tokens`; `json_schema` → `{"type":
"json_object", "schema": ...}` (the form every llama-server version reads, turned into a
grammar); a named function in `tool_choice` → `required` with only that tool offered
(tool_choice is a string there); `reasoning_budget_tokens` passed under its own name;
`developer` → `system`. Refused: `n` > 1. Streams ask for usage.
"""

from __future__ import annotations

from typing import Any

from souverain.chat import ChatRequest
from souverain.engines.translators import common
from souverain.engines.translators.common import Target


class LlamaServerTranslator(common.OpenAIEmbeddings):
    flavor = "llama-server"

    def chat(self, request: ChatRequest, target: Target, *, stream: bool) -> dict[str, Any]:
        body = common.chat_body(request, target, stream=stream, message=common.system_message)
        common.token_limit(body, "max_tokens")
        common.put(body, "response_format", common.llama_response_format(request, target))
        common.put(body, "reasoning_budget_tokens", common.budget(request, target))
        common.gateway_side_prompts(request, target, body)
        return body
