"""The two dialects spoken on `/v1`: OpenAI's and Mistral's.

Both share the paths and most fields; they differ in a few request fields (normalised by
`ChatRequest.normalise`), in how reasoning and tool-call ids come back, and in the error
shapes their SDKs parse. One small translator per dialect turns the engines' internal
(OpenAI-shaped) output into what that dialect's clients expect.

Telling them apart without breaking either: an explicit `x-souverain-dialect` header wins;
otherwise a `user-agent` naming Mistral (the official SDKs' do), or a body that uses a
field only Mistral's API has (`random_seed`, `safe_prompt`, `prompt_mode`,
`tool_choice: "any"`), selects Mistral. Everything else is OpenAI.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec
from starlette.datastructures import Headers
from starlette.responses import Response

from souverain.api.errors import error_body
from souverain.chat import ChatRequest
from souverain.engines.translators.mistral import nine_char_id
from souverain.errors import GatewayError, ValidationFailed

_encode = msgspec.json.Encoder().encode


class Dialect(Protocol):
    name: str

    def error(self, exc: GatewayError) -> Response: ...

    def completion(self, result: dict[str, Any]) -> dict[str, Any]: ...

    def chunk(self, chunk: dict[str, Any]) -> dict[str, Any]: ...


class OpenAIDialect:
    """The engines already speak it; only errors need shaping."""

    name = "openai"

    def error(self, exc: GatewayError) -> Response:
        return Response(
            error_body(exc.message, exc.type, exc.param, exc.code),
            status_code=exc.status,
            headers=exc.headers,
            media_type="application/json",
        )

    def completion(self, result: dict[str, Any]) -> dict[str, Any]:
        return result

    def chunk(self, chunk: dict[str, Any]) -> dict[str, Any]:
        return chunk


class MistralDialect:
    """Mistral's shapes, as the official `mistralai` SDK parses them.

    - Validation errors: 422 `{"detail": [{"loc", "msg", "type"}]}` (the SDK's
      `HTTPValidationError`); other errors: `{"object": "error", "message", "type",
      "param", "code"}` with the status.
    - Reasoning: `content` becomes `[{"type": "thinking", "thinking": [{"type": "text",
      "text": ...}]}, {"type": "text", "text": ...}]`; while streaming, thinking arrives as
      a thinking chunk in `delta.content`, the answer as plain strings.
    - Tool-call ids: nine alphanumerics; foreign ids are mapped deterministically.
    """

    name = "mistral"

    def error(self, exc: GatewayError) -> Response:
        if isinstance(exc, ValidationFailed):
            detail = [{"loc": ["body", *exc.loc], "msg": exc.message, "type": "value_error"}]
            return Response(_encode({"detail": detail}), status_code=422, media_type="application/json")
        body = {"object": "error", "message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}
        return Response(_encode(body), status_code=exc.status, headers=exc.headers, media_type="application/json")

    def completion(self, result: dict[str, Any]) -> dict[str, Any]:
        for choice in result.get("choices", []):
            _mistral_message(choice.get("message") or {}, streaming=False)
        return result

    def chunk(self, chunk: dict[str, Any]) -> dict[str, Any]:
        for choice in chunk.get("choices", []):
            _mistral_message(choice.get("delta") or {}, streaming=True)
        return chunk


def _mistral_message(message: dict[str, Any], *, streaming: bool) -> None:
    reasoning = message.pop("reasoning_content", None)
    message.pop("reasoning", None)
    if reasoning:
        thinking = {"type": "thinking", "thinking": [{"type": "text", "text": reasoning}]}
        text = message.get("content")
        if streaming:
            message["content"] = [thinking] + ([{"type": "text", "text": text}] if text else [])
        else:
            message["content"] = [thinking, {"type": "text", "text": text or ""}]
    for call in message.get("tool_calls") or []:
        call["id"] = nine_char_id(call.get("id"))


OPENAI = OpenAIDialect()
MISTRAL = MistralDialect()


def from_headers(headers: Headers) -> Dialect:
    explicit = headers.get("x-souverain-dialect", "").lower()
    if explicit in ("openai", "mistral"):
        return MISTRAL if explicit == "mistral" else OPENAI
    # The official SDKs send `mistral-client-python/3.x` (older: `... mistralai`).
    return MISTRAL if "mistral" in headers.get("user-agent", "").lower() else OPENAI


def refine(dialect: Dialect, headers: Headers, chat: ChatRequest) -> Dialect:
    """After parsing: a body with Mistral-only fields is Mistral unless a header said otherwise."""
    if dialect is OPENAI and "x-souverain-dialect" not in headers and chat.uses_mistral_fields():
        return MISTRAL
    return dialect
