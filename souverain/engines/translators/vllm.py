"""vLLM's OpenAI-compatible server.

Translated: `max_tokens` → `max_completion_tokens` (the former is deprecated there);
`reasoning_budget_tokens` → `thinking_token_budget`; `developer` → `system` (chat
templates know `system`). `response_format` (json_object, json_schema) is vLLM's own
structured-output input, passed in OpenAI's form. vLLM ignores fields it does not know
(logged at DEBUG only), so nothing else is sent: Mistral's `safe_prompt` and
`prompt_mode` are done by the gateway. Streams ask for usage.
"""

from __future__ import annotations

from typing import Any

from souverain.chat import ChatRequest
from souverain.engines.translators import common
from souverain.engines.translators.common import Target


class VLLMTranslator(common.OpenAIEmbeddings):
    flavor = "vllm"

    def chat(self, request: ChatRequest, target: Target, *, stream: bool) -> dict[str, Any]:
        body = common.chat_body(request, target, stream=stream, message=common.system_message)
        common.token_limit(body, "max_completion_tokens")
        common.put(body, "response_format", common.openai_response_format(request, target))
        common.put(body, "thinking_token_budget", common.budget(request, target))
        common.gateway_side_prompts(request, target, body)
        return body
