"""Recording upstreams for routing tests: real HTTP servers on loopback that the gateway
forwards to, keep every body they receive (the evidence of what left the gateway), and can
be stopped, slowed and restarted on the same port to inject faults.

Shared by the routing tests; tests import helpers from here, never from each other.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

PIPES = Path(__file__).resolve().parents[1] / "examples" / "pipes" / "pipes.yaml"


def _event(chunk: dict) -> bytes:
    """One server-sent event carrying `chunk`."""
    return ("data: " + json.dumps(chunk) + "\n\n").encode()


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _completion(id_: str, model: str, content: str, usage: dict[str, int], finish_reason: str = "stop") -> JSONResponse:
    """A one-choice chat completion."""
    return JSONResponse(
        {
            "id": id_,
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}
            ],
            "usage": usage,
        }
    )


def _embeddings(model: str, items: list[dict], count: int) -> JSONResponse:
    """An embeddings answer with `items`, `count` inputs' tokens used."""
    return JSONResponse(
        {"object": "list", "model": model, "data": items, "usage": {"prompt_tokens": count, "total_tokens": count}}
    )


def _serve(app: Starlette, sock: socket.socket, **config: object) -> tuple[uvicorn.Server, threading.Thread]:
    """`app` served on `sock` from a daemon thread."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", **config))
    thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
    thread.start()
    return server, thread


def _app(chat, embeddings) -> Starlette:
    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
        ]
    )


def one_route(name: str, url: str, route: str, *, routing: str = "") -> str:
    """A gateway configuration serving `name` from the upstream at `url` over `route`;
    `routing` is extra YAML lines for that section (indented)."""
    return f"""
routing:
  pipes: {PIPES}
{routing}models:
  - name: {name}
    engine: openai_http
    base_url: {url}
    route: {route}
"""


def two_routes(onprem_url: str, cloud_url: str, *, routing: str = "", onprem: str = "") -> str:
    """A gateway configuration serving `assistant` over two routes: on-premises first
    (`a-onprem`, may carry personal data under the default policy), then a US
    hyperscaler's EU region (`c-azure-eu`, may not). `routing` and `onprem` are extra
    YAML lines for those sections (indented)."""
    return f"""
routing:
  pipes: {PIPES}
  retries: 1
{routing}models:
  - name: assistant-onprem
    serves: assistant
    engine: openai_http
    base_url: {onprem_url}
    route: a-onprem
    priority: 0
    embeddings: true
{onprem}  - name: assistant-cloud
    serves: assistant
    engine: openai_http
    base_url: {cloud_url}
    route: c-azure-eu
    priority: 1
    embeddings: true
"""


class Upstream:
    """A mock OpenAI-compatible upstream (fine for fault injection) that keeps every body
    it receives, and can be stopped, slowed and restarted on the same port.

    It answers `/v1/chat/completions` (streamed or not) and `/v1/embeddings`; `received`
    holds the raw bodies of both, in arrival order, including those it was too slow for,
    and `headers` the headers of each, in the same order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.received: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.delay = 0.0
        self.echo = False  # answer with the last message's text, in 3-character chunks
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.server: uvicorn.Server | None = None
        self.start()

    async def _receive(self, request: Request) -> dict:
        """The request's body, kept as received (even when too slow to answer it)."""
        raw = await request.body()
        self.headers.append(dict(request.headers))
        self.received.append(raw)
        if self.delay:
            await asyncio.sleep(self.delay)
        return json.loads(raw)

    async def chat(self, request: Request) -> Response:
        body = await self._receive(request)
        text = f"{self.name} says ok"
        if self.echo:
            text = f"Noted: {body['messages'][-1]['content']}"
        if body.get("stream"):

            async def events():
                for piece in [text[i : i + 3] for i in range(0, len(text), 3)]:
                    yield _event(
                        {
                            "id": "u",
                            "object": "chat.completion.chunk",
                            "model": body["model"],
                            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                        }
                    )
                yield _event(
                    {
                        "id": "u",
                        "object": "chat.completion.chunk",
                        "model": body["model"],
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                        "usage": _usage(3, 2),
                    }
                )
                yield b"data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        return _completion("u", body["model"], text, _usage(3, 2))

    async def embeddings(self, request: Request) -> Response:
        body = await self._receive(request)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        items = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(len(inputs))]
        return _embeddings(body["model"], items, len(inputs))

    def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.server, self.thread = _serve(_app(self.chat, self.embeddings), sock, timeout_graceful_shutdown=1)
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline
            time.sleep(0.01)

    def stop(self) -> None:
        assert self.server is not None
        self.server.should_exit = True
        self.thread.join(10)


class FaultServer:
    """An upstream that misbehaves on demand: `mode` picks how."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.seen: list[dict] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server, self.thread = _serve(_app(self.chat, self.embeddings), self.sock)

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.seen.append(body)
        if self.mode == "error500":
            return JSONResponse({"error": {"message": "boom"}}, status_code=500)
        if self.mode == "rate_limited":
            return JSONResponse({"error": {"message": "slow down"}}, status_code=429, headers={"retry-after": "7"})
        if self.mode == "validation_dump":  # what a FastAPI server's 422 looks like
            return JSONResponse(
                {
                    "detail": [
                        {
                            "type": "literal_error",
                            "loc": ["body", "response_format", "type"],
                            "msg": "Input should be 'text'",
                            "input": "json_schema",
                            "url": "/srv/app/.venv/lib/python3.11/site-packages/x.py",
                        }
                    ]
                },
                status_code=422,
            )
        if self.mode == "context_full":
            return JSONResponse(
                {
                    "error": {
                        "message": "Requested tokens (900) exceed context window of 512",
                        "type": "invalid_request_error",
                        "param": "messages",
                        "code": "context_length_exceeded",
                    }
                },
                status_code=400,
            )
        if self.mode == "no_choices":
            return JSONResponse({"id": "x", "object": "chat.completion", "choices": []})
        if self.mode == "unauthorized":
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        if self.mode == "hang":
            await asyncio.sleep(30)
        if self.mode == "not_json":
            return Response(b"<html>oops</html>", media_type="text/html")
        if self.mode == "broken_stream":

            async def events():
                yield b'data: {"id":"1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
                yield b"data: {not json\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        finish = "model_length" if self.mode == "model_length" else "stop"
        return _completion("x", body["model"], "fine", _usage(1, 1), finish)

    async def embeddings(self, request: Request) -> Response:
        """Embeddings in the shape `mode` names: `ok`, `token_level` (a vector per token,
        as a server without pooling answers), `short` (one vector fewer than inputs),
        `strings` (numbers as strings), `no_data`."""
        body = await request.json()
        self.seen.append(body)
        count = len(body["input"])
        vector: list = [0.1, 0.2, 0.3]
        items = [{"object": "embedding", "index": i, "embedding": vector} for i in range(count)]
        if self.mode == "token_level":
            items = [{"object": "embedding", "index": i, "embedding": [vector, vector]} for i in range(count)]
        elif self.mode == "short":
            items = items[:-1]
        elif self.mode == "strings":
            items = [{"object": "embedding", "index": i, "embedding": ["0.1", "0.2"]} for i in range(count)]
        elif self.mode == "no_data":
            return JSONResponse({"object": "list", "model": body["model"]})
        return _embeddings(body["model"], items, count)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


def assistant_config(upstream: Upstream, *, state: str = "", rest: str = "") -> str:
    """A gateway configuration serving model `assistant` from `upstream`, with breakers
    that never probe on their own; `state` (a `state:` section, and what goes with it) and
    `rest` (further top-level sections) are YAML text added as they are."""
    return f"""{state}
routing:
  health_interval_s: 0
models:
  - name: assistant
    engine: openai_http
    base_url: http://127.0.0.1:{upstream.port}/v1
{rest}
"""


def shared_state(tmp_path: Path, pg_dsn: str, pg_schema: str) -> str:
    """`state:` in one PostgreSQL schema, and one ledger signing key, for replicas."""
    return f"""
state:
  kind: postgres
  dsn: "{pg_dsn}"
  schema: {pg_schema}
ledger:
  keys: {{provider: file, path: {tmp_path / "ledger-keys"}}}"""
