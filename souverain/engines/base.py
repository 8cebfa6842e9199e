"""The contract between the pipeline and an inference engine.

An engine serves one configured model. The pipeline hands it an internal `ChatRequest`
(OpenAI field names, already validated) and gets back OpenAI-shaped dicts: a whole
`chat.completion`, or `chat.completion.chunk`s whose last one carries `usage`. Dialect
renderers work from those shapes, so an engine never knows which dialect the caller spoke.

Rules every engine keeps:
- It raises only `GatewayError`s (unsupported field: `InvalidRequest`; busy: `Overloaded`;
  upstream trouble: `UpstreamError`/`UpstreamTimeout`; not loaded: `EngineUnavailable`).
- Cancellation is asyncio cancellation: when the caller's task is cancelled (client gone)
  or a stream is closed early, generation stops and its slot is freed.
- `usage` is always present, in the response and in the final stream chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from souverain.chat import ChatRequest


class Engine(Protocol):
    kind: str
    """Engine type name, as in the configuration (`llamacpp`, `openai_http`)."""

    async def start(self) -> None:
        """Begin loading; returns at once. `ready` turns true when loading completes."""

    async def close(self) -> None: ...

    @property
    def state(self) -> str:
        """`loading`, `ready`, `restarting` (after a crash) or `failed`."""

    @property
    def error(self) -> str | None:
        """Why the engine is not ready, in one line; None when there is nothing to say."""

    @property
    def ready_since(self) -> float:
        """`time.monotonic()` when the engine last became ready; 0 for engines whose
        readiness is judged per request (remote ones). Routing closes a circuit breaker
        opened before this moment: it judged a process that is gone."""

    @property
    def restarts(self) -> int:
        """Times the engine was restarted after a crash or hang (0 for remote engines)."""

    @property
    def queue_depth(self) -> int:
        """Requests admitted and not yet finished."""

    @property
    def generated_tokens(self) -> int:
        """Completion tokens generated since start, cancelled requests included."""

    @property
    def supports_embeddings(self) -> bool: ...

    async def chat(self, request: ChatRequest) -> dict[str, Any]:
        """A complete OpenAI `chat.completion` dict."""

    def stream(self, request: ChatRequest) -> AsyncIterator[dict[str, Any]]:
        """OpenAI `chat.completion.chunk` dicts; the last carries `usage`."""

    async def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """One vector per text, and the number of input tokens."""

    async def probe(self) -> bool:
        """A cheap health check: can this engine take a request now?"""
