"""`souverain serve`: set up state, make the first admin key, run uvicorn."""

from __future__ import annotations

import logging
import socket
import sys

import uvicorn

from souverain.api.app import Gateway, create_app
from souverain.api.limits import server_settings
from souverain.auth import KeyStore
from souverain.config import Config
from souverain.errors import ConfigError
from souverain.ledger import Ledger
from souverain.state import connect, state_dir


def serve(config: Config) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    directory = state_dir(config)
    keys = KeyStore(connect(directory))
    first_key = None
    if keys.count_active() == 0:
        first_key, _ = keys.create("admin (created on first start)", scopes=("admin",))

    # Bind the socket ourselves so that port 0 works and the real port can be printed.
    sock = socket.socket(socket.AF_INET6 if ":" in config.server.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it, Nagle's algorithm meets the client's
    # delayed ACK and small responses wait ~40 ms (measured: docs/benchmarks.md).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((config.server.host, config.server.port))
        sock.listen(2048)  # connections queue from the moment "listening on" is printed
    except OSError as exc:
        print(f"souverain: cannot listen on {config.server.host}:{config.server.port}: {exc.strerror}", file=sys.stderr)
        return 1
    host, port = sock.getsockname()[:2]
    base = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    model = config.models[0].name
    print(f"souverain: state in {directory}; air gap {'on' if config.air_gap.enabled else 'off'}", flush=True)
    if first_key:
        print(
            "\nFirst start: created an admin API key. It is shown once; only its hash is stored.\n\n"
            f"    {first_key}\n\n"
            "Try it (the model answers once /readyz says ready):\n\n"
            f"    curl {base}/v1/chat/completions \\\n"
            f"      -H 'Authorization: Bearer {first_key}' \\\n"
            "      -H 'Content-Type: application/json' \\\n"
            f"      -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Say hello\"}}]}}'\n",
            flush=True,
        )
    print(f"souverain: listening on {base}", flush=True)
    ledger = None
    if config.ledger.enabled:
        try:
            ledger = Ledger.open(config.ledger, state_dir=directory)
        except Exception as exc:
            print(f"souverain: cannot open the ledger: {exc}", file=sys.stderr)
            return 1
        print(f"souverain: ledger {ledger.origin} ({type(config.ledger.store).__name__}); verifier key {ledger.vkey}", flush=True)
    try:
        gateway = Gateway(config=config, keys=keys, ledger=ledger, state_dir=directory)
    except ConfigError as exc:
        print(f"souverain: configuration error: {exc}", file=sys.stderr)
        return 2
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(gateway),
            loop="uvloop",
            access_log=config.server.access_log,
            log_level="info",
            timeout_graceful_shutdown=10,
            # httptools with our limits (hardening: docs/configuration.md)
            **server_settings(config.hardening),
        )
    )
    # Server.run installs the uvloop event loop asked for above; asyncio.run would not.
    server.run(sockets=[sock])
    return 0
