"""Ollama's OpenAI-compatible API (/v1).

Ollama offers tools to the model and lets it decide: `tool_choice` is not read. So
`tool_choice: "none"` is sent as no tools at all, `auto` as the tools alone, and
`required` or a named function are refused. Translated: `max_completion_tokens` →
`max_tokens`; `developer` → `system`. `response_format` json_object and json_schema are
passed in OpenAI's form (Ollama's structured outputs). Refused: `n` > 1, logprobs,
reasoning budgets. Streams ask for usage.
"""

from __future__ import annotations

from typing import Any

from souverain.chat import ChatRequest
from souverain.engines.translators import common
from souverain.engines.translators.common import Target


class OllamaTranslator(common.OpenAIEmbeddings):
    flavor = "ollama"

    def chat(self, request: ChatRequest, target: Target, *, stream: bool) -> dict[str, Any]:
        body = common.chat_body(request, target, stream=stream, message=common.system_message)
        body.pop("tool_choice", None)  # only `auto` gets here, which is what Ollama does
        common.token_limit(body, "max_tokens")
        common.put(body, "response_format", common.openai_response_format(request, target))
        common.budget(request, target)
        common.gateway_side_prompts(request, target, body)
        return body
