"""The embedded engine's worker process: one llama.cpp model behind a Unix socket.

llama.cpp is native code; a fault in it (an instruction the CPU or the OS does not allow,
a bug in a kernel, running out of memory) ends the process it runs in. So the model runs
here, in a process of its own that the gateway starts and supervises
(`supervisor.WorkerEngine`), and a crash costs the requests in flight on this model a 502,
never the gateway, its ledger writer or its other routes.

Started as `python -m souverain.engines.worker --socket PATH --model NAME`, with the model's
configuration (a `llamacpp` model entry, JSON) on standard input. It:

1. picks and loads the llama.cpp CPU variant this machine allows (`cpu.py`);
2. loads the model and generates one token as a self-test, so a CPU fault shows at
   start, not on the first user's request;
3. serves on the socket, and reports on standard output, one JSON object a line:
   `{"event": "variant", ...}`, then `{"event": "ready"}` or `{"event": "failed", "error": ...}`.

The protocol on the socket is the gateway's own, not OpenAI's: the request is the
internal `ChatRequest` (already validated and translated by the gateway), the answer is
the engine's chunks as JSON lines, and an error is a `GatewayError` with its class, so the
caller gets exactly the status, `param` and `code` it would get from an in-process engine.

- `GET /health`: `{"state", "error", "queue_depth", "generated_tokens", "variant", "threads", "pid"}`
- `POST /chat`: `{"request": ChatRequest}` → 200 and chunks, one JSON object a line; an
  error before the first chunk is its status and `{"error": {...}}`; an error after it is
  a last line `{"error": {...}}`.
- `POST /embed`: `{"texts": [...]}` → `{"vectors": [...], "tokens": N}`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from souverain.chat import ChatRequest, Message
from souverain.config import LlamaCppModel
from souverain.engines import cpu
from souverain.engines.llamacpp import LlamaCppEngine
from souverain.errors import GatewayError, InvalidRequest

log = logging.getLogger("souverain.engines.worker")


class ChatCall(msgspec.Struct):
    request: ChatRequest


class EmbedCall(msgspec.Struct):
    texts: list[str]


def error_body(exc: GatewayError) -> dict[str, Any]:
    """A `GatewayError` as the supervisor rebuilds it (`supervisor.rebuild_error`)."""
    return {
        "error": {
            "class": type(exc).__name__,
            "message": exc.message,
            "param": exc.param,
            "code": exc.code,
            "headers": exc.headers,
        }
    }


def _error_response(exc: GatewayError) -> Response:
    return Response(msgspec.json.encode(error_body(exc)), status_code=exc.status, media_type="application/json")


def build_app(engine: LlamaCppEngine, variant: str) -> Starlette:
    async def health(request: Request) -> Response:
        body = {
            "state": engine.state,
            "error": engine.error,
            "queue_depth": engine.queue_depth,
            "generated_tokens": engine.generated_tokens,
            "variant": variant,
            "threads": engine.threads,
            "pid": os.getpid(),
        }
        return Response(msgspec.json.encode(body), media_type="application/json")

    async def chat(request: Request) -> Response:
        try:
            call = msgspec.json.decode(await request.body(), type=ChatCall)
        except msgspec.DecodeError as exc:
            return _error_response(InvalidRequest(f"the engine worker could not read the request: {exc}"))
        chunks = engine.stream(call.request)
        try:
            first = await anext(chunks)
        except GatewayError as exc:
            await chunks.aclose()
            return _error_response(exc)

        async def lines() -> AsyncIterator[bytes]:
            try:
                yield msgspec.json.encode(first) + b"\n"
                async for item in chunks:
                    yield msgspec.json.encode(item) + b"\n"
            except GatewayError as exc:
                yield msgspec.json.encode(error_body(exc)) + b"\n"
            finally:
                await chunks.aclose()  # the caller went away: stop generating now

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    async def embed(request: Request) -> Response:
        try:
            call = msgspec.json.decode(await request.body(), type=EmbedCall)
            vectors, tokens = await engine.embed(call.texts)
        except msgspec.DecodeError as exc:
            return _error_response(InvalidRequest(f"the engine worker could not read the request: {exc}"))
        except GatewayError as exc:
            return _error_response(exc)
        return Response(msgspec.json.encode({"vectors": vectors, "tokens": tokens}), media_type="application/json")

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/chat", chat, methods=["POST"]),
            Route("/embed", embed, methods=["POST"]),
        ]
    )


def _event(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


async def self_test(engine: LlamaCppEngine) -> None:
    """Generate one token: a CPU variant that cannot run faults here, at start."""
    request = ChatRequest(model=engine.config.name, messages=[Message(role="user", content="Hi")], max_tokens=1)
    async for _ in engine.stream(request):
        pass


async def serve(socket_path: str, config: LlamaCppModel) -> int:
    import uvicorn

    choice = cpu.choose(cpu.lib_dir())
    _event(event="variant", variant=choice.variant, reason=choice.reason)
    cpu.load(choice)
    engine = LlamaCppEngine(config)
    await engine.start()
    await engine.loaded()
    if engine.state != "ready":
        _event(event="failed", error=engine.error)
        return 3
    try:
        await self_test(engine)
    except GatewayError as exc:
        _event(event="failed", error=f"self-test failed: {exc.message}")
        return 3
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(engine, choice.variant),
            uds=socket_path,
            loop="uvloop",
            http="httptools",
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
    )
    serving = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if serving.done():
            _event(event="failed", error=f"cannot listen on {socket_path}")
            return 3
        await asyncio.sleep(0.01)
    os.chmod(socket_path, 0o600)  # the socket is the gateway's alone
    _event(event="ready", pid=os.getpid(), threads=engine.threads)
    await serving
    await engine.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="souverain-engine-worker")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--model", help="the model's name, for `ps` and logs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="engine worker: %(message)s", stream=sys.stderr)
    config = msgspec.json.decode(sys.stdin.buffer.read(), type=LlamaCppModel)
    try:
        return asyncio.run(serve(args.socket, config))
    except RuntimeError as exc:  # no CPU variant fits, llama-cpp-python missing
        _event(event="failed", error=str(exc))
        return 3


if __name__ == "__main__":
    sys.exit(main())
