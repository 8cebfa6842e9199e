"""The OpenAI dialect: `/v1/chat/completions`, `/v1/models`, `/v1/embeddings`.

Handlers are thin: read the body (bounded), parse it into the internal request, hand it
to the pipeline, render what comes back. Response headers say which model and engine
served the request.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from souverain.api.errors import error_body
from souverain.chat import ChatRequest, EmbeddingRequest, decode
from souverain.errors import GatewayError, GatewayTimeout, InvalidRequest, PayloadTooLarge
from souverain.pipeline import Decision, Pipeline

T = TypeVar("T")
JSON = "application/json"
_encode = msgspec.json.Encoder().encode


def _gateway(request: Request) -> Any:
    return request.app.state.gateway


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
    """Run `work`, cancelling it if the client goes away first (stops generation) or
    when `timeout` seconds pass (504)."""
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
        raise asyncio.CancelledError("client disconnected")
    return task.result()


def _decision_headers(decision: Decision) -> dict[str, str]:
    return {"x-souverain-model": decision.model, "x-souverain-engine": decision.engine.kind}


async def chat_completions(request: Request) -> Response:
    gw = _gateway(request)
    started = time.perf_counter()
    model, status, streaming = "-", 500, False
    try:
        principal = gw.pipeline.authenticate(request.headers.get("authorization"))
        body = await read_body(request, gw.config.server.max_body_bytes)
        chat = decode(body, ChatRequest)
        model = chat.model
        if chat.stream:
            decision, chunks = await gw.pipeline.chat_stream(principal, chat)
            include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
            streaming = True  # _sse observes the request when the stream ends
            return StreamingResponse(
                _sse(chunks, include_usage, gw, model, started),
                media_type="text/event-stream",
                headers={**_decision_headers(decision), "cache-control": "no-cache", "x-accel-buffering": "no"},
            )
        decision, result = await until_disconnect(request, gw.pipeline.chat(principal, chat), gw.config.server.request_timeout_s)
        status = 200
        return Response(_encode(result), media_type=JSON, headers=_decision_headers(decision))
    except GatewayError as exc:
        status = exc.status
        raise
    finally:
        if not streaming:
            gw.metrics.observe("chat", model, status, time.perf_counter() - started)


async def _sse(
    chunks: AsyncIterator[dict[str, Any]], include_usage: bool, gw: Any, model: str, started: float
) -> AsyncIterator[bytes]:
    """Server-sent events in OpenAI's framing. An error after the first byte can no longer
    change the status, so it is sent as a final `error` event, as OpenAI does."""
    status = 200
    try:
        async for chunk in chunks:
            yield b"data: " + _encode(chunk) + b"\n\n"
            if include_usage and chunk.get("usage"):
                tail = {**chunk, "choices": []}
                yield b"data: " + _encode(tail) + b"\n\n"
        yield b"data: [DONE]\n\n"
    except GatewayError as exc:
        status = exc.status
        yield b"data: " + error_body(exc.message, exc.type, exc.param, exc.code) + b"\n\n"
    finally:
        await chunks.aclose()
        gw.metrics.observe("chat", model, status, time.perf_counter() - started)


async def list_models(request: Request) -> Response:
    gw = _gateway(request)
    principal = gw.pipeline.authenticate(request.headers.get("authorization"))
    data = [_model_card(name, gw) for name in gw.pipeline.visible_models(principal)]
    return Response(_encode({"object": "list", "data": data}), media_type=JSON)


async def get_model(request: Request) -> Response:
    gw = _gateway(request)
    principal = gw.pipeline.authenticate(request.headers.get("authorization"))
    decision = gw.pipeline.decide(principal, request.path_params["model"])
    return Response(_encode(_model_card(decision.model, gw)), media_type=JSON)


def _model_card(name: str, gw: Any) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": gw.started_at, "owned_by": "souverain"}


async def embeddings(request: Request) -> Response:
    gw = _gateway(request)
    started = time.perf_counter()
    model, status = "-", 500
    try:
        principal = gw.pipeline.authenticate(request.headers.get("authorization"))
        body = await read_body(request, gw.config.server.max_body_bytes)
        req = decode(body, EmbeddingRequest)
        model = req.model
        vectors, tokens = await until_disconnect(
            request, gw.pipeline.embed(principal, req.model, req.texts()), gw.config.server.request_timeout_s
        )
        if req.dimensions is not None:
            if any(req.dimensions > len(v) for v in vectors):
                raise InvalidRequest(f"dimensions must be at most {len(vectors[0])} for this model", param="dimensions")
            vectors = [v[: req.dimensions] for v in vectors]
        data = [
            {"object": "embedding", "index": i, "embedding": _encode_vector(v, req.encoding_format)}
            for i, v in enumerate(vectors)
        ]
        status = 200
        return Response(
            _encode({"object": "list", "data": data, "model": req.model,
                     "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
            media_type=JSON,
        )
    except GatewayError as exc:
        status = exc.status
        raise
    finally:
        gw.metrics.observe("embeddings", model, status, time.perf_counter() - started)


def _encode_vector(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector
