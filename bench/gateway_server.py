"""Run the gateway's own ASGI app under a chosen server setup, for bench/run.py and choices.py.

`souverain serve` is what users run and what bench/run.py measures. This launcher builds
the very same app (same Config, KeyStore, Gateway, create_app) but lets the benchmark swap
the one thing under test:

    --server uvicorn   uvicorn + httptools, started with `Server.run`, which installs the
                       uvloop event loop that `loop="uvloop"` asks for. `souverain serve`
                       calls `asyncio.run(server.serve(...))` instead, which silently keeps
                       the stdlib loop; `--loop asyncio` reproduces that.
    --no-nodelay       leave Nagle's algorithm on, as `souverain serve` does: it binds its
                       own socket with proto 0, so the stdlib loop's transports skip
                       TCP_NODELAY on accepted sockets (uvloop sets it regardless). With
                       `--loop asyncio --no-nodelay` this launcher behaves like the shipped
                       command; see docs/benchmarks.md for what each costs.
    --server granian   granian (Rust HTTP server, ASGI interface, uvloop), one worker.

    --client aiohttp   the openai_http engines' httpx.AsyncClient replaced by
                       httpx_aiohttp.HttpxAiohttpClient: the same httpx API on an aiohttp
                       transport, i.e. the one-line change docs/benchmarks.md measures.
    --app minimal      not the gateway: one POST route answering fixed JSON, to measure
                       the HTTP server alone.
    --app proxy        not the gateway: a bare pass-through proxy (Starlette + aiohttp,
                       no auth, no parsing, no metrics) to the first model's base_url,
                       i.e. the floor any Python gateway on this stack starts from.

All print "listening on PORT" and serve /readyz like `souverain serve`. The state
directory (and its API key) comes from SOUVERAIN_STATE_DIR, as for the real command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# A typical non-streaming answer, the size of the mock upstream's.
_FIXED = (
    b'{"id":"chatcmpl-mock","object":"chat.completion","created":1700000000,"model":"mock",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"token token token token"},'
    b'"finish_reason":"stop","logprobs":null}],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16}}'
)


async def _fixed(request: Request) -> Response:
    await request.body()
    return Response(_FIXED, media_type="application/json")


async def _ready(request: Request) -> Response:
    return Response(b'{"status":"ready"}', media_type="application/json")


def _proxy_app(base_url: str) -> Starlette:
    """Forward the body as is and relay the answer as is, streamed or not."""
    import aiohttp
    from starlette.responses import StreamingResponse

    sessions: list[aiohttp.ClientSession] = []  # made on first use: it needs the running loop
    target = base_url.rstrip("/") + "/chat/completions"

    async def forward(request: Request) -> Response:
        if not sessions:
            sessions.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)))
        body = await request.body()
        upstream = await sessions[0].post(target, data=body, headers={"content-type": "application/json"})
        if upstream.content_type != "text/event-stream":
            data = await upstream.read()
            upstream.release()
            return Response(data, status_code=upstream.status, media_type="application/json")

        async def relay():  # type: ignore[no-untyped-def]
            try:
                async for piece in upstream.content.iter_any():
                    yield piece
            finally:
                upstream.release()

        return StreamingResponse(relay(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", forward, methods=["POST"]), Route("/readyz", _ready)])


def build_app() -> Starlette:
    """The app under test, chosen by BENCH_APP and BENCH_CLIENT (granian calls this in
    its worker process, so the choice travels in the environment)."""
    if os.environ.get("BENCH_APP") == "minimal":
        return Starlette(routes=[Route("/v1/chat/completions", _fixed, methods=["POST"]), Route("/readyz", _ready)])
    if os.environ.get("BENCH_APP") == "proxy":
        from souverain.config import load_config

        return _proxy_app(load_config(os.environ.get("SOUVERAIN_CONFIG") or None).models[0].base_url)  # type: ignore[union-attr]

    from souverain.api.app import Gateway, create_app
    from souverain.auth import KeyStore
    from souverain.config import load_config
    from souverain.state import connect, state_dir
    from souverain.state.keys import SqliteKeyTable

    config = load_config(os.environ.get("SOUVERAIN_CONFIG") or None)
    directory = state_dir(config)
    gateway = Gateway(config=config, keys=KeyStore(SqliteKeyTable(connect(directory))), **_ledger(config, directory))
    if os.environ.get("BENCH_CLIENT") == "aiohttp":
        _use_aiohttp_transport(gateway)
    return create_app(gateway)


def _ledger(config: Any, directory: Path) -> dict[str, Any]:
    """Open the request ledger as `souverain serve` does, when this version has one and
    the config enables it, so that every variant does the same work per request."""
    if not getattr(getattr(config, "ledger", None), "enabled", False):
        return {}
    from souverain.ledger import Ledger

    return {"ledger": Ledger.open(config.ledger, state_dir=directory)}


def _use_aiohttp_transport(gateway: object) -> None:
    """Swap each HTTP engine's client for the same httpx API on an aiohttp transport.

    Reaches into a private attribute on purpose: this measures a candidate change to
    souverain/engines/openai_http.py without making it."""
    import httpx
    from httpx_aiohttp import HttpxAiohttpClient

    for engine in gateway.engines.values():  # type: ignore[attr-defined]
        if getattr(engine, "kind", None) != "openai_http":
            continue
        old: httpx.AsyncClient = engine._client
        limit = engine.config.max_connections
        engine._client = HttpxAiohttpClient(
            headers=dict(old.headers),
            timeout=old.timeout,
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            trust_env=False,
        )


def _listen(port: int, nodelay: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)  # queue connections from the moment the port is announced
    return sock


def run_uvicorn(port: int, nodelay: bool, loop: str) -> None:
    import uvicorn

    sock = _listen(port, nodelay)
    print(f"listening on {sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(build_app(), loop=loop, http="httptools", access_log=False, log_level="warning")
    )
    if loop == "asyncio":
        asyncio.run(server.serve(sockets=[sock]))  # what `souverain serve` does
    else:
        server.run(sockets=[sock])  # installs the configured loop first


def run_granian(port: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    if port == 0:  # granian binds by number; find a free one first
        with _listen(0, False) as probe:
            port = probe.getsockname()[1]
    print(f"listening on {port}", flush=True)
    Granian(
        "gateway_server:build_app",
        factory=True,
        working_dir=Path(__file__).resolve().parent,
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        workers=1,
        runtime_threads=1,
        websockets=False,
        log_level="warning",
    ).serve()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the gateway app under a chosen HTTP server.")
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop", help="uvicorn's event loop")
    parser.add_argument("--no-nodelay", action="store_true", help="uvicorn: leave Nagle on, as `souverain serve` does")
    parser.add_argument("--app", choices=["gateway", "minimal", "proxy"], default="gateway")
    parser.add_argument("--client", choices=["httpx", "aiohttp"], default="httpx", help="upstream client transport")
    parser.add_argument("--config", help="configuration file (passed on as SOUVERAIN_CONFIG)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ["BENCH_APP"], os.environ["BENCH_CLIENT"] = args.app, args.client
    if args.config:
        os.environ["SOUVERAIN_CONFIG"] = str(Path(args.config).resolve())
    if args.server == "granian":
        run_granian(args.port)
    else:
        run_uvicorn(args.port, nodelay=not args.no_nodelay, loop=args.loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
