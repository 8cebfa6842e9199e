"""Hugging Face Text Generation Inference, Messages API (/v1/chat/completions).

Translated: `json_object` and `json_schema` → TGI's grammar form `{"type": "json_object",
"value": <schema>}` (any JSON object when no schema is given); `max_completion_tokens` →
`max_tokens`; `developer` → `system`. Refused: `n` > 1, `reasoning_effort` and budgets;
embeddings (TGI does not serve them: Text Embeddings Inference does). Streams ask for
usage.
"""

from __future__ import annotations

from typing import Any

from souverain.chat import ChatRequest
from souverain.engines.translators import common
from souverain.engines.translators.common import Target


class TGITranslator(common.OpenAIEmbeddings):
    flavor = "tgi"

    def chat(self, request: ChatRequest, target: Target, *, stream: bool) -> dict[str, Any]:
        body = common.chat_body(request, target, stream=stream, message=common.system_message)
        common.token_limit(body, "max_tokens")
        fmt = common.json_schema(request, target)
        if fmt is not None:
            body["response_format"] = {
                "type": "json_object",
                "value": fmt[1] if fmt[1] is not None else {"type": "object"},
            }
        common.budget(request, target)
        common.gateway_side_prompts(request, target, body)
        return body
