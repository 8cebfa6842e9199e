"""The contract between the pipeline and an inference engine.

An engine serves one configured model. Sending is two steps, so that nothing leaves
unclassified (`souverain/outbound.py`): `outbound(request)` builds the exact payload the
engine would send for an internal `ChatRequest` (OpenAI field names, already validated;
translation happens here), the pipeline seals it (classifies those bytes and clears them
for the route), and `chat`/`stream`/`embed` send the `Sealed` bytes as they are. What
comes back is OpenAI-shaped dicts: a whole `chat.completion`, or `chat.completion.chunk`s
whose last one carries `usage`. Dialect renderers work from those shapes, so an engine
never knows which dialect the caller spoke.

Rules every engine keeps:
- It sends nothing but `Sealed.body`: no field added, no byte re-encoded; and besides
  its own headers (content type, the upstream's key), only `Sealed.headers`.
- It raises only `GatewayError`s (unsupported field: `InvalidRequest`; busy: `Overloaded`;
  upstream trouble: `UpstreamError`/`UpstreamTimeout`; not loaded: `EngineUnavailable`).
- Cancellation is asyncio cancellation: when the caller's task is cancelled (client gone)
  or a stream is closed early, generation stops and its slot is freed.
- `usage` is always present, in the response and in the final stream chunk.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Protocol

from souverain.chat import ChatRequest
from souverain.errors import EngineUnavailable
from souverain.outbound import Outbound, Sealed


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

    def outbound(self, request: ChatRequest, *, stream: bool) -> Outbound:
        """The exact payload this engine would send for `request` (raises `InvalidRequest`
        for what it cannot serve, before anything is sent)."""

    def outbound_embed(self, texts: list[str]) -> Outbound:
        """The exact payload this engine would send to embed `texts`."""

    async def chat(self, sealed: Sealed) -> dict[str, Any]:
        """A complete OpenAI `chat.completion` dict."""

    def stream(self, sealed: Sealed) -> AsyncGenerator[dict[str, Any], None]:
        """OpenAI `chat.completion.chunk` dicts; the last carries `usage`."""

    async def embed(self, sealed: Sealed) -> tuple[list[list[float]], int]:
        """One vector per text, and the number of input tokens."""

    async def probe(self) -> bool:
        """A cheap health check: can this engine take a request now?"""


class LocalState:
    """The `state` and `error` of an engine that runs its model itself (embedded, or in
    its worker process), which its own lifecycle sets, and the refusal while not ready."""

    _state: str
    _error: str | None

    @property
    def state(self) -> str:
        return self._state

    @property
    def error(self) -> str | None:
        return self._error

    def _refuse_unless_ready(self, model: str, retry_after_s: int) -> None:
        """A 503 naming the state (and why, when known), with `Retry-After`, unless ready."""
        if self._state != "ready":
            detail = f": {self._error}" if self._error else "; retry shortly"
            raise EngineUnavailable(
                f"model {model!r} is {self._state}{detail}",
                headers={"Retry-After": str(retry_after_s)},
            )


class Load:
    """What an engine counts of its own work, for `queue_depth` and `generated_tokens`:
    requests admitted and not yet finished, and completion tokens generated since start."""

    _inflight: int = 0
    _generated: int = 0

    @property
    def queue_depth(self) -> int:
        return self._inflight

    @property
    def generated_tokens(self) -> int:
        return self._generated
