"""The `/v1` handlers, shared by both dialects: chat completions, models, embeddings.

Handlers are thin: find the dialect, read the body (bounded), parse it into the internal
request, hand it to the pipeline, render what comes back in the caller's dialect. Any
`GatewayError` is rendered in that dialect's error shape by `speaks_dialect`.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import secrets
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from souverain.api import dialects
from souverain.api.dialects import Dialect
from souverain.api.errors import error_body
from souverain.chat import ChatRequest, EmbeddingRequest, decode
from souverain.config import LlamaCppModel, OpenAIHTTPModel
from souverain.errors import GatewayError, GatewayTimeout, InvalidRequest, LedgerUnavailable, NotFound, PayloadTooLarge
from souverain.pipeline import Decision, Facts

T = TypeVar("T")
JSON = "application/json"
BUDGET_HEADER = "x-souverain-reasoning-budget"
_encode = msgspec.json.Encoder().encode


def speaks_dialect(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Pick the dialect from the headers before anything can fail, and render errors in it."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        request.state.dialect = dialects.from_headers(request.headers)
        try:
            return await handler(request)
        except GatewayError as exc:
            return request.state.dialect.error(exc)

    return wrapped


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is {declared} bytes; the limit is {limit}.")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.")
            chunks.append(chunk)
    except ClientDisconnect:
        raise InvalidRequest("The client disconnected while sending the body.") from None
    return b"".join(chunks)


async def until_disconnect(request: Request, work: Awaitable[T], timeout: float) -> T:
    """Run `work`, cancelling it if the client goes away first (stops generation; raises
    `ClientDisconnect`) or when `timeout` seconds pass (504)."""
    task = asyncio.ensure_future(work)

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(watch())
    try:
        done, _ = await asyncio.wait((task, watcher), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        if not done:
            raise GatewayTimeout(f"The request took longer than the gateway's limit of {timeout:g} s.")
        raise ClientDisconnect()
    return task.result()


CLASS_HEADER = "x-souverain-data-class"


def _declared(request: Request, body_value: str | None) -> str | None:
    """The caller's declared class: the highest of every class header (repeated, or
    folded into one with commas, as proxies do) and the body field. A declaration can
    only raise the class: a client cannot undercut a minimum that a proxy appends."""
    from souverain.routing.policy import CLASSES

    headers = [v.strip() for raw in request.headers.getlist(CLASS_HEADER) for v in raw.split(",")]
    for header in headers:
        if header not in CLASSES:
            raise InvalidRequest(f"{CLASS_HEADER} must be one of {', '.join(CLASSES)}", param=CLASS_HEADER)
    given = [c for c in (*headers, body_value) if c]
    return max(given, key=CLASSES.index) if given else None


def _decision_headers(decision: Decision, dialect: Dialect, ledger_index: int | None = None) -> dict[str, str]:
    headers = {
        "x-souverain-model": decision.model,
        "x-souverain-engine": decision.engine.kind,
        "x-souverain-dialect": dialect.name,
        "x-souverain-route": decision.route,
        "x-souverain-data-class": decision.data_class,
        "x-souverain-decision": decision.decision,
    }
    if ledger_index is not None:
        headers[LEDGER_HEADER] = str(ledger_index)
    return headers


def _budget_from_header(request: Request, chat: ChatRequest) -> ChatRequest:
    raw = request.headers.get(BUDGET_HEADER)
    if raw is None:
        return chat
    if not raw.strip().isdigit():
        raise InvalidRequest(f"{BUDGET_HEADER} must be a whole number of tokens", param=BUDGET_HEADER)
    return msgspec.structs.replace(chat, reasoning_budget_tokens=int(raw))


LEDGER_HEADER = "x-souverain-ledger-index"


@speaks_dialect
async def chat_completions(request: Request) -> Response:
    gw = request.app.state.gateway
    facts = Facts("chat")
    body: bytes | None = None
    try:
        facts.principal = gw.pipeline.authenticate(request.headers.get("authorization"))
        body = await read_body(request, gw.config.server.max_body_bytes)
        parsed = decode(body, ChatRequest)
        dialect = request.state.dialect = dialects.refine(request.state.dialect, request.headers, parsed)
        chat = _budget_from_header(request, parsed.normalise())
        facts.model = chat.model
        if chat.stream:
            decision, chunks = await gw.pipeline.chat_stream(facts.principal, chat, facts, _declared(request, chat.data_class))
            include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
            return StreamingResponse(
                _sse(chunks, dialect, include_usage, gw, facts, body),
                media_type="text/event-stream",
                headers={
                    **_decision_headers(decision, dialect),
                    "cache-control": "no-cache",
                    "x-accel-buffering": "no",
                },
            )
        decision, result = await until_disconnect(
            request,
            gw.pipeline.chat(facts.principal, chat, facts, _declared(request, chat.data_class)),
            gw.config.server.request_timeout_s,
        )
        payload = _encode(dialect.completion(result))
        facts.usage = result.get("usage") or {}
        index = await gw.pipeline.record(facts, request=body, response=payload)
        gw.metrics.observe("chat", facts.model or "-", 200, time.perf_counter() - facts.started)
        return Response(payload, media_type=JSON, headers=_decision_headers(decision, dialect, index))
    except GatewayError as exc:
        await _record_failure(gw, facts, exc, body)
        raise
    except ClientDisconnect:
        return _client_gone(gw, facts, body)
    except asyncio.CancelledError:
        _record_cancelled(gw, facts, body)
        raise


def _client_gone(gw: Any, facts: Facts, body: bytes | None) -> Response:
    """The client left before its answer: recorded, and a response nobody reads (uvicorn
    drops it), rather than an exception that the server would log as a crash."""
    _record_cancelled(gw, facts, body)
    return Response(status_code=499)


def _record_cancelled(gw: Any, facts: Facts, body: bytes | None) -> None:
    """The client left (or the task was cancelled): record that in the background, since
    this task can no longer wait."""
    facts.status, facts.decision, facts.reasons = 499, "cancelled", ["client disconnected before the answer was complete"]
    gw.spawn(gw.pipeline.record(facts, request=body, response=None))


async def _record_failure(gw: Any, facts: Facts, exc: GatewayError, body: bytes | None) -> None:
    """A refused or failed request is recorded too; a ledger failure here is only logged,
    since the client is already getting an error."""
    gw.metrics.observe(facts.endpoint, facts.model or "-", exc.status, time.perf_counter() - facts.started)
    index = None
    if not isinstance(exc, LedgerUnavailable):
        facts.failed(exc)
        try:
            index = await gw.pipeline.record(facts, request=body, response=None)
        except LedgerUnavailable:
            pass
    exc.headers.update(_failure_headers(facts, index))


def _failure_headers(facts: Facts, ledger_index: int | None) -> dict[str, str]:
    """An error explains itself too: the decision, the route (`none` if it was sent
    nowhere), the class if the request got as far as classification, the ledger entry."""
    headers = {"x-souverain-decision": facts.decision, "x-souverain-route": facts.route or "none"}
    if facts.classified:
        headers["x-souverain-data-class"] = facts.data_class
    if ledger_index is not None:
        headers[LEDGER_HEADER] = str(ledger_index)
    return headers


async def _sse(
    chunks: AsyncIterator[dict[str, Any]], dialect: Dialect, include_usage: bool, gw: Any, facts: Facts, body: bytes
) -> AsyncIterator[bytes]:
    """Server-sent events in OpenAI's framing (Mistral's is the same).

    Content chunks go out as they come. The final chunk (the one with `usage`) waits until
    the ledger has the request, then carries `souverain.ledger_index`; the response digest
    covers the data events as they were before that field was added. An error after the
    first byte can no longer change the status, so it is sent as a final `error` event.
    """
    sent: list[bytes] = []
    try:
        final: dict[str, Any] | None = None
        async for chunk in chunks:
            if chunk.get("usage"):
                final = chunk
                continue
            data = _encode(dialect.chunk(chunk))
            sent.append(data)
            yield b"data: " + data + b"\n\n"
        tail = [dialect.chunk(final)] if final else []
        if final and include_usage:
            tail.append({**tail[0], "choices": []})
        facts.usage = (final or {}).get("usage") or {}
        index = await gw.pipeline.record(facts, request=body, response=b"".join(sent + [_encode(c) for c in tail]))
        for chunk in tail:
            if index is not None:
                chunk = {**chunk, "souverain": {"ledger_index": index}}
            yield b"data: " + _encode(chunk) + b"\n\n"
        yield b"data: [DONE]\n\n"
        gw.metrics.observe("chat", facts.model, 200, time.perf_counter() - facts.started)
    except GatewayError as exc:
        await _record_failure(gw, facts, exc, body)
        yield b"data: " + error_body(exc.message, exc.type, exc.param, exc.code) + b"\n\n"
    except (asyncio.CancelledError, GeneratorExit):
        _record_cancelled(gw, facts, body)
        raise
    finally:
        await chunks.aclose()


@speaks_dialect
async def list_models(request: Request) -> Response:
    gw = request.app.state.gateway
    principal = gw.pipeline.authenticate(request.headers.get("authorization"))
    data = [_model_card(name, gw) for name in gw.pipeline.visible_models(principal)]
    return Response(_encode({"object": "list", "data": data}), media_type=JSON)


@speaks_dialect
async def get_model(request: Request) -> Response:
    gw = request.app.state.gateway
    principal = gw.pipeline.authenticate(request.headers.get("authorization"))
    name = request.path_params["model"]
    if name not in gw.pipeline.visible_models(principal):
        raise NotFound(f"The model {name!r} does not exist or you do not have access to it.", param="model")
    return Response(_encode(_model_card(name, gw)), media_type=JSON)


def _model_card(name: str, gw: Any) -> dict[str, Any]:
    """One card for both SDKs: OpenAI reads id/object/created/owned_by; Mistral's SDK also
    needs `capabilities` and `type: "base"`."""
    config = next(m for m in gw.config.models if (m.serves or m.name) == name)
    card: dict[str, Any] = {
        "id": name,
        "object": "model",
        "created": gw.started_at,
        "owned_by": "souverain",
        "type": "base",
        "aliases": [],
        "capabilities": {
            "completion_chat": True,
            "function_calling": isinstance(config, LlamaCppModel) or (isinstance(config, OpenAIHTTPModel) and config.tools),
            "reasoning": isinstance(config, LlamaCppModel) and config.reasoning is not None,
            "completion_fim": False,
            "fine_tuning": False,
            "vision": False,
            "classification": False,
        },
    }
    if isinstance(config, LlamaCppModel):
        card["max_context_length"] = config.n_ctx
    return card


@speaks_dialect
async def embeddings(request: Request) -> Response:
    gw = request.app.state.gateway
    facts = Facts("embeddings")
    body: bytes | None = None
    try:
        facts.principal = gw.pipeline.authenticate(request.headers.get("authorization"))
        body = await read_body(request, gw.config.server.max_body_bytes)
        req = decode(body, EmbeddingRequest)
        facts.model = req.model
        vectors, tokens = await until_disconnect(
            request,
            gw.pipeline.embed(facts.principal, req.model, req.texts(), facts, _declared(request, req.data_class)),
            gw.config.server.request_timeout_s,
        )
        dimensions = req.target_dimensions()
        if dimensions is not None:
            if any(dimensions > len(v) for v in vectors):
                raise InvalidRequest(f"dimensions must be at most {len(vectors[0])} for this model", param="dimensions")
            vectors = [v[:dimensions] for v in vectors]
        data = [
            {"object": "embedding", "index": i, "embedding": _encode_vector(v, req.encoding_format)}
            for i, v in enumerate(vectors)
        ]
        facts.usage = {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0}
        payload = _encode(
            {"id": "emb-" + secrets.token_hex(12), "object": "list", "data": data, "model": req.model, "usage": facts.usage}
        )
        index = await gw.pipeline.record(facts, request=body, response=payload)
        gw.metrics.observe("embeddings", facts.model, 200, time.perf_counter() - facts.started)
        headers = {"x-souverain-route": facts.route, "x-souverain-data-class": facts.data_class}
        if index is not None:
            headers[LEDGER_HEADER] = str(index)
        return Response(payload, media_type=JSON, headers=headers)
    except GatewayError as exc:
        await _record_failure(gw, facts, exc, body)
        raise
    except ClientDisconnect:
        return _client_gone(gw, facts, body)
    except asyncio.CancelledError:
        _record_cancelled(gw, facts, body)
        raise


def _encode_vector(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector
