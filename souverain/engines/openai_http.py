"""An engine that forwards to any OpenAI-compatible HTTP server.

vLLM, TGI, llama-server, Ollama and Mistral's API all speak a dialect of OpenAI's chat
completions, each with its own differences. One translator per upstream `flavor` rewrites
the fields the target understands differently (see docs/dialects.md); everything else
passes through. Connections are pooled per engine; streams are relayed chunk by chunk as
they arrive, never buffered; every upstream failure becomes a clear 502/504.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
import msgspec
from httpx_aiohttp import HttpxAiohttpClient

from souverain.chat import ChatRequest
from souverain.config import OpenAIHTTPModel
from souverain.engines.reasoning import SAFE_PROMPT
from souverain.errors import GatewayError, InvalidRequest, UpstreamError, UpstreamRateLimited, UpstreamTimeout
from souverain.outbound import Outbound, Sealed

_ALNUM = string.ascii_letters + string.digits
log = logging.getLogger("souverain.engines.openai_http")
_JSON = {"content-type": "application/json"}


class OpenAIHTTPEngine:
    kind = "openai_http"

    def __init__(self, config: OpenAIHTTPModel) -> None:
        self.config = config
        self._base = config.base_url.rstrip("/")
        # What clients are told of this upstream: its route, never its address (the log
        # has that). An HTTP model without a route is on the built-in `undeclared` one.
        self._label = f"the upstream of route {config.route or 'undeclared'!r}"
        self._upstream_model = config.upstream_model or config.name
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
    def queue_depth(self) -> int:
        return self._inflight

    @property
    def generated_tokens(self) -> int:
        return self._generated

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

    # -- translation -----------------------------------------------------------------
    def translate(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The body to send upstream, in the dialect of this engine's flavor."""
        if request.tools and not self.config.tools:
            raise InvalidRequest(
                f"model {self.config.name!r} is served without tool support", param="tools", code="tools_unsupported"
            )
        body: dict[str, Any] = msgspec.to_builtins(request)
        body["model"] = self._upstream_model
        body["stream"] = stream
        body.pop("stream_options", None)
        flavor = self.config.flavor
        if stream and flavor in ("openai", "vllm", "llama-server", "tgi"):
            body["stream_options"] = {"include_usage": True}
        if flavor == "mistral":
            _to_mistral(body)
            return body
        self._mistral_fields_elsewhere(body)
        budget = body.pop("reasoning_budget_tokens", None)
        if budget is not None:
            if flavor == "vllm":
                body["thinking_token_budget"] = budget
            elif flavor == "llama-server":
                body["reasoning_budget_tokens"] = budget
            else:
                raise InvalidRequest(
                    f"the upstream of model {self.config.name!r} ({flavor}) has no per-request reasoning budget; "
                    "use reasoning_effort",
                    param="reasoning_budget_tokens",
                    code="reasoning_budget_unsupported",
                )
        if flavor == "vllm":
            if "max_tokens" in body:
                body.setdefault("max_completion_tokens", body["max_tokens"])
                del body["max_tokens"]
        elif flavor in ("ollama", "tgi", "llama-server"):
            if "max_completion_tokens" in body:
                body["max_tokens"] = body.pop("max_completion_tokens")
        return body

    def _mistral_fields_elsewhere(self, body: dict[str, Any]) -> None:
        """Do for a non-Mistral upstream what Mistral's API does server-side."""
        prefix = []
        if body.pop("safe_prompt", False):
            prefix.append({"role": "system", "content": SAFE_PROMPT})
        if body.pop("prompt_mode", None) == "reasoning":
            if not self.config.reasoning_system_prompt:
                raise InvalidRequest(
                    f"prompt_mode 'reasoning' needs `reasoning_system_prompt` configured for model {self.config.name!r}",
                    param="prompt_mode",
                    code="reasoning_unsupported",
                )
            prefix.append({"role": "system", "content": self.config.reasoning_system_prompt})
        if prefix:
            body["messages"] = prefix + body["messages"]

    def outbound(self, request: ChatRequest, *, stream: bool) -> Outbound:
        return Outbound("stream" if stream else "chat", self.translate(request, stream=stream))

    def outbound_embed(self, texts: list[str]) -> Outbound:
        if not self.config.embeddings:
            raise InvalidRequest(f"model {self.config.name!r} does not serve embeddings", param="model")
        return Outbound("embed", {"model": self._upstream_model, "input": texts})

    # -- calls: each sends a sealed payload as it is -----------------------------------
    async def chat(self, sealed: Sealed) -> dict[str, Any]:
        body = sealed.body_for("chat")
        self._inflight += 1
        try:
            response = await self._send("/chat/completions", body)
            data = _json(response)
        finally:
            self._inflight -= 1
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise UpstreamError(f"{self._label} answered without choices")
        data["model"] = self.config.name
        for choice in data["choices"]:
            message = choice.get("message") or {}
            _normalise_content(message)
        data.setdefault("usage", {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
        self._generated += int(data["usage"].get("completion_tokens") or 0)
        return data

    async def stream(self, sealed: Sealed) -> AsyncGenerator[dict[str, Any], None]:
        body = sealed.body_for("stream")
        self._inflight += 1
        try:
            req = self._client.build_request("POST", f"{self._base}/chat/completions", content=body, headers=_JSON)
            try:
                response = await self._client.send(req, stream=True)
            except httpx.HTTPError as exc:
                raise _transport_error(self._label, self._base, exc) from None
            try:
                if response.status_code >= 400:
                    await response.aread()
                    raise _status_error(response)
                # Content chunks are relayed the moment they arrive. Only the chunk that
                # carries finish_reason waits, for the usage that upstreams send after it,
                # so that our final chunk carries usage as the API promises.
                usage: dict[str, Any] | None = None
                final: dict[str, Any] | None = None
                seen: dict[str, Any] | None = None
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
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    choices = chunk.get("choices")
                    if not choices:
                        continue  # the usage-only chunk: folded into our final one
                    chunk["model"] = self.config.name
                    for choice in choices:
                        _normalise_content(choice.get("delta") or {})
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
                    final = {"id": seen.get("id", ""), "object": "chat.completion.chunk", "model": self.config.name,
                             "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                final["usage"] = usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
                self._generated += int(final["usage"].get("completion_tokens") or 0)
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
        response = await self._send("/embeddings", sealed.body_for("embed"))
        data = _json(response)
        try:
            items = sorted(data["data"], key=lambda d: d["index"])
            return [d["embedding"] for d in items], int((data.get("usage") or {}).get("prompt_tokens", 0))
        except (KeyError, TypeError):
            raise UpstreamError(f"{self._label} answered embeddings in an unexpected shape") from None

    async def _send(self, path: str, body: bytes) -> httpx.Response:
        try:
            response = await self._client.request("POST", f"{self._base}{path}", content=body, headers=_JSON)
        except httpx.HTTPError as exc:
            raise _transport_error(self._label, self._base, exc) from None
        if response.status_code >= 400:
            raise _status_error(response)
        return response



def _transport_error(label: str, base: str, exc: httpx.HTTPError) -> GatewayError:
    """Could not connect: 502 (the aiohttp transport reports a refused connection as a
    connect timeout). No answer in time once connected: 504. The client is told the route
    (`label`) and the kind of failure; the address goes to the operator's log only."""
    log.warning("%s at %s: %s", label, base, type(exc).__name__)
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return UpstreamTimeout(f"{label} did not answer in time")
    return UpstreamError(f"cannot reach {label}: {type(exc).__name__}")


def _json(response: httpx.Response) -> Any:
    try:
        return msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        raise UpstreamError(f"upstream answered {response.status_code} with a body that is not JSON") from None


def _status_error(response: httpx.Response) -> GatewayError:
    """Map an upstream error status to ours, keeping the upstream's message."""
    detail = ""
    try:
        body = json.loads(response.content)
        err = body.get("error", body) if isinstance(body, dict) else body
        detail = err.get("message") or err.get("detail") if isinstance(err, dict) else str(err)
    except ValueError:
        detail = response.text[:200]
    message = f"upstream answered {response.status_code}: {detail or response.reason_phrase}"
    if response.status_code in (400, 404, 422):
        return InvalidRequest(message, code="upstream_rejected")
    if response.status_code == 429:
        return UpstreamRateLimited(message, headers=_retry_after(response))
    if response.status_code in (401, 403):
        return UpstreamError("the upstream rejected the gateway's credentials; check the model's api_key")
    if response.status_code == 504:
        return UpstreamTimeout(message)
    return UpstreamError(message)


def _retry_after(response: httpx.Response) -> dict[str, str]:
    value = response.headers.get("retry-after")
    return {"Retry-After": value} if value else {}


def _normalise_content(message: dict[str, Any]) -> None:
    """Bring upstream shapes to the internal one: Mistral's typed content chunks become a
    string plus `reasoning_content`; vLLM's `reasoning` (≥ 0.11) is renamed likewise."""
    if "reasoning" in message:
        reasoning = message.pop("reasoning")
        if reasoning:
            message["reasoning_content"] = reasoning
    content = message.get("content")
    if isinstance(content, list):
        texts, thinking = [], []
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


def _to_mistral(body: dict[str, Any]) -> None:
    """Internal (OpenAI-named) fields → Mistral's API. Mistral has no token budget."""
    if body.get("reasoning_budget_tokens") is not None:
        raise InvalidRequest(
            "Mistral's API has no per-request reasoning budget; use reasoning_effort",
            param="reasoning_budget_tokens",
            code="reasoning_budget_unsupported",
        )
    if "seed" in body:
        body["random_seed"] = body.pop("seed")
    if body.get("tool_choice") == "required":
        body["tool_choice"] = "any"
    if "max_completion_tokens" in body:
        body["max_tokens"] = body.pop("max_completion_tokens")
    body.pop("user", None)
    # Mistral accepts only 9-character alphanumeric tool-call ids; map foreign ids consistently.
    mapping: dict[str, str] = {}

    def nine(old: str | None) -> str:
        if old and len(old) == 9 and old.isalnum():
            return old
        key = old or ""
        if key not in mapping:
            mapping[key] = "".join(secrets.choice(_ALNUM) for _ in range(9))
        return mapping[key]

    for message in body.get("messages", []):
        for call in message.get("tool_calls") or []:
            call["id"] = nine(call.get("id"))
        if message.get("role") == "tool":
            message["tool_call_id"] = nine(message.get("tool_call_id"))
