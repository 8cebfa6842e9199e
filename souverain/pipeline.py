"""The request spine (DESIGN.md), and nothing else.

    authenticate → parse → classify → decide → transform → dispatch → restore
    → account → record → respond

The dialect layer (`api/`) does `parse` and `respond`; the stages here, in order:
- authenticate: API key → principal (tenant, key id, scopes, models allowed).
- classify: the class is the highest of what the caller declares and what the privacy
  scanner finds (types and counts only), with the caller's tenant's scanner settings.
- decide: `routing.decide` picks a route allowed for that class, or refuses (fail closed).
- transform: pseudonymise, when the decision says so; the vault stays in this request.
- dispatch: the engine call, streamed or not, retried only on other allowed routes.
- restore: original values back into the answer, across stream chunk boundaries too.
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
from souverain.errors import (
    EngineUnavailable,
    Forbidden,
    GatewayError,
    InvalidRequest,
    LedgerUnavailable,
    NoRoute,
    NotFound,
    Overloaded,
    UpstreamError,
    UpstreamTimeout,
)
from souverain.ledger import Entry, Ledger
from souverain.ledger.entry import safe_ident
from souverain.metrics import Metrics
from souverain.privacy import Restorer, Scanner, Vault, pseudonymise
from souverain.routing.decide import Candidate, Choice, Refusal
from souverain.routing.policy import CLASSES
from souverain.routing.router import Router

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

    declared: str | None = None
    classified: bool = False
    """Whether `data_class` was computed (the request got as far as classify)."""

    def failed(self, exc: GatewayError) -> None:
        self.status = exc.status
        self.decision = "refused" if exc.status < 500 else "failed"
        # The code only: an error message may quote a value from the request, and the
        # ledger never holds request content. Routing refusals keep their route reasons.
        if not (isinstance(exc, NoRoute) and self.reasons):
            self.reasons = [exc.code or exc.type]


# Failures that say "this route is not working": counted against its breaker, and the
# next allowed route is tried. Other errors are the request's own and go to the caller.
ROUTE_FAILURES = (UpstreamError, UpstreamTimeout, EngineUnavailable)


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a request went: the public model, the deployment's engine, and why."""

    model: str
    engine: Engine
    route: str = ""
    data_class: str = "public"
    decision: str = "allowed"


class Pipeline:
    def __init__(
        self,
        keys: KeyStore,
        engines: Mapping[str, Engine],
        metrics: Metrics,
        router: Router,
        scanner: Scanner,
        ledger: Ledger | None = None,
        tenant_scanners: Mapping[str, Scanner] | None = None,
    ) -> None:
        self.keys = keys
        self.engines = engines
        self.metrics = metrics
        self.router = router
        self.scanner = scanner  # for tenants without settings of their own
        self.tenant_scanners = dict(tenant_scanners or {})
        self.ledger = ledger

    # -- authenticate ----------------------------------------------------------------
    def authenticate(self, authorization: str | None, scope: str = "inference") -> Principal:
        principal = self.keys.authenticate(authorization)
        if scope not in principal.scopes and "admin" not in principal.scopes:
            raise Forbidden(f"this API key lacks the {scope!r} scope", code="insufficient_scope")
        return principal

    def visible_models(self, principal: Principal) -> list[str]:
        """Models this caller may use over some route its policy allows."""
        return self.router.visible_models(principal)

    # -- classify ------------------------------------------------------------------------
    def scanner_for(self, principal: Principal) -> Scanner:
        """The scanner with the caller's tenant's settings (built at start: a lookup)."""
        return self.tenant_scanners.get(principal.tenant, self.scanner)

    def classify(self, scanner: Scanner, request: Any, declared: str | None, facts: Facts) -> list[Any]:
        """Set the request's class and counts on `facts`; return the findings."""
        if declared is not None and declared not in CLASSES:
            raise InvalidRequest(f"data class must be one of {', '.join(CLASSES)}", param="data_class")
        if isinstance(request, list):  # embedding inputs
            findings = [f for text in request for f in scanner.scan(text)]
        else:
            findings = scanner.scan_request(request)
        found = scanner.classify(findings)
        classes = [self.router.default_class, found.data_class.name.lower(), declared or "public"]
        facts.data_class = max(classes, key=CLASSES.index)
        facts.found = dict(found.counts)
        facts.declared = declared
        facts.classified = True
        return findings

    # -- decide ----------------------------------------------------------------------
    def decide(self, principal: Principal, model: str, facts: Facts, findings: list[Any]) -> Choice:
        # Pseudonymising helps only when the class comes from what the scanner found.
        pseudonymisable = bool(findings) and CLASSES.index(facts.declared or "public") < CLASSES.index("personal")
        # Engines still loading or failed to load are left to the breaker: trying one
        # raises EngineUnavailable at once, with its reason, and the next route is tried.
        ready_since = {name: engine.ready_since for name, engine in self.engines.items()}
        result = self.router.decide(principal, model, facts.data_class, pseudonymisable, ready_since)  # type: ignore[arg-type]
        if isinstance(result, Refusal) and result.status == 404:
            # The same answer for unknown and forbidden names, so a key cannot probe for them.
            raise NotFound(result.message, param="model")
        if isinstance(result, Refusal):
            facts.reasons = [f"{result.code}: {route}: {'; '.join(why)}"[:300] for route, why in result.excluded][:31]
            raise NoRoute(result.message, status=result.status, code=result.code)
        facts.route = result.candidate.route
        facts.route_profile = "sha256:" + result.candidate.profile.digest
        facts.decision = "pseudonymised" if result.pseudonymise else "allowed"
        facts.reasons = list(result.reasons)
        return result

    def _decision(self, choice: Choice, candidate: Candidate, facts: Facts) -> Decision:
        facts.route = candidate.route
        facts.route_profile = "sha256:" + candidate.profile.digest
        return Decision(candidate.model, self.engines[candidate.deployment], candidate.route, facts.data_class, facts.decision)

    def _prepare(
        self, principal: Principal, request: ChatRequest, declared: str | None, facts: Facts
    ) -> tuple[ChatRequest, Vault | None, Choice]:
        scanner = self.scanner_for(principal)
        findings = self.classify(scanner, request, declared, facts)
        choice = self.decide(principal, request.model, facts, findings)
        if not choice.pseudonymise:
            return request, None, choice
        masked, vault = pseudonymise(request, scanner, findings)  # transform
        return masked, vault, choice

    def _attempts(self, choice: Choice) -> list[Candidate]:
        return [choice.candidate, *choice.fallbacks][: 1 + self.router.retries]

    # -- dispatch ------------------------------------------------------------------------
    async def chat(
        self, principal: Principal, request: ChatRequest, facts: Facts, declared: str | None = None
    ) -> tuple[Decision, dict[str, Any]]:
        request, vault, choice = self._prepare(principal, request, declared, facts)
        for attempt, candidate in enumerate(self._attempts(choice)):
            engine = self.engines[candidate.deployment]
            self.router.health.begin(candidate.deployment)
            ok = True
            try:
                result = await engine.chat(request)
            except ROUTE_FAILURES:
                ok = False
                if attempt + 1 == len(self._attempts(choice)):
                    raise
                continue
            except Overloaded:
                if attempt + 1 == len(self._attempts(choice)):
                    raise
                continue
            finally:
                self.router.health.end(candidate.deployment, ok)
            result["model"] = candidate.model
            if vault is not None:
                _restore_message(result, vault)
            self.metrics.count_tokens(candidate.model, result.get("usage"))
            return self._decision(choice, candidate, facts), result
        raise AssertionError("unreachable: at least one attempt is made")

    async def chat_stream(
        self, principal: Principal, request: ChatRequest, facts: Facts, declared: str | None = None
    ) -> tuple[Decision, AsyncIterator[dict[str, Any]]]:
        """Start a stream; admission errors (busy, unsupported field, every allowed route
        down) raise here, before any byte is sent, so they keep their HTTP status. Once
        the first chunk is out, there is no switching routes."""
        request, vault, choice = self._prepare(principal, request, declared, facts)
        attempts = self._attempts(choice)
        for attempt, candidate in enumerate(attempts):
            engine = self.engines[candidate.deployment]
            self.router.health.begin(candidate.deployment)
            chunks = engine.stream(request)
            try:
                first = await anext(chunks)
            except (*ROUTE_FAILURES, Overloaded) as exc:
                self.router.health.end(candidate.deployment, ok=isinstance(exc, Overloaded))
                await chunks.aclose()
                if attempt + 1 == len(attempts):
                    raise
                continue
            except BaseException:
                self.router.health.end(candidate.deployment, ok=True)
                await chunks.aclose()
                raise
            decision = self._decision(choice, candidate, facts)
            return decision, self._relay(candidate, first, chunks, vault)
        raise AssertionError("unreachable: at least one attempt is made")

    async def _relay(
        self, candidate: Candidate, first: dict[str, Any], chunks: AsyncIterator[dict[str, Any]], vault: Vault | None
    ) -> AsyncIterator[dict[str, Any]]:
        """Account (time to first token, tokens) and restore, chunk by chunk."""
        started = time.perf_counter()
        seen_content = False
        restorers = _StreamRestorers(vault) if vault is not None else None
        ok = True
        try:
            async for chunk in _achain(first, chunks):
                chunk["model"] = candidate.model
                if restorers is not None:
                    restorers.apply(chunk)
                if not seen_content and chunk.get("choices"):
                    delta = chunk["choices"][0].get("delta") or {}
                    if delta.get("content") or delta.get("tool_calls"):
                        seen_content = True
                        self.metrics.first_token(candidate.model, time.perf_counter() - started)
                if chunk.get("usage"):
                    self.metrics.count_tokens(candidate.model, chunk["usage"])
                yield chunk
        except ROUTE_FAILURES:
            ok = False
            raise
        finally:
            self.router.health.end(candidate.deployment, ok)
            await chunks.aclose()

    async def embed(
        self, principal: Principal, model: str, texts: list[str], facts: Facts, declared: str | None = None
    ) -> tuple[list[list[float]], int]:
        findings = self.classify(self.scanner_for(principal), texts, declared, facts)
        choice = self.decide(principal, model, facts, findings)
        if choice.pseudonymise:
            raise NoRoute(
                "Embeddings of personal data cannot be pseudonymised (the vectors would describe the placeholders); "
                "no route allowed for this data class serves the model.",
                status=403,
                code="no_permitted_route",
            )
        for attempt, candidate in enumerate(self._attempts(choice)):
            engine = self.engines[candidate.deployment]
            if not engine.supports_embeddings:
                raise InvalidRequest(f"model {model!r} does not serve embeddings", param="model")
            self.router.health.begin(candidate.deployment)
            ok = True
            try:
                vectors, tokens = await engine.embed(texts)
            except ROUTE_FAILURES:
                ok = False
                if attempt + 1 == len(self._attempts(choice)):
                    raise
                continue
            finally:
                self.router.health.end(candidate.deployment, ok)
            self._decision(choice, candidate, facts)
            self.metrics.count_tokens(model, {"prompt_tokens": tokens})
            return vectors, tokens
        raise AssertionError("unreachable: at least one attempt is made")

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
            route=safe_ident(facts.route or facts.model),
            route_profile=facts.route_profile,
            model=safe_ident(facts.model),
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


async def _achain(first: dict[str, Any], rest: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    yield first
    async for chunk in rest:
        yield chunk


def _restore_message(result: dict[str, Any], vault: Vault) -> None:
    """Put the original values back into a whole answer (content, reasoning, tool args)."""
    for choice in result.get("choices", []):
        message = choice.get("message") or {}
        for key in ("content", "reasoning_content"):
            if isinstance(message.get(key), str):
                message[key] = vault.restore(message[key])
        for call in message.get("tool_calls") or []:
            fn = call.get("function") or {}
            if isinstance(fn.get("arguments"), str):
                fn["arguments"] = vault.restore(fn["arguments"], json_escape=True)


class _StreamRestorers:
    """One restorer per stream of text (content, reasoning, each tool call's arguments),
    so a placeholder split across chunks is restored whole."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.text: dict[str, Restorer] = {}

    def _r(self, key: str, json_escape: bool = False) -> Restorer:
        if key not in self.text:
            self.text[key] = self.vault.restorer(json_escape=json_escape)
        return self.text[key]

    def apply(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices", []):
            delta = choice.get("delta") or {}
            for key in ("content", "reasoning_content"):
                if isinstance(delta.get(key), str):
                    delta[key] = self._r(key).feed(delta[key])
            for call in delta.get("tool_calls") or []:
                fn = call.get("function") or {}
                if isinstance(fn.get("arguments"), str):
                    fn["arguments"] = self._r(f"tool{call.get('index', 0)}", True).feed(fn["arguments"])
            if choice.get("finish_reason"):
                # End of this choice: release whatever was held back.
                for key in ("content", "reasoning_content"):
                    if key in self.text:
                        tail = self.text.pop(key).flush()
                        if tail:
                            delta[key] = (delta.get(key) or "") + tail
                for key in [k for k in self.text if k.startswith("tool")]:
                    tail = self.text.pop(key).flush()
                    if tail:
                        delta.setdefault("tool_calls", []).append(
                            {"index": int(key[4:]), "function": {"arguments": tail}}
                        )
                choice["delta"] = delta
