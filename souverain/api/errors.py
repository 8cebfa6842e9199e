"""Render errors in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import logging

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from souverain.errors import GatewayError

log = logging.getLogger("souverain.api")


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> bytes:
    return msgspec.json.encode({"error": {"message": message, "type": type_, "param": param, "code": code}})


def gateway_error_response(exc: GatewayError) -> Response:
    return Response(
        error_body(exc.message, exc.type, exc.param, exc.code),
        status_code=exc.status,
        headers=exc.headers,
        media_type="application/json",
    )


async def on_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return gateway_error_response(exc)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
    message = {404: f"No route for {request.method} {request.url.path}.", 405: "Method not allowed."}.get(
        exc.status_code, str(exc.detail)
    )
    return Response(
        error_body(message, kind, None, None),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
        media_type="application/json",
    )


async def on_unexpected(request: Request, exc: Exception) -> Response:
    # The stack trace goes to the operator's log, never to the client.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response(
        error_body("The gateway hit an internal error; the operator's log has the details.", "server_error"),
        status_code=500,
        media_type="application/json",
    )
