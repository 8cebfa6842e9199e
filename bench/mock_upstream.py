"""A fast mock of an OpenAI-compatible server, for benchmarks only.

Why so bare: the benchmark measures what the gateway adds on top of its upstream, so the
upstream must cost as little as possible, or its own cost would hide the gateway's. It is
therefore a raw asyncio protocol on uvloop with httptools (the C parser uvicorn uses), not
a web framework: one process, no routing beyond the path, responses built once and cached.

    POST /v1/chat/completions   {"stream": false}  → one chat.completion with usage
    POST /v1/chat/completions   {"stream": true}   → `chunks` content chunks (default 16),
        a final chunk with finish_reason, a usage-only chunk when
        `stream_options.include_usage` is true, then `data: [DONE]`
    GET  /v1/models, /health    → small JSON

`max_tokens` (or `max_completion_tokens`) sets how many content chunks a stream sends, so
a client can pick the stream length per request. Each SSE event goes out as its own HTTP
chunk (chunked transfer encoding), as a real engine would send it.

    python bench/mock_upstream.py --port 0     # prints "mock upstream listening on PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from functools import cache

import httptools
import msgspec
import uvloop

MODEL = "mock"
DEFAULT_CHUNKS = 16
MAX_CHUNKS = 4096
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def _http(status: str, content_type: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status.encode()
        + b"\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


@cache
def completion_response(tokens: int) -> bytes:
    """A non-streaming chat completion: `tokens` words of content and matching usage."""
    body = _encode(
        {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 1700000000,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": " ".join(["token"] * tokens)},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": tokens, "total_tokens": 12 + tokens},
        }
    )
    return _http("200 OK", b"application/json", body)


def _chunk(delta: dict, finish: str | None = None, usage: dict | None = None, choices: bool = True) -> bytes:
    event: dict = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1700000000, "model": MODEL}
    event["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}] if choices else []
    if usage is not None:
        event["usage"] = usage
    data = b"data: " + _encode(event) + b"\n\n"
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@cache
def stream_response(tokens: int, include_usage: bool) -> tuple[bytes, ...]:
    """A streamed completion as separate writes: headers, one HTTP chunk per SSE event."""
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    parts = [head, _chunk({"role": "assistant", "content": ""})]
    parts += [_chunk({"content": " token" if i else "token"}) for i in range(tokens)]
    parts.append(_chunk({}, finish="stop"))
    if include_usage:
        usage = {"prompt_tokens": 12, "completion_tokens": tokens, "total_tokens": 12 + tokens}
        parts.append(_chunk({}, usage=usage, choices=False))
    done = b"data: [DONE]\n\n"
    parts.append(f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n")
    return tuple(parts)


MODELS = _http("200 OK", b"application/json", b'{"object":"list","data":[{"id":"mock","object":"model"}]}')
HEALTH = _http("200 OK", b"application/json", b'{"status":"ok"}')
NOT_FOUND = _http("404 Not Found", b"application/json", b'{"error":{"message":"not found"}}')
BAD_REQUEST = _http("400 Bad Request", b"application/json", b'{"error":{"message":"body is not JSON"}}')


class MockProtocol(asyncio.Protocol):
    """One connection: parse requests with httptools, answer from the cache."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        path, body = self.url.split(b"?", 1)[0], b"".join(self.body)
        self.url, self.body = b"", []
        if path.endswith(b"/chat/completions"):
            for part in self._chat(body):
                self.transport.write(part)
        elif path.endswith(b"/models"):
            self.transport.write(MODELS)
        elif path in (b"/health", b"/healthz"):
            self.transport.write(HEALTH)
        else:
            self.transport.write(NOT_FOUND)
        if not self.parser.should_keep_alive():
            self.transport.close()

    def _chat(self, body: bytes) -> tuple[bytes, ...]:
        try:
            request = _decode(body)
        except msgspec.DecodeError:
            return (BAD_REQUEST,)
        if not isinstance(request, dict):
            return (BAD_REQUEST,)
        wanted = request.get("max_completion_tokens") or request.get("max_tokens") or DEFAULT_CHUNKS
        tokens = max(1, min(int(wanted), MAX_CHUNKS))
        if request.get("stream"):
            options = request.get("stream_options") or {}
            return stream_response(tokens, bool(options.get("include_usage")))
        return (completion_response(tokens),)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(MockProtocol, host, port, backlog=1024, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(f"mock upstream listening on {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback only: benchmarks never leave the machine")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        parser.error("the mock listens on loopback addresses only")
    try:
        uvloop.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
