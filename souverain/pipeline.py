"""The request spine (DESIGN.md): one request's whole path, in one place.

The contract. Each endpoint is one method, `chat_completions` and `embeddings`, that runs
these stages in this order; the HTTP layer (`api/handlers.py`) only reads the request for
it (`Exchange`) and renders what it returns (`Answer`).

 1. authenticate  API key → principal (tenant, key id, scopes). An unknown key: 401, not
                  recorded (there is no tenant to record it under); a key without
                  the `inference` scope: 403, recorded.
 2. parse         the caller's dialect into the internal request (`Exchange.parse_*`).
 3. classify      the request's class, by `outbound.classify`: every piece of text in it
                  (every string and key at any depth, the seams between strings), the
                  caller's declared class, `routing.default_class`, and
                  `routing.unscannable_class` for what cannot be scanned.
 4. decide        `routing.decide` picks an allowed route, or refuses (403: no route may
                  carry the class; 503: none that may is up). Never an excluded route.
 5. transform     pseudonymise when the decision says so; the vault stays in this call.
 6. dispatch      one loop for chat, stream and embeddings: for each allowed route in
                  turn, the engine builds its exact payload, `outbound.seal` classifies
                  those bytes and clears them for that route (else 403, nothing sent),
                  the engine sends them. A route failure (502/504, engine down) or a busy
                  engine (429) moves on to the next allowed route, up to
                  `routing.retries`; after the last, its error is the answer. A stream
                  moves on only before its first chunk. An engine whose upstream cannot
                  honour the request (`Unsupported`: a capability it lacks) is passed
                  over before anything is sealed; if no attempt can, the first refusal
                  (400) is the answer.
 7. restore       original values back into the answer (streams: across chunks).
 8. account       tokens and latency into metrics; with `usage:` (`Accounting`): budgets
                  and limits reserved at the end of stage 4 (the worst case over the
                  allowed routes: 429 with the budget named, 503 if the store cannot be
                  reached, both recorded), the cost priced into the ledger entry at
                  stage 9, and the usage row and the settlement of the reservation
                  queued once the entry is durable (off the response's path).
 9. record        one ledger entry per authenticated request, built from `Facts`:
                  success, refusal (4xx), failure (5xx) and cancellation (499) alike,
                  with the class and keyed digest of exactly what was sent. An answer is
                  released only once its entry is durable; if the ledger cannot take it,
                  the answer is withheld (503). Errors are recorded, then raised (a ledger
                  failure then is logged: the caller already gets an error). A client
                  gone is recorded in the background (nobody waits for it); one gone
                  once its entry was handed to the ledger is not recorded again.
10. respond       `Answer.headers` explain the decision (route, class, decision, ledger
                  index), on errors too (`Facts.headers`).

Telemetry (`souverain/telemetry.py`), where configured: one span and the request's
measurements, made from `Facts` once the outcome is final, beside record (after the entry
is durable, or once it is known that none will be); off, it costs one `is None` check.

Short-circuits: any stage may raise a `GatewayError`; nothing after it runs but record
and respond. Nothing is sent to an engine before stage 6's seal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeVar

import msgspec

from souverain.auth import KeyStore, Principal
from souverain.chat import ChatRequest, EmbeddingRequest
from souverain.classes import DataClassName
from souverain.engines import Engine
from souverain.errors import (
    EngineUnavailable,
    Forbidden,
    GatewayError,
    LedgerUnavailable,
    NoRoute,
    NotFound,
    Overloaded,
    Unsupported,
    UpstreamError,
    UpstreamTimeout,
)
from souverain.ledger import Entry, Ledger
from souverain.ledger.entry import safe_ident
from souverain.metrics import Metrics
from souverain.outbound import Classified, Memo, Outbound, Rules, Sealed, classify, seal, unscannable_note
from souverain.privacy import Scanner, Vault, pseudonymise
from souverain.privacy.restore import StreamRestorers, restore_message
from souverain.routing.decide import Candidate, Choice, Refusal, unmet
from souverain.routing.router import Router
from souverain.telemetry import RequestTrace, Telemetry
from souverain.usage.accounting import Accounting, Booking, Grant
from souverain.usage.prices import Tokens

log = logging.getLogger("souverain.pipeline")
T = TypeVar("T")
_encode = msgspec.json.Encoder().encode

# Failures that say "this route is not working": counted against its breaker, and the
# next allowed route is tried. A busy engine (Overloaded) moves on too, without blame.
ROUTE_FAILURES = (UpstreamError, UpstreamTimeout, EngineUnavailable)


class ClientGone(Exception):
    """The client went away before its answer (raised by `Exchange.watch`)."""


class Renderer(Protocol):
    """The caller's dialect: internal OpenAI-shaped dicts → what the caller reads."""

    name: str

    def completion(self, result: dict[str, Any]) -> dict[str, Any]: ...

    def chunk(self, chunk: dict[str, Any]) -> dict[str, Any]: ...


class Exchange(Protocol):
    """What the spine needs from the HTTP layer for one request."""

    authorization: str | None
    dialect: Renderer

    @property
    def trace_context(self) -> Mapping[str, Sequence[str]]:
        """The caller's W3C trace context: each of `telemetry.TRACE_HEADERS` received,
        to its values (read only where telemetry makes spans)."""

    async def body(self) -> bytes:
        """The request body, bounded (413)."""

    def parse_chat(self, body: bytes) -> tuple[ChatRequest, DataClassName | None]:
        """The internal request and the caller's declared class (may refine `dialect`)."""

    def parse_embeddings(self, body: bytes) -> tuple[EmbeddingRequest, DataClassName | None]: ...

    def watch(self, work: Awaitable[T]) -> Awaitable[T]:
        """`work`, cancelled when the client goes (`ClientGone`) or time is up (504)."""

    def spawn(self, work: Awaitable[Any]) -> None:
        """Run `work` after this request, in the background."""


@dataclass(slots=True)
class Answer:
    """What the spine gives back: a body, or a stream of events (a data event's JSON as
    bytes; a `GatewayError` for a final error event), and the headers that explain it.
    Whoever takes `events` must `aclose()` them when the response ends, however it ends:
    that is when a stream the client left is recorded and its upstream released."""

    headers: dict[str, str]
    body: bytes = b""
    events: AsyncGenerator[bytes | GatewayError, None] | None = None


@dataclass(slots=True)
class Facts:
    """What the spine has learnt about one request: the ledger entry, before it is one."""

    endpoint: str
    principal: Principal | None = None
    model: str = ""
    route: str = ""
    deployment: str = ""  # the `models[].name` last tried over `route`
    route_profile: str = ""
    data_class: DataClassName = "public"
    found: dict[str, int] = field(default_factory=dict)
    decision: str = "allowed"
    reasons: list[str] = field(default_factory=list)
    status: int = 200
    usage: Mapping[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    classified: bool = False  # whether `data_class` was computed (the request got to classify)
    body: bytes | None = None  # the request as received
    sent: bytes | None = None  # exactly what went to `route`
    sent_class: DataClassName | Literal[""] = ""  # "": nothing was sent
    cost: Decimal = Decimal(0)
    currency: str = "EUR"
    cost_centre: str = ""
    grant: Grant | None = None  # what the budgets reserved for it
    booked: bool = False  # its usage row and settlement are queued (once)
    error: str = ""  # the error's code (or type) when the request was refused or failed
    finish_reasons: list[str] = field(default_factory=list)  # of the answer's choices
    # The request's one ledger write, once begun (`Pipeline.record`): a request has one
    # entry, whenever and however often its end is reported.
    recording: asyncio.Task[int | None] | None = None
    trace: RequestTrace | None = None  # its place in a trace, where telemetry makes spans

    def finished(self, choice: Mapping[str, Any]) -> None:
        """Note a choice's finish reason (a word from the engine: never content)."""
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and len(self.finish_reasons) < 16:
            self.finish_reasons.append(reason[:32])

    def failed(self, exc: GatewayError) -> None:
        self.status = exc.status
        self.error = exc.code or exc.type
        self.decision = "refused" if exc.status < 500 else "failed"
        # The code only: an error message may quote a value from the request, and the
        # ledger never holds request content. Routing refusals keep their route reasons.
        if not (isinstance(exc, NoRoute) and self.reasons):
            self.reasons = [*self.reasons[:16], exc.code or exc.type][-32:]

    def cancelled(self) -> None:
        self.status, self.decision, self.error = 499, "cancelled", "cancelled"
        self.reasons = [*self.reasons[:16], "client disconnected before the answer was complete"]

    def entry(self) -> Entry:
        assert self.principal is not None
        usage = self.usage or {}
        return Entry(
            tenant=self.principal.tenant,
            key_id=self.principal.key_id,
            route=safe_ident(self.route or self.model),
            route_profile=self.route_profile,
            model=safe_ident(self.model),
            data_class=self.data_class,
            found=self.found,
            decision=self.decision,
            reasons=[r[:300] for r in self.reasons][:32],
            status=self.status,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cost=self.cost,
            currency=self.currency,
            latency_ms=int((time.perf_counter() - self.started) * 1000),
            sent_class=self.sent_class,
        )

    def headers(self, ledger_index: int | None) -> dict[str, str]:
        """The decision headers, success or not: the route (`none` if sent nowhere), the
        class once classified, the decision, the ledger entry."""
        headers = {"x-souverain-decision": self.decision, "x-souverain-route": self.route or "none"}
        if self.classified:
            headers["x-souverain-data-class"] = self.data_class
        if ledger_index is not None:
            headers["x-souverain-ledger-index"] = str(ledger_index)
        return headers


@dataclass(slots=True)
class _Admitted:
    """A request past classify, decide and transform: what dispatch needs."""

    request: Any  # the ChatRequest (pseudonymised if so decided) or the embedding texts
    choice: Choice
    rules: Rules
    memo: Memo
    scanner: Scanner
    vault: Vault | None = None


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
        unscannable_class: DataClassName = "personal",
        telemetry: Telemetry | None = None,
        accounting: Accounting | None = None,
    ) -> None:
        self.keys = keys
        self.engines = engines
        self.metrics = metrics
        self.router = router
        self.scanner = scanner  # for tenants without settings of their own
        self.tenant_scanners = dict(tenant_scanners or {})
        self.ledger = ledger
        self.unscannable_class = unscannable_class
        self.telemetry = telemetry  # None: not configured, nothing is done
        self.accounting = accounting

    # -- the endpoints -------------------------------------------------------------------
    async def chat_completions(self, x: Exchange) -> Answer:
        facts = self._facts("chat", x)
        try:
            chat, declared = x.parse_chat(await self._receive(x, facts))
            facts.model = chat.model
            admitted = await self._admit(facts, chat, chat.model, declared)
            if chat.stream:
                candidate, (first, chunks) = await self._dispatch(
                    facts, admitted, lambda e: e.outbound(admitted.request, stream=True), _open_stream
                )
                include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
                events = self._relay(x, facts, candidate, first, chunks, admitted.vault, include_usage)
                await anext(events)  # started, so that closing it at any point records it (_relay)
                return Answer(self._headers(facts, candidate, x, None), events=events)
            candidate, result = await x.watch(
                self._dispatch(facts, admitted, lambda e: e.outbound(admitted.request, stream=False), _chat)
            )
            result["model"] = candidate.model
            if admitted.vault is not None:
                restore_message(result, admitted.vault)
            for choice in result.get("choices") or ():
                facts.finished(choice)
            self.metrics.count_tokens(candidate.model, result.get("usage"))
            facts.usage = result.get("usage") or {}
            payload = _encode(x.dialect.completion(result))
            index = await self.record(facts, response=payload)
            self.metrics.observe("chat", facts.model, 200, time.perf_counter() - facts.started)
            return Answer(self._headers(facts, candidate, x, index), body=payload)
        except BaseException as exc:
            raise await self._recorded(facts, x, exc) from None

    async def embeddings(
        self, x: Exchange, render: Callable[[EmbeddingRequest, list[list[float]], dict[str, int]], bytes]
    ) -> Answer:
        """`render`: the embeddings response body (the same shape in both dialects;
        raises `InvalidRequest` for dimensions the vectors do not have)."""
        facts = self._facts("embeddings", x)
        try:
            req, declared = x.parse_embeddings(await self._receive(x, facts))
            facts.model = req.model
            texts = req.texts()
            admitted = await self._admit(facts, texts, req.model, declared)
            candidate, (vectors, tokens) = await x.watch(
                self._dispatch(facts, admitted, lambda e: e.outbound_embed(admitted.request), _embed)
            )
            self.metrics.count_tokens(req.model, {"prompt_tokens": tokens})
            facts.usage = {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0}
            payload = render(req, vectors, dict(facts.usage))
            index = await self.record(facts, response=payload)
            self.metrics.observe("embeddings", facts.model, 200, time.perf_counter() - facts.started)
            return Answer(self._headers(facts, candidate, x, index), body=payload)
        except BaseException as exc:
            raise await self._recorded(facts, x, exc) from None

    def _facts(self, endpoint: str, x: Exchange) -> Facts:
        facts = Facts(endpoint)
        if self.telemetry is not None:
            facts.trace = self.telemetry.trace(x.trace_context)
        return facts

    # -- authenticate ----------------------------------------------------------------
    async def _receive(self, x: Exchange, facts: Facts) -> bytes:
        """Authenticate, then read the body (the key first: an unknown caller's body is
        not read). A key without the `inference` scope is known, so it is recorded."""
        facts.principal = self.keys.authenticate(x.authorization)
        self.require(facts.principal, "inference")
        facts.body = await x.body()
        return facts.body

    def authenticate(self, authorization: str | None, scope: str = "inference") -> Principal:
        return self.require(self.keys.authenticate(authorization), scope)

    @staticmethod
    def require(principal: Principal, scope: str) -> Principal:
        if scope not in principal.scopes and "admin" not in principal.scopes:
            raise Forbidden(f"this API key lacks the {scope!r} scope", code="insufficient_scope")
        return principal

    def visible_models(self, principal: Principal) -> list[str]:
        """Models this caller may use over some route its policy allows."""
        return self.router.visible_models(principal)

    # -- classify, decide, transform -------------------------------------------------
    def scanner_for(self, principal: Principal) -> Scanner:
        """The scanner with the caller's tenant's settings (built at start: a lookup)."""
        return self.tenant_scanners.get(principal.tenant, self.scanner)

    async def _admit(self, facts: Facts, request: Any, model: str, declared: DataClassName | None) -> _Admitted:
        principal = facts.principal
        assert principal is not None  # _receive authenticated the caller first
        scanner = self.scanner_for(principal)
        rules = Rules(self.router.default_class, self.unscannable_class, declared)
        memo: Memo = {}
        payload = msgspec.to_builtins(request)
        classified = await _off_loop(len(facts.body or b""), classify, scanner, payload, rules, memo)
        facts.data_class, facts.found, facts.classified = classified.data_class, dict(classified.counts), True
        choice = self._decide(principal, model, facts, classified, rules)
        if self.accounting is not None:
            await self._reserve(facts, principal, choice, request)
        if isinstance(request, list) and choice.pseudonymise:
            raise NoRoute(
                "Embeddings of personal data cannot be pseudonymised (the vectors would describe the placeholders); "
                "no route allowed for this data class serves the model.",
                status=403,
                code="no_permitted_route",
            )
        if not choice.pseudonymise:
            return _Admitted(request, choice, rules, memo, scanner)
        masked, vault = pseudonymise(request, scanner, classified.scan.findings)
        return _Admitted(masked, choice, rules, memo, scanner, vault)

    def _decide(self, principal: Principal, model: str, facts: Facts, classified: Classified, rules: Rules) -> Choice:
        # Pseudonymising helps only when the class comes from findings it can replace.
        pseudonymisable = classified.pseudonymisable and (rules.declared or "public") not in ("personal", "special")
        # Engines still loading or failed to load are left to the breaker: trying one
        # raises EngineUnavailable at once, with its reason, and the next route is tried.
        ready_since = {name: engine.ready_since for name, engine in self.engines.items()}
        result = self.router.decide(principal, model, facts.data_class, pseudonymisable, ready_since)
        if isinstance(result, Refusal) and result.status == 404:
            # The same answer for unknown and forbidden names, so a key cannot probe for them.
            raise NotFound(result.message, param="model")
        if isinstance(result, Refusal):
            facts.reasons = [f"{result.code}: {route}: {'; '.join(why)}"[:300] for route, why in result.excluded][:31]
            raise NoRoute(result.message + unscannable_note(classified, rules), status=result.status, code=result.code)
        facts.decision = "pseudonymised" if result.pseudonymise else "allowed"
        facts.reasons = list(result.reasons)
        return result

    def _attempts(self, choice: Choice) -> list[Candidate]:
        """The routes a request may be tried on, in order: the choice, then its fallbacks,
        up to `routing.retries` more. Budgets reserve over exactly these."""
        return [choice.candidate, *choice.fallbacks][: 1 + self.router.retries]

    async def _reserve(self, facts: Facts, principal: Principal, choice: Choice, request: Any) -> None:
        """Account, before the call: reserve the request's worst case on its budgets and
        limits (input tokens counted as the body's bytes, an upper bound; the output cap)."""
        assert self.accounting is not None
        facts.cost_centre = self.accounting.cost_centre(principal)
        attempts = self._attempts(choice)
        cap = request.token_limit() if isinstance(request, ChatRequest) else 0
        facts.grant = await self.accounting.admit(
            principal,
            facts.cost_centre,
            [(c.route, c.model, c.deployment) for c in attempts],
            len(facts.body or b""),
            cap,
        )

    # -- dispatch --------------------------------------------------------------------
    async def _dispatch(
        self,
        facts: Facts,
        admitted: _Admitted,
        build: Callable[[Engine], Outbound],
        send: Callable[[Engine, Sealed], Awaitable[T]],
    ) -> tuple[Candidate, T]:
        """The one dispatch loop: build, seal, send, over the allowed routes in turn."""
        choice = admitted.choice
        attempts = self._attempts(choice)
        policy = self.router.policy(facts.principal.tenant if facts.principal else "")
        refused: Unsupported | None = None
        for n, candidate in enumerate(attempts):
            engine = self.engines[candidate.deployment]
            try:
                outbound = build(engine)
            except Unsupported as exc:  # this upstream cannot; another allowed one may
                refused = refused or exc
                facts.reasons.append(f"route {candidate.route}: {exc.code}")
                continue
            if self.telemetry is not None and (trace := self.telemetry.outbound_headers(facts, candidate.deployment)):
                outbound = replace(outbound, headers=trace)  # to the upstreams marked for it
            sealed = await _off_loop(
                len(facts.body or b""),
                seal,
                outbound,
                route=candidate.route,
                scanner=admitted.scanner,
                rules=admitted.rules,
                unmet=lambda cls, profile=candidate.profile: unmet(policy.rule(cls), profile),
                memo=admitted.memo,
            )
            facts.route, facts.route_profile = candidate.route, "sha256:" + candidate.profile.digest
            facts.deployment = candidate.deployment
            facts.sent, facts.sent_class = sealed.body, sealed.data_class
            self.router.health.begin(candidate.deployment)
            try:
                result = await send(engine, sealed)
            except (*ROUTE_FAILURES, Overloaded) as exc:
                self.router.health.end(candidate.deployment, ok=isinstance(exc, Overloaded))
                facts.reasons.append(f"route {candidate.route}: {exc.code or exc.type}")
                if n + 1 == len(attempts):
                    raise
                continue
            except BaseException:
                self.router.health.end(candidate.deployment, ok=True)
                raise
            if send is not _open_stream:  # a stream's route is judged when it ends (_relay)
                self.router.health.end(candidate.deployment, ok=True)
            return candidate, result
        assert refused is not None, "unreachable: an attempt either returns, raises or is refused"
        raise refused

    async def _relay(
        self,
        x: Exchange,
        facts: Facts,
        candidate: Candidate,
        first: dict[str, Any],
        chunks: AsyncGenerator[dict[str, Any], None],
        vault: Vault | None,
        include_usage: bool,
    ) -> AsyncGenerator[bytes | GatewayError, None]:
        """A stream's events: restore and account chunk by chunk; the final chunk (the one
        with `usage`) waits until the entry is durable and then carries its index (the
        response digest covers the events as they were before that field was added). An
        error after the first byte is a final error event: the status is already sent."""
        started = time.perf_counter()
        seen_content = False
        restorers = StreamRestorers(vault) if vault is not None else None
        sent: list[bytes] = []
        final: dict[str, Any] | None = None
        ok = True
        try:
            # The one event not sent: chat_completions takes it, which starts the relay.
            # From here on, closing the events (the HTTP layer does, however the response
            # ends) runs the ends below, even if the client left before the first event.
            yield b""
            async for chunk in _achain(first, chunks):
                chunk["model"] = candidate.model
                if restorers is not None:
                    restorers.apply(chunk)
                for choice in chunk.get("choices") or ():
                    if choice.get("finish_reason"):
                        facts.finished(choice)
                if not seen_content and chunk.get("choices"):
                    delta = chunk["choices"][0].get("delta") or {}
                    if delta.get("content") or delta.get("tool_calls"):
                        seen_content = True
                        self.metrics.first_token(candidate.model, time.perf_counter() - started)
                if chunk.get("usage"):
                    self.metrics.count_tokens(candidate.model, chunk["usage"])
                    final = chunk
                    continue
                data = _encode(x.dialect.chunk(chunk))
                sent.append(data)
                yield data
            tail = [x.dialect.chunk(final)] if final else []
            if final and include_usage:
                tail.append({**tail[0], "choices": []})
            facts.usage = (final or {}).get("usage") or {}
            index = await self.record(facts, response=b"".join(sent + [_encode(c) for c in tail]))
            for chunk in tail:
                if index is not None:
                    chunk = {**chunk, "souverain": {"ledger_index": index}}
                yield _encode(chunk)
            self.metrics.observe("chat", facts.model, 200, time.perf_counter() - facts.started)
        except GatewayError as exc:
            ok = not isinstance(exc, ROUTE_FAILURES)
            await self.record_failure(facts, exc)
            yield exc
        except (asyncio.CancelledError, GeneratorExit):
            self.record_cancelled(facts, x)
            raise
        except Exception as exc:
            failure = await self._recorded(facts, x, exc)
            if not isinstance(failure, GatewayError):
                raise failure from None
            yield failure
        finally:
            self.router.health.end(candidate.deployment, ok)
            await chunks.aclose()

    def _headers(self, facts: Facts, candidate: Candidate, x: Exchange, index: int | None) -> dict[str, str]:
        engine = self.engines[candidate.deployment]
        return {
            "x-souverain-model": candidate.model,
            "x-souverain-engine": engine.kind,
            "x-souverain-dialect": x.dialect.name,
            **facts.headers(index),
            **(self.accounting.rate_headers(facts.grant) if self.accounting is not None else {}),
        }

    # -- record ----------------------------------------------------------------------
    async def record(self, facts: Facts, *, response: bytes | None) -> int | None:
        """Append the request's ledger entry and return its index once durable.

        Once per request: the first call hands the entry to the ledger on a task of its
        own; a later call (the client left, or something failed, after that) writes
        nothing and waits for the same entry. A caller cancelled while it waits (the
        client went away as the end of the answer was recorded or sent) stops neither the
        entry nor its usage row: the entry says what was true when recording began.

        Requests that never authenticated have no tenant and are not recorded. A ledger
        failure raises `LedgerUnavailable`: the caller withholds the answer (fail closed).
        """
        if facts.recording is None:
            facts.recording = asyncio.get_running_loop().create_task(self._write(facts, response))
            # Read here if no caller is left to read it (the failure is logged in _write).
            facts.recording.add_done_callback(lambda t: t.cancelled() or t.exception())
        return await asyncio.shield(facts.recording)

    async def _write(self, facts: Facts, response: bytes | None) -> int | None:
        if facts.principal is None:
            self.observe(facts, None)
            return None
        if self.accounting is not None and not facts.booked:
            self._price(facts)
        index = None
        entry = facts.entry()
        try:
            if self.ledger is not None:
                index = await self.ledger.append(entry, request=facts.body, response=response, sent=facts.sent)
        except Exception as exc:
            log.error("ledger append failed for %s: %s", facts.endpoint, exc)
            raise LedgerUnavailable(
                "The request ledger could not record this request, so the answer is withheld; retry later."
            ) from None
        finally:
            # Booked at the entry's own time: the row and a row rebuilt from the ledger
            # fall on the same day, also for a request made as midnight strikes.
            self._book(facts, index, entry.time.timestamp())
        self.observe(facts, index)
        return index

    def observe(self, facts: Facts, ledger_index: int | None) -> None:
        """The request's span and measurements, where telemetry is configured."""
        if self.telemetry is not None:
            # The cost only where accounting priced the request (a default of 0 is not
            # a known cost).
            cost, currency = (facts.cost, facts.currency) if self.accounting is not None else (None, None)
            self.telemetry.request(facts, ledger_index, cost, currency)

    # -- account ---------------------------------------------------------------------
    def _price(self, facts: Facts) -> None:
        """The request's cost, for its ledger entry: what it used of the route it was sent
        to (nothing sent, nothing spent)."""
        assert self.accounting is not None
        facts.currency = self.accounting.currency
        if facts.sent is not None:
            seconds = time.perf_counter() - facts.started
            tokens = Tokens.of(facts.usage)
            facts.cost = self.accounting.cost(facts.route, facts.model, facts.deployment, tokens, seconds)

    def _book(self, facts: Facts, index: int | None, at: float) -> None:
        """Queue the usage row and the settlement of the reservation, once per request."""
        if self.accounting is None or facts.booked or facts.principal is None:
            return
        facts.booked = True
        booking = Booking(
            principal=facts.principal,
            cost_centre=facts.cost_centre or self.accounting.cost_centre(facts.principal),
            model=safe_ident(facts.model),
            route=safe_ident(facts.route),
            data_class=facts.data_class,
            status=facts.status,
            tokens=Tokens.of(facts.usage),
            cost=facts.cost,
            grant=facts.grant,
            time=at,
        )
        self.accounting.book(booking, index)

    async def _recorded(self, facts: Facts, x: Exchange, exc: BaseException) -> BaseException:
        """Record a request that ended in `exc`; what to raise for it. A bug is logged
        and becomes a 500 in the caller's dialect, recorded like any failure."""
        if isinstance(exc, (ClientGone, asyncio.CancelledError)):
            self.record_cancelled(facts, x)
            return exc
        if not isinstance(exc, GatewayError):
            if not isinstance(exc, Exception):
                return exc  # KeyboardInterrupt, SystemExit: not a request's outcome
            log.error("unexpected error in the %s spine", facts.endpoint, exc_info=exc)
            exc = GatewayError(
                "The gateway hit an internal error; the operator's log has the details.", code="internal_error"
            )
        await self.record_failure(facts, exc)
        return exc

    async def record_failure(self, facts: Facts, exc: GatewayError) -> None:
        """A refused or failed request is recorded too, and its error explains itself
        (headers); a ledger failure here is only logged: the caller already gets an error."""
        self.metrics.observe(facts.endpoint, facts.model or "-", exc.status, time.perf_counter() - facts.started)
        index = None
        if isinstance(exc, LedgerUnavailable):
            # The entry of an answer that was ready could not be written: the caller gets
            # a 503, and so does the span (the ledger holds nothing to change).
            self.observe(replace(facts, status=exc.status, decision="failed", error=exc.code or exc.type), None)
        else:
            if facts.recording is None:  # else its entry stands (a failure after record)
                facts.failed(exc)
            try:
                index = await self.record(facts, response=None)
            except LedgerUnavailable:
                self.observe(facts, None)
        exc.headers.update(facts.headers(index))

    def record_cancelled(self, facts: Facts, x: Exchange) -> None:
        """The client left (or the task was cancelled): recorded in the background,
        since this task can no longer wait. If its entry was already handed to the ledger
        (the client left while the end of the answer was being sent), that entry stands:
        the background task only waits for it (so a shutdown waits for it too)."""
        if facts.recording is None:
            facts.cancelled()
        # Counted here, once: the answer's own count (after record) was not reached.
        self.metrics.observe(facts.endpoint, facts.model or "-", facts.status, time.perf_counter() - facts.started)
        x.spawn(self.record(facts, response=None))


# Bodies above this are classified on a worker thread, so that scanning megabytes does not
# stall every other request on the event loop (the scanner is thread-safe).
OFF_LOOP_BYTES = 64 * 1024


async def _off_loop(size: int, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    if size <= OFF_LOOP_BYTES:
        return fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)


async def _chat(engine: Engine, sealed: Sealed) -> dict[str, Any]:
    return await engine.chat(sealed)


async def _open_stream(engine: Engine, sealed: Sealed) -> tuple[dict[str, Any], AsyncGenerator[dict[str, Any], None]]:
    """Open a stream and wait for its first chunk: admission errors (busy, unsupported
    field, route down) raise here, before any byte is sent to the client."""
    chunks = engine.stream(sealed)
    try:
        return await anext(chunks), chunks
    except BaseException:
        await chunks.aclose()
        raise


async def _embed(engine: Engine, sealed: Sealed) -> tuple[list[list[float]], int]:
    return await engine.embed(sealed)


async def _achain(first: dict[str, Any], rest: AsyncIterator[dict[str, Any]]) -> AsyncGenerator[dict[str, Any], None]:
    yield first
    async for chunk in rest:
        yield chunk
