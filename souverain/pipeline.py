"""The request spine (DESIGN.md), and nothing else.

    authenticate → parse → classify → decide → transform → dispatch → restore
    → account → record → respond

The dialect layer (`api/`) does `parse` and `respond`; the stages here, in order:
- authenticate: API key → principal (tenant, key id, scopes, models allowed).
- classify: not yet (privacy scanner).
- decide: the public model name → the engine that serves it, if this caller may use it.
- dispatch: the engine call, streamed or not.
- account: tokens and latency into metrics.
- record: one ledger entry per authenticated request, durable before the response
  completes; if the ledger cannot take it, the answer is withheld (503).

`Facts` travels with the request and collects what each stage learns; `record` writes it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from souverain.auth import KeyStore, Principal
from souverain.chat import ChatRequest
from souverain.engines import Engine
from souverain.errors import Forbidden, GatewayError, InvalidRequest, LedgerUnavailable, NotFound
from souverain.ledger import Entry, Ledger
from souverain.metrics import Metrics

log = logging.getLogger("souverain.pipeline")


@dataclass(slots=True)
class Facts:
    """What the spine has learnt about one request: the ledger entry, before it is one."""

    endpoint: str
    principal: Principal | None = None
    model: str = ""
    route: str = ""
    route_profile: str = ""
    data_class: str = "public"
    found: dict[str, int] = field(default_factory=dict)
    decision: str = "allowed"
    reasons: list[str] = field(default_factory=list)
    status: int = 200
    usage: Mapping[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def failed(self, exc: GatewayError) -> None:
        self.status = exc.status
        self.decision = "refused" if exc.status < 500 else "failed"
        self.reasons = [f"{exc.code or exc.type}: {exc.message}"[:300]]


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a request goes. Later issues add the route, data class and reasons."""

    model: str
    engine: Engine


class Pipeline:
    def __init__(
        self, keys: KeyStore, engines: Mapping[str, Engine], metrics: Metrics, ledger: Ledger | None = None
    ) -> None:
        self.keys = keys
        self.engines = engines
        self.metrics = metrics
        self.ledger = ledger

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

    # -- record ----------------------------------------------------------------------
    async def record(self, facts: Facts, *, request: bytes | None, response: bytes | None) -> int | None:
        """Append the request's ledger entry and return its index once durable.

        Requests that never authenticated have no tenant and are not recorded. A ledger
        failure raises `LedgerUnavailable`: the caller withholds the answer (fail closed).
        """
        if self.ledger is None or facts.principal is None:
            return None
        usage = facts.usage or {}
        entry = Entry(
            tenant=facts.principal.tenant,
            key_id=facts.principal.key_id,
            route=facts.route or facts.model,
            route_profile=facts.route_profile,
            model=facts.model,
            data_class=facts.data_class,  # type: ignore[arg-type]
            found=facts.found,
            decision=facts.decision,
            reasons=facts.reasons,
            status=facts.status,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_ms=int((time.perf_counter() - facts.started) * 1000),
        )
        try:
            return await self.ledger.append(entry, request=request, response=response)
        except Exception as exc:
            log.error("ledger append failed for %s: %s", facts.endpoint, exc)
            raise LedgerUnavailable(
                "The request ledger could not record this request, so the answer is withheld; retry later."
            ) from None
