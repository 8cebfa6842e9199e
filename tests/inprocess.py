"""The gateway in this process, with fake engines, reached through `httpx.ASGITransport`:
the spine's tests run in milliseconds, with the real config loader, key store, router,
scanner and ledger (SQLite) around fake engines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
from upstreams import two_routes

from souverain.api.app import Gateway, create_app
from souverain.auth import KeyStore
from souverain.config import Config
from souverain.config.loader import parse_config
from souverain.engines.fake import FakeEngine
from souverain.ledger import Ledger
from souverain.state import connect
from souverain.state.keys import SqliteKeyTable
from souverain.telemetry import Telemetry

T = TypeVar("T")

# One model served over two routes: on-premises (may carry personal data under the
# default policy) and a US hyperscaler's EU region (may not).
TWO_ROUTES = two_routes(
    "http://127.0.0.1:9/v1",
    "http://127.0.0.1:9/v1",
    routing="  circuit: {failures: 100, cooldown_s: 0.5}\n  health_interval_s: 0\n",
)


class InProcess:
    def __init__(self, gateway: Gateway, token: str) -> None:
        self.gateway = gateway
        self.token = token
        self.headers = {"authorization": f"Bearer {token}"}

    @property
    def ledger(self) -> Ledger:
        assert self.gateway.ledger is not None
        return self.gateway.ledger

    async def entries(self) -> list[dict[str, Any]]:
        """Every entry sequenced so far, decoded."""
        return [json.loads(row) for _, row in await self.ledger.entries(0, 100_000)]

    async def digest(self, tenant: str, data: bytes) -> str:
        """The tenant's keyed digest of `data`, as the ledger computes it."""
        ledger = self.ledger
        return await ledger._read(lambda r: ledger.keyring.get(r.store, tenant, create=False).digest(data))


def run(
    tmp_path: Path,
    engines: Mapping[str, FakeEngine],
    test: Callable[[httpx.AsyncClient, InProcess], Awaitable[T]],
    config: str = TWO_ROUTES,
    *,
    env: dict[str, str] | None = None,
    telemetry: Callable[[Config], Telemetry] | None = None,
) -> T:
    """Build a gateway from `config` (its ${VARS} from `env`) with `engines` in place of
    the configured ones, and run `test` against it. `telemetry`: builds the gateway's
    telemetry (in-memory exporters) in place of the configured one."""

    async def main() -> T:
        cfg = parse_config(config, "test.yaml", env or {}, base_dir=tmp_path)
        keys = KeyStore(SqliteKeyTable(connect(tmp_path)))
        token, _ = keys.create("test")
        ledger = Ledger.open(cfg.ledger, state_dir=tmp_path)
        gateway = Gateway(
            config=cfg,
            keys=keys,
            ledger=ledger,
            engines=dict(engines),
            state_dir=tmp_path,
            telemetry=telemetry(cfg) if telemetry else None,
        )
        app = create_app(gateway)
        await ledger.start()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
                return await test(client, InProcess(gateway, token))
        finally:
            if gateway._background:
                await asyncio.wait(list(gateway._background), timeout=5)
            await ledger.stop()
            keys.close()
            if gateway.telemetry is not None:
                gateway.telemetry.shutdown()

    return asyncio.run(main())


def chat(content: Any = "Hello", **extra: Any) -> dict[str, Any]:
    return {"model": "assistant", "messages": [{"role": "user", "content": content}], **extra}
