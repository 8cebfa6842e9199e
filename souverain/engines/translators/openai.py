"""OpenAI's API (and Azure OpenAI, and servers that follow it closely): the reference.

Passed as they are: every field OpenAI's request schema has; `developer` messages. Done
by the gateway: Mistral's `safe_prompt` and `prompt_mode` (system messages). Refused:
`reasoning_budget_tokens` (OpenAI has no per-request budget). Streams ask for usage.
"""

from __future__ import annotations

from typing import Any

from souverain.chat import ChatRequest
from souverain.engines.translators import common
from souverain.engines.translators.common import Target


class OpenAITranslator(common.OpenAIEmbeddings):
    flavor = "openai"

    def chat(self, request: ChatRequest, target: Target, *, stream: bool) -> dict[str, Any]:
        body = common.chat_body(request, target, stream=stream)
        common.put(body, "response_format", common.openai_response_format(request, target))
        common.budget(request, target)  # refused: the row has no budget
        common.gateway_side_prompts(request, target, body)
        return body
