"""Mistral's API (https://api.mistral.ai/v1, and servers that mimic it).

Mistral's request schema rejects fields it does not know, so messages are written in its
own shape: system and user messages carry `content` only, assistant messages `content`
and `tool_calls`, tool messages `content`, `tool_call_id` and `name`.

Translated: `seed` → `random_seed`; `tool_choice: "required"` → `"any"`;
`max_completion_tokens` → `max_tokens`; `developer` → `system`; tool-call ids that are
not nine letters and digits (Mistral refuses others) → nine derived from them, the same
id always to the same replacement. Passed: `safe_prompt`, `prompt_mode`,
`reasoning_effort`, `response_format` (OpenAI's form is Mistral's). Dropped: `user`,
`stream_options` (Mistral always ends a stream with usage). Refused: logprobs,
`reasoning_budget_tokens`.
"""

from __future__ import annotations

import hashlib
import string
from typing import Any

from souverain.chat import ChatRequest, Message
from souverain.engines.translators import common
from souverain.engines.translators.common import Target

_ALNUM = string.ascii_letters + string.digits


def nine_char_id(old: str | None) -> str:
    """A Mistral-valid tool-call id: kept when already valid, else derived from the old one
    (so the same id maps to the same replacement in every chunk, turn and request)."""
    if old and len(old) == 9 and old.isalnum() and old.isascii():
        return old
    digest = int.from_bytes(hashlib.sha256((old or "").encode()).digest()[:8], "big")
    out = []
    for _ in range(9):
        digest, r = divmod(digest, 62)
        out.append(_ALNUM[r])
    return "".join(out)


def _message(m: Message) -> dict[str, Any]:
    full = common.openai_message(m, keep_thinking=True)
    role = "system" if m.role == "developer" else m.role
    out: dict[str, Any] = {"role": role}
    if "content" in full:
        out["content"] = full["content"]
    if role == "assistant" and "tool_calls" in full:
        out["tool_calls"] = [{**call, "id": nine_char_id(call["id"])} for call in full["tool_calls"]]
    if role == "tool":
        out["tool_call_id"] = nine_char_id(m.tool_call_id)
        if m.name is not None:
            out["name"] = m.name
    return out


class MistralTranslator(common.OpenAIEmbeddings):
    flavor = "mistral"

    def chat(self, request: ChatRequest, target: Target, *, stream: bool) -> dict[str, Any]:
        body = common.chat_body(request, target, stream=stream, message=_message)
        body.pop("stream_options", None)
        body.pop("user", None)
        common.token_limit(body, "max_tokens")
        if "seed" in body:
            body["random_seed"] = body.pop("seed")
        if body.get("tool_choice") == "required":
            body["tool_choice"] = "any"
        common.put(body, "response_format", common.openai_response_format(request, target))
        common.budget(request, target)
        if request.safe_prompt:
            body["safe_prompt"] = True
        if request.prompt_mode is not None:
            body["prompt_mode"] = request.prompt_mode
        return body
