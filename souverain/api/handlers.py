"""The `/v1` handlers, shared by both dialects: chat completions, models, embeddings.

Handlers are thin: they find the dialect, give the spine an `HttpExchange` (read the body,
bounded; parse it into the internal request; watch for the client going away) and render
the `Answer` it returns. The spine (`pipeline.py`) runs every stage in between, recording
included. Any `GatewayError` is rendered in the dialect's error shape by `speaks_dialect`,
with the decision headers the spine put on it.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import secrets
import struct
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from souverain.api import dialects
from souverain.api.dialects import Dialect
from souverain.api.errors import error_body
from souverain.chat import ChatRequest, EmbeddingRequest, decode
from souverain.classes import CLASSES, DataClassName, highest, is_class
from souverain.config import LlamaCppModel, OpenAIHTTPModel
from souverain.errors import GatewayError, GatewayTimeout, InvalidRequest, NotFound, PayloadTooLarge
from souverain.pipeline import ClientGone
from souverain.telemetry import TRACE_HEADERS

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
    `ClientGone`) or when `timeout` seconds pass (504)."""
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
        raise ClientGone()
    return task.result()


CLASS_HEADER = "x-souverain-data-class"


def _declared(request: Request, body_value: DataClassName | None) -> DataClassName | None:
    """The caller's declared class: the highest of every class header (repeated, or
    folded into one with commas, as proxies do) and the body field. A declaration can
    only raise the class: a client cannot undercut a minimum that a proxy appends."""
    headers = [v.strip() for raw in request.headers.getlist(CLASS_HEADER) for v in raw.split(",")]
    given: list[DataClassName] = [body_value] if body_value else []
    for header in headers:
        if not is_class(header):
            raise InvalidRequest(f"{CLASS_HEADER} must be one of {', '.join(CLASSES)}", param=CLASS_HEADER)
        given.append(header)
    return highest(*given) if given else None


def _budget_from_header(request: Request, chat: ChatRequest) -> ChatRequest:
    raw = request.headers.get(BUDGET_HEADER)
    if raw is None:
        return chat
    if not raw.strip().isdigit():
        raise InvalidRequest(f"{BUDGET_HEADER} must be a whole number of tokens", param=BUDGET_HEADER)
    return msgspec.structs.replace(chat, reasoning_budget_tokens=int(raw))


class HttpExchange:
    """One HTTP request, as the spine sees it (`pipeline.Exchange`): parse and watch."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.gw = request.app.state.gateway
        self.authorization = request.headers.get("authorization")
        self.dialect: Dialect = request.state.dialect

    @property
    def trace_context(self) -> dict[str, list[str]]:
        headers = self.request.headers
        return {name: values for name in TRACE_HEADERS if (values := headers.getlist(name))}

    async def body(self) -> bytes:
        return await read_body(self.request, self.gw.config.server.max_body_bytes)

    def parse_chat(self, body: bytes) -> tuple[ChatRequest, DataClassName | None]:
        parsed = decode(body, ChatRequest)
        self.dialect = self.request.state.dialect = dialects.refine(self.dialect, self.request.headers, parsed)
        chat = _budget_from_header(self.request, parsed.normalise())
        return chat, _declared(self.request, chat.data_class)

    def parse_embeddings(self, body: bytes) -> tuple[EmbeddingRequest, DataClassName | None]:
        req = decode(body, EmbeddingRequest)
        return req, _declared(self.request, req.data_class)

    def watch(self, work: Awaitable[T]) -> Awaitable[T]:
        return until_disconnect(self.request, work, self.gw.config.server.request_timeout_s)

    def spawn(self, work: Awaitable[Any]) -> None:
        self.gw.spawn(work)


@speaks_dialect
async def chat_completions(request: Request) -> Response:
    try:
        answer = await request.app.state.gateway.pipeline.chat_completions(HttpExchange(request))
    except ClientGone:
        return _client_gone()
    if answer.events is not None:
        return EventStream(answer.events, answer.headers)
    return Response(answer.body, media_type=JSON, headers=answer.headers)


class EventStream(StreamingResponse):
    """A stream's events as server-sent events (`_sse`), closed when the response ends
    however it ends: sent in full, the client gone (Starlette then cancels the send and
    leaves the iterators as they are), or the client gone before the first event."""

    def __init__(self, events: AsyncGenerator[bytes | GatewayError, None], headers: dict[str, str]) -> None:
        self.events = events
        self.frames = _sse(events)
        super().__init__(
            self.frames,
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # The spine records the stream's end when its events are closed (the pipeline's
            # `Answer`): now, rather than whenever the garbage collector gets to them.
            await self.frames.aclose()
            await self.events.aclose()


def _client_gone() -> Response:
    """The client left before its answer (the spine recorded it): a response nobody
    reads (uvicorn drops it), rather than an exception the server would log as a crash."""
    return Response(status_code=499)


async def _sse(events: AsyncGenerator[bytes | GatewayError, None]) -> AsyncGenerator[bytes, None]:
    """Server-sent events in OpenAI's framing (Mistral's is the same): each data event as
    it comes, a final error event if the stream failed, else `[DONE]`."""
    failed = False
    try:
        async for event in events:
            if isinstance(event, GatewayError):
                failed = True
                event = error_body(event.message, event.type, event.param, event.code)
            yield b"data: " + event + b"\n\n"
        if not failed:
            yield b"data: [DONE]\n\n"
    finally:
        await events.aclose()


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
            "function_calling": isinstance(config, LlamaCppModel)
            or (isinstance(config, OpenAIHTTPModel) and config.tools),
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
    try:
        answer = await request.app.state.gateway.pipeline.embeddings(HttpExchange(request), _render_embeddings)
    except ClientGone:
        return _client_gone()
    return Response(answer.body, media_type=JSON, headers=answer.headers)


def _render_embeddings(req: EmbeddingRequest, vectors: list[list[float]], usage: dict[str, int]) -> bytes:
    dimensions = req.target_dimensions()
    if dimensions is not None:
        if any(dimensions > len(v) for v in vectors):
            raise InvalidRequest(f"dimensions must be at most {len(vectors[0])} for this model", param="dimensions")
        vectors = [v[:dimensions] for v in vectors]
    data = [
        {"object": "embedding", "index": i, "embedding": _encode_vector(v, req.encoding_format)}
        for i, v in enumerate(vectors)
    ]
    return _encode(
        {"id": "emb-" + secrets.token_hex(12), "object": "list", "data": data, "model": req.model, "usage": usage}
    )


def _encode_vector(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector
