"""The request spine (DESIGN.md), and nothing else.

    authenticate → parse → classify → decide → transform → dispatch → restore
    → account → record → respond

This foundation implements the stages that exist today; the dialect layer (`api/`) does
`parse` and `respond`, and the later stages plug in here, in this order:
- authenticate: API key → principal (tenant, key id, scopes, models allowed).
- classify: not yet (privacy scanner).
- decide: the public model name → the engine that serves it, if this caller may use it.
- dispatch: the engine call, streamed or not.
- account: tokens and latency into metrics.
- record: not yet (ledger).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from souverain.auth import KeyStore, Principal
from souverain.chat import ChatRequest
from souverain.engines import Engine
from souverain.errors import Forbidden, InvalidRequest, NotFound
from souverain.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a request goes. Later issues add the route, data class and reasons."""

    model: str
    engine: Engine


class Pipeline:
    def __init__(self, keys: KeyStore, engines: Mapping[str, Engine], metrics: Metrics) -> None:
        self.keys = keys
        self.engines = engines
        self.metrics = metrics

    # -- authenticate ----------------------------------------------------------------
    def authenticate(self, authorization: str | None, scope: str = "inference") -> Principal:
        principal = self.keys.authenticate(authorization)
        if scope not in principal.scopes and "admin" not in principal.scopes:
            raise Forbidden(f"this API key lacks the {scope!r} scope", code="insufficient_scope")
        return principal

    # -- decide ----------------------------------------------------------------------
    def visible_models(self, principal: Principal) -> list[str]:
        """Models this caller may use: the only ones /v1/models lists."""
        return [name for name in self.engines if principal.may_use(name)]

    def decide(self, principal: Principal, model: str) -> Decision:
        engine = self.engines.get(model)
        if engine is None or not principal.may_use(model):
            # The same answer for unknown and forbidden, so a key cannot probe for names.
            raise NotFound(f"The model {model!r} does not exist or you do not have access to it.", param="model")
        return Decision(model, engine)

    # -- dispatch + account ----------------------------------------------------------
    async def chat(self, principal: Principal, request: ChatRequest) -> tuple[Decision, dict[str, Any]]:
        decision = self.decide(principal, request.model)
        result = await decision.engine.chat(request)
        self.metrics.count_tokens(decision.model, result.get("usage"))
        return decision, result

    async def chat_stream(
        self, principal: Principal, request: ChatRequest
    ) -> tuple[Decision, AsyncIterator[dict[str, Any]]]:
        """Start a stream; admission errors (busy, unsupported field) raise here, before
        any byte is sent, so they keep their HTTP status."""
        decision = self.decide(principal, request.model)
        chunks = decision.engine.stream(request)
        first = await anext(chunks)
        return decision, self._account_stream(decision, first, chunks)

    async def _account_stream(
        self, decision: Decision, first: dict[str, Any], chunks: AsyncIterator[dict[str, Any]]
    ) -> AsyncIterator[dict[str, Any]]:
        started = time.perf_counter()
        seen_content = False
        try:
            yield first
            async for chunk in chunks:
                if not seen_content and chunk.get("choices"):
                    delta = chunk["choices"][0].get("delta") or {}
                    if delta.get("content") or delta.get("tool_calls"):
                        seen_content = True
                        self.metrics.ttft.labels(decision.model).observe(time.perf_counter() - started)
                if chunk.get("usage"):
                    self.metrics.count_tokens(decision.model, chunk["usage"])
                yield chunk
        finally:
            await chunks.aclose()

    async def embed(self, principal: Principal, model: str, texts: list[str]) -> tuple[list[list[float]], int]:
        decision = self.decide(principal, model)
        if not decision.engine.supports_embeddings:
            raise InvalidRequest(f"model {model!r} does not serve embeddings", param="model")
        vectors, tokens = await decision.engine.embed(texts)
        self.metrics.count_tokens(model, {"prompt_tokens": tokens})
        return vectors, tokens
