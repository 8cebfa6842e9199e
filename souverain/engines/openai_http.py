"""An engine that forwards to any OpenAI-compatible HTTP server.

vLLM, TGI, llama-server, llama-cpp-python, Ollama and Mistral's API all speak a dialect
of OpenAI's chat completions, each with its own differences and abilities. The flavor's
translator (`souverain/engines/translators/`) writes the exact body, translating or
refusing what the upstream cannot do, before it is sealed. Connections are pooled per
engine; streams are relayed chunk by chunk as they arrive, never buffered. Answers are
checked for shape; an upstream failure reaches the caller as its kind (400, 429, 502,
504), its body (validation dumps, file paths) only the operator's log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx
import msgspec
from httpx_aiohttp import HttpxAiohttpClient

from souverain.chat import ChatRequest
from souverain.config import OpenAIHTTPModel
from souverain.engines.base import Load
from souverain.engines.translators import target_for, translator_for
from souverain.errors import (
    GatewayError,
    InvalidRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from souverain.outbound import Outbound, Sealed

log = logging.getLogger("souverain.engines.openai_http")
_JSON = {"content-type": "application/json"}


class OpenAIHTTPEngine(Load):
    kind = "openai_http"

    def __init__(self, config: OpenAIHTTPModel) -> None:
        self.config = config
        self._base = config.base_url.rstrip("/")
        # What clients are told of this upstream: its route, never its address (the log
        # has that). An HTTP model without a route is on the built-in `undeclared` one.
        self._label = f"the upstream of route {config.route or 'undeclared'!r}"
        self._translator = translator_for(config.flavor)
        self._target = target_for(config)
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = HttpxAiohttpClient(
            headers=headers,
            timeout=httpx.Timeout(config.read_timeout_s, connect=config.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=config.max_connections, max_keepalive_connections=config.max_connections
            ),
            trust_env=False,  # no proxy or netrc picked up behind the operator's back
        )
        self._inflight = 0
        self._generated = 0

    async def start(self) -> None:
        """Nothing to load: readiness of the upstream is checked per request."""

    async def close(self) -> None:
        await self._client.aclose()

    @property
    def state(self) -> str:
        return "ready"

    @property
    def error(self) -> str | None:
        return None  # readiness of the upstream is per request (probe, routing health)

    @property
    def restarts(self) -> int:
        return 0  # nothing here to restart: the upstream is someone else's process

    ready_since = 0.0  # readiness is judged per request (probes, the circuit breaker)

    @property
    def supports_embeddings(self) -> bool:
        return self.config.embeddings

    async def probe(self) -> bool:
        """GET /models answers (any status below 500) within the connect timeout."""
        try:
            response = await self._client.get(f"{self._base}/models", timeout=self.config.connect_timeout_s)
        except httpx.HTTPError:
            return False
        return response.status_code < 500

    # -- translation: the flavor's translator, before anything is sealed -----------
    def translate(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The body to send upstream, in the dialect of this engine's flavor (raises
        `Unsupported` for what the upstream cannot do, before anything is sent)."""
        return self._translator.chat(request, self._target, stream=stream)

    def outbound(self, request: ChatRequest, *, stream: bool) -> Outbound:
        return Outbound("stream" if stream else "chat", self.translate(request, stream=stream))

    def outbound_embed(self, texts: list[str]) -> Outbound:
        return Outbound("embed", self._translator.embed(texts, self._target))

    # -- calls: each sends a sealed payload as it is -----------------------------------
    async def chat(self, sealed: Sealed) -> dict[str, Any]:
        body = sealed.body_for("chat")
        self._inflight += 1
        try:
            response = await self._send("/chat/completions", body, sealed.headers)
            data = self._json(response)
        finally:
            self._inflight -= 1
        choices = data.get("choices") if isinstance(data, dict) else None
        if (
            not isinstance(choices, list)
            or not choices
            or not all(isinstance(c, dict) and isinstance(c.get("message"), dict) for c in choices)
        ):
            raise self._shape("a chat completion without choices", data)
        assert isinstance(data, dict)
        data["model"] = self.config.name
        for choice in choices:
            _normalise_content(choice["message"])
            _normalise_finish(choice)
        usage = data.get("usage")
        if not isinstance(usage, dict):
            data["usage"] = usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        self._generated += _int(usage.get("completion_tokens"))
        return data

    async def stream(self, sealed: Sealed) -> AsyncGenerator[dict[str, Any], None]:
        body = sealed.body_for("stream")
        self._inflight += 1
        try:
            req = self._client.build_request(
                "POST", f"{self._base}/chat/completions", content=body, headers={**_JSON, **sealed.headers}
            )
            try:
                response = await self._client.send(req, stream=True)
            except httpx.HTTPError as exc:
                raise _transport_error(self._label, self._base, exc) from None
            try:
                if response.status_code >= 400:
                    await response.aread()
                    raise self._status_error(response)
                # Content chunks are relayed the moment they arrive. Only the chunk that
                # carries finish_reason waits, for the usage that upstreams send after it,
                # so that our final chunk carries usage as the API promises.
                usage: dict[str, Any] | None = None
                final: dict[str, Any] | None = None
                seen: dict[str, Any] | None = None
                pieces = 0  # content chunks: the estimate for upstreams that report no usage
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    try:
                        chunk = msgspec.json.decode(payload)
                    except msgspec.DecodeError:
                        raise UpstreamError(f"{self._label} sent a malformed stream event") from None
                    if not isinstance(chunk, dict):
                        continue
                    if isinstance(chunk.get("usage"), dict):
                        usage = chunk["usage"]
                    choices = chunk.get("choices")
                    if not choices:
                        continue  # the usage-only chunk: folded into our final one
                    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
                        raise self._shape("a stream chunk without choices", chunk)
                    chunk["model"] = self.config.name
                    for choice in choices:
                        _normalise_finish(choice)
                        delta = choice.get("delta")
                        if isinstance(delta, dict):
                            _normalise_content(delta)
                            pieces += bool(delta.get("content") or delta.get("tool_calls"))
                    if final is not None:
                        yield final
                        final = None
                    seen = chunk
                    if any(c.get("finish_reason") for c in choices):
                        final = chunk
                    else:
                        yield chunk
                if seen is None:
                    raise UpstreamError(f"{self._label} closed the stream without a chunk")
                if final is None:
                    final = {
                        "id": seen.get("id", ""),
                        "object": "chat.completion.chunk",
                        "model": self.config.name,
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    }
                # No usage reported (llama-cpp-python's server never sends it): one token per
                # content chunk, which is how token-by-token servers stream; prompt unknown.
                final["usage"] = usage or {"prompt_tokens": 0, "completion_tokens": pieces, "total_tokens": pieces}
                self._generated += _int(final["usage"].get("completion_tokens"))
                yield final
            except httpx.TimeoutException:
                raise UpstreamTimeout(f"{self._label} stopped sending") from None
            except httpx.HTTPError as exc:
                raise UpstreamError(f"{self._label} broke the stream: {type(exc).__name__}") from None
            finally:
                await response.aclose()
        finally:
            self._inflight -= 1

    async def embed(self, sealed: Sealed) -> tuple[list[list[float]], int]:
        response = await self._send("/embeddings", sealed.body_for("embed"), sealed.headers)
        data = self._json(response)
        vectors = _vectors(data, len(msgspec.json.decode(sealed.body)["input"]))
        if vectors is None:
            raise self._shape("embeddings of an unexpected shape (one flat list of numbers per input expected)", data)
        usage = data.get("usage") if isinstance(data, dict) else None
        return vectors, _int(usage.get("prompt_tokens")) if isinstance(usage, dict) else 0

    async def _send(self, path: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        """POST a sealed body with the headers sealed with it."""
        try:
            response = await self._client.request(
                "POST", f"{self._base}{path}", content=body, headers={**_JSON, **headers}
            )
        except httpx.HTTPError as exc:
            raise _transport_error(self._label, self._base, exc) from None
        if response.status_code >= 400:
            raise self._status_error(response)
        return response

    # -- what the caller is told of an upstream's failure: its kind; the log: its detail
    def _json(self, response: httpx.Response) -> Any:
        try:
            return msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            log.warning(
                "%s at %s answered %s with a body that is not JSON: %r",
                self._label,
                self._base,
                response.status_code,
                response.content[:500],
            )
            raise UpstreamError(f"{self._label} answered with a body that is not JSON") from None

    def _shape(self, what: str, data: Any) -> UpstreamError:
        log.warning("%s at %s answered %s: %.500s", self._label, self._base, what, repr(data))
        return UpstreamError(f"{self._label} answered {what}", code="upstream_bad_response")

    def _status_error(self, response: httpx.Response) -> GatewayError:
        """Map an upstream error status to ours. The upstream's body (its validation dump,
        its file paths) goes to the log only; the caller gets the kind of failure."""
        status = response.status_code
        code = _error_code(response.content)
        log.warning(
            "%s at %s answered %s: %.2000s",
            self._label,
            self._base,
            status,
            response.content.decode("utf-8", "replace"),
        )
        if status == 400 and code == "context_length_exceeded":
            return InvalidRequest(
                f"the request does not fit the context window of model {self.config.name!r}; "
                "send fewer or shorter messages, or a lower max_tokens",
                param="messages",
                code="context_length_exceeded",
            )
        if status in (400, 413, 422):
            return InvalidRequest(
                f"{self._label} rejected the request as invalid (HTTP {status}); the gateway's log has its reason",
                code="upstream_rejected",
            )
        if status == 429:
            return UpstreamRateLimited(
                f"{self._label} is rate limiting the gateway (HTTP 429)", headers=_retry_after(response)
            )
        if status in (401, 403):
            return UpstreamError("the upstream rejected the gateway's credentials; check the model's api_key")
        if status == 404:
            return UpstreamError(
                f"{self._label} does not know this model or path (HTTP 404); "
                "check the model's base_url and upstream_model"
            )
        if status in (408, 504):
            return UpstreamTimeout(f"{self._label} timed out (HTTP {status})")
        return UpstreamError(f"{self._label} failed (HTTP {status})")


def _transport_error(label: str, base: str, exc: httpx.HTTPError) -> GatewayError:
    """Could not connect: 502 (the aiohttp transport reports a refused connection as a
    connect timeout). No answer in time once connected: 504. The client is told the route
    (`label`) and the kind of failure; the address goes to the operator's log only."""
    log.warning("%s at %s: %s", label, base, type(exc).__name__)
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return UpstreamTimeout(f"{label} did not answer in time")
    return UpstreamError(f"cannot reach {label}: {type(exc).__name__}")


def _error_code(content: bytes) -> str | None:
    """The `code` of an OpenAI-style error body, if it has one."""
    try:
        body = json.loads(content)
    except ValueError:
        return None
    err = body.get("error", body) if isinstance(body, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    return code if isinstance(code, str) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _vectors(data: Any, count: int) -> list[list[float]] | None:
    """One embedding per input, in input order, each a flat list of numbers of one
    length; None for any other shape (token-level embeddings from a server without
    pooling, a missing index, a count that differs from the inputs)."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) != count:
        return None
    by_index: dict[int, list[float]] = {}
    for item in items:
        if not isinstance(item, dict):
            return None
        index, vector = item.get("index", len(by_index)), item.get("embedding")
        if not isinstance(index, int) or not isinstance(vector, list) or not vector:
            return None
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vector):
            return None
        by_index[index] = [float(x) for x in vector]
    if sorted(by_index) != list(range(count)) or len({len(v) for v in by_index.values()}) != 1:
        return None
    return [by_index[i] for i in range(count)]


def _retry_after(response: httpx.Response) -> dict[str, str]:
    value = response.headers.get("retry-after")
    return {"Retry-After": value} if value else {}


# Finish reasons some upstreams use that OpenAI's enum lacks: Mistral's API says
# `model_length` when the model's context (not max_tokens) ran out.
_FINISH = {"model_length": "length"}


def _normalise_finish(choice: dict[str, Any]) -> None:
    reason = choice.get("finish_reason")
    if isinstance(reason, str) and reason in _FINISH:
        choice["finish_reason"] = _FINISH[reason]


def _normalise_content(message: dict[str, Any]) -> None:
    """Bring upstream shapes to the internal one: Mistral's typed content chunks become a
    string plus `reasoning_content`; vLLM's `reasoning` (≥ 0.11) is renamed likewise;
    llama-cpp-python's deprecated `function_call` twin of `tool_calls` is dropped."""
    if message.get("tool_calls"):
        message.pop("function_call", None)
    if "reasoning" in message:
        reasoning = message.pop("reasoning")
        if reasoning:
            message["reasoning_content"] = reasoning
    content = message.get("content")
    if isinstance(content, list):
        texts: list[str] = []
        thinking: list[str] = []
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text":
                texts.append(part.get("text", ""))
            elif part.get("type") == "thinking":
                thinking.extend(p.get("text", "") for p in part.get("thinking", []) if isinstance(p, dict))
        message["content"] = "".join(texts)
        if thinking:
            message["reasoning_content"] = "".join(thinking)
