"""OpenAI `chat.completion.chunk` shapes, built and folded back into one completion.

Engines that generate token by token (the embedded engine, in its worker process) only
stream; a non-streamed request is the same stream folded by `assemble`, so both answers
come from one code path.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from typing import Any


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def chunk(
    cid: str,
    created: int,
    model: str,
    delta: dict[str, Any],
    *,
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    if usage is not None:
        out["usage"] = usage
    return out


async def assemble(chunks: AsyncIterator[dict[str, Any]], model: str) -> dict[str, Any]:
    """Fold a stream of chunks into one `chat.completion`."""
    text_parts: list[str] = []
    reasoning_parts: list[str] = []
    finish = "stop"
    usage: dict[str, int] = {}
    tool_calls = None
    async for item in chunks:
        choice = item["choices"][0] if item["choices"] else None
        if choice:
            delta = choice["delta"]
            if delta.get("content"):
                text_parts.append(delta["content"])
            if delta.get("reasoning_content"):
                reasoning_parts.append(delta["reasoning_content"])
            if delta.get("tool_calls"):
                tool_calls = [
                    {"id": c["id"], "type": "function", "function": c["function"]} for c in delta["tool_calls"]
                ]
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        if item.get("usage"):
            usage = item["usage"]
    message: dict[str, Any] = {"role": "assistant", "content": None if tool_calls else "".join(text_parts)}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning_parts:
        message["reasoning_content"] = "".join(reasoning_parts)
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": usage,
    }
