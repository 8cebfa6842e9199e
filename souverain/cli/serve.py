"""`souverain serve`: set up state, make the first admin key, run uvicorn.

With `--workers N` (N > 1) the process binds the socket, makes the first key, then forks
N gateway processes that accept on that one socket, and supervises them: a process that
dies is started again after a second; SIGTERM or SIGINT stops them all. They share the
state (`state:`): the key store and the ledger take several writers (SQLite: WAL, `BEGIN
IMMEDIATE`; PostgreSQL: row locks; one integrator under a lock), and each embedded model's
engine worker is started once and shared (`souverain/engines/shared.py`). Each process
keeps its own metrics: `/metrics` shows the counters of the process that answered it.

Replicas (several `souverain serve` on several machines, one PostgreSQL) work the same
way; the schema is migrated by whichever starts first (souverain/state/migrate.py).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from souverain.api.app import Gateway, create_app
from souverain.api.limits import server_settings
from souverain.auth import KeyStore
from souverain.config import Config
from souverain.errors import ConfigError
from souverain.ledger import Ledger
from souverain.ledger.config import PostgresStoreConfig
from souverain.ledger.store import StoreError, open_store
from souverain.state import StateError, describe, open_accounting, open_keys, state_dir, usage_db

RESTART_DELAY_S = 1.0


def serve(config: Config, workers: int = 1) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per engine health check is noise
    directory = state_dir(config)
    try:
        keys = open_keys(config, directory, listen=workers == 1)
        if config.ledger.enabled:
            # Migrate (or refuse) the ledger's schema too before listening; the gateway
            # processes open their own ledger below.
            open_store(config.ledger.store, directory).close()
        usage_db(config, directory)().close()  # and the usage part's
    except (StateError, StoreError) as exc:
        print(f"souverain: {exc}", file=sys.stderr)
        return 1
    first_key = keys.create_first("admin (created on first start)", scopes=("admin",))
    if workers > 1:
        keys.close()  # the forked processes open their own; a database handle is not to cross a fork

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
    print(
        f"souverain: state in {describe(config, directory)}; air gap {'on' if config.air_gap.enabled else 'off'}",
        flush=True,
    )
    if first_key:
        print(
            "\nFirst start: created an admin API key. It is shown once; only its hash is stored.\n\n"
            f"    {first_key}\n\n"
            "Try it (the model answers once /readyz says ready):\n\n"
            f"    curl {base}/v1/chat/completions \\\n"
            f"      -H 'Authorization: Bearer {first_key}' \\\n"
            "      -H 'Content-Type: application/json' \\\n"
            f'      -d \'{{"model": "{model}", "messages": [{{"role": "user", "content": "Say hello"}}]}}\'\n',
            flush=True,
        )
    telemetry = config.telemetry
    if telemetry.endpoint is not None and (telemetry.traces or telemetry.metrics):
        # An outbound connection the operator should see named at start (docs/telemetry.md).
        sent = " and ".join(k for k, on in (("traces", telemetry.traces), ("metrics", telemetry.metrics)) if on)
        print(f"souverain: telemetry: {sent} to {telemetry.endpoint} (OTLP/HTTP)", flush=True)
    print(f"souverain: listening on {base}" + (f" with {workers} gateway processes" if workers > 1 else ""), flush=True)
    if workers > 1:
        return _supervise(workers, lambda: _run(config, directory, open_keys(config, directory, listen=True), sock))
    return _run(config, directory, keys, sock)


def _run(config: Config, directory: Path, keys: KeyStore, sock: socket.socket) -> int:
    """One gateway process: the ledger, the app, uvicorn on the bound socket."""
    ledger = None
    if config.ledger.enabled:
        try:
            ledger = Ledger.open(config.ledger, state_dir=directory)
        except Exception as exc:
            print(f"souverain: cannot open the ledger: {exc}", file=sys.stderr)
            return 1
        kind = "postgres" if isinstance(config.ledger.store, PostgresStoreConfig) else "sqlite"
        print(f"souverain: ledger {ledger.origin} ({kind}); verifier key {ledger.vkey}", flush=True)
    try:
        accounting = open_accounting(config, directory, ledger)
        gateway = Gateway(config=config, keys=keys, ledger=ledger, accounting=accounting, state_dir=directory)
    except ConfigError as exc:
        print(f"souverain: configuration error: {exc}", file=sys.stderr)
        return 2
    except StateError as exc:
        print(f"souverain: {exc}", file=sys.stderr)
        return 1
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
    try:
        server.run(sockets=[sock])
    finally:
        keys.close()
    return 0


def _supervise(workers: int, run: Callable[[], int]) -> int:
    """Fork `workers` processes running `run`, start a dead one again, stop all on
    SIGTERM or SIGINT. Forked before any event loop or thread exists in this process."""
    children: set[int] = set()
    stopping = False

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 1
            try:
                code = run()
            finally:
                os._exit(code)
        children.add(pid)

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(workers):
        spawn()
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        children.discard(pid)
        if not stopping:
            print(
                f"souverain: gateway process {pid} ended ({_describe(status)}); starting another",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(RESTART_DELAY_S)
            spawn()
    return 0


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
