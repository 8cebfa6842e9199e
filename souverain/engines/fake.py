"""A test double: an engine that answers from a function, in this process.

    engine = FakeEngine()                                   # answers "ok"
    engine = FakeEngine(lambda operation, payload: ...)     # like httpx.MockTransport(handler)

It builds its payload as an OpenAI-compatible HTTP engine does (the internal request as
builtins, `{"input": texts}` for embeddings), so the spine's build → seal → send runs for
it as for a real engine, and it keeps every body it is sent (`sent`, the sealed bytes as
they are). The handler gets the operation (`chat`, `stream`, `embed`) and the decoded
payload and returns the answer: a `chat.completion` dict (streamed as chunks of its
content when the operation is `stream`), a list of vectors for `embed`, or raises a
`GatewayError` to play a failing route. It may be a coroutine function (to be slow).

For in-process tests of the spine (`httpx.ASGITransport`); the real engines are tested
against real servers and the real llama.cpp worker.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncGenerator, Callable
from typing import Any

import msgspec

from souverain.chat import ChatRequest
from souverain.engines.base import Load
from souverain.outbound import Operation, Outbound, Sealed

Handler = Callable[[Operation, Any], Any]


def answer(text: str = "ok") -> dict[str, Any]:
    """A `chat.completion` with `text` as its content."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def _default(operation: Operation, payload: Any) -> Any:
    if operation == "embed":
        return [[0.5, 0.25, 0.125] for _ in payload["input"]]
    return answer()


class FakeEngine(Load):
    kind = "fake"

    def __init__(self, handler: Handler | None = None, *, embeddings: bool = True) -> None:
        self.handler = handler or _default
        self.sent: list[bytes] = []
        self._embeddings = embeddings
        self._inflight = 0

    # -- the Engine protocol ---------------------------------------------------------
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    state = "ready"
    error: str | None = None
    ready_since = 0.0
    restarts = 0

    @property
    def supports_embeddings(self) -> bool:
        return self._embeddings

    async def probe(self) -> bool:
        return True

    def outbound(self, request: ChatRequest, *, stream: bool) -> Outbound:
        return Outbound("stream" if stream else "chat", msgspec.to_builtins(request))

    def outbound_embed(self, texts: list[str]) -> Outbound:
        return Outbound("embed", {"input": texts})

    async def chat(self, sealed: Sealed) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("chat", sealed)
        return result

    async def stream(self, sealed: Sealed) -> AsyncGenerator[dict[str, Any], None]:
        result = await self._call("stream", sealed)
        text = result["choices"][0]["message"].get("content") or ""
        for i in range(0, len(text), 3):
            yield {
                "id": result["id"],
                "object": "chat.completion.chunk",
                "model": "fake",
                "choices": [{"index": 0, "delta": {"content": text[i : i + 3]}, "finish_reason": None}],
            }
        yield {
            "id": result["id"],
            "object": "chat.completion.chunk",
            "model": "fake",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": result["usage"],
        }

    async def embed(self, sealed: Sealed) -> tuple[list[list[float]], int]:
        vectors: list[list[float]] = await self._call("embed", sealed)
        return vectors, len(vectors)

    async def _call(self, operation: Operation, sealed: Sealed) -> Any:
        body = sealed.body_for(operation)
        self.sent.append(body)
        self._inflight += 1
        try:
            result = self.handler(operation, json.loads(body))
            if inspect.isawaitable(result):
                result = await result
            return result
        finally:
            self._inflight -= 1
