"""Run the gateway's own ASGI app under a chosen HTTP server, for bench/choices.py.

`souverain serve` is what users run and what bench/run.py measures. This launcher builds
the very same app (same Config, KeyStore, Gateway, create_app) but lets the benchmark swap
the one thing under test:

    --server uvicorn   uvicorn + httptools + uvloop, like `souverain serve`, but with
                       TCP_NODELAY set on the listening socket (accepted sockets inherit
                       it). `souverain serve` binds its own socket without it; see
                       docs/benchmarks.md for what that costs.
    --server granian   granian (Rust HTTP server, ASGI interface, uvloop), one worker.

Both print "listening on PORT" and serve /readyz like `souverain serve`. The state
directory (and its API key) comes from SOUVERAIN_STATE_DIR, as for the real command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from pathlib import Path

from starlette.applications import Starlette


def build_app() -> Starlette:
    """The gateway app exactly as `souverain serve` assembles it (granian calls this)."""
    from souverain.api.app import Gateway, create_app
    from souverain.auth import KeyStore
    from souverain.config import load_config
    from souverain.state import connect, state_dir

    config = load_config(os.environ.get("SOUVERAIN_CONFIG") or None)
    return create_app(Gateway(config=config, keys=KeyStore(connect(state_dir(config)))))


def _listen(port: int, nodelay: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def run_uvicorn(port: int, nodelay: bool) -> None:
    import uvicorn

    sock = _listen(port, nodelay)
    print(f"listening on {sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(build_app(), loop="uvloop", http="httptools", access_log=False, log_level="warning")
    )
    asyncio.run(server.serve(sockets=[sock]))


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
    parser.add_argument("--no-nodelay", action="store_true", help="uvicorn: leave Nagle on, as `souverain serve` does")
    parser.add_argument("--config", help="configuration file (passed on as SOUVERAIN_CONFIG)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.config:
        os.environ["SOUVERAIN_CONFIG"] = str(Path(args.config).resolve())
    if args.server == "granian":
        run_granian(args.port)
    else:
        run_uvicorn(args.port, nodelay=not args.no_nodelay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
