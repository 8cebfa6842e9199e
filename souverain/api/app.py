"""The ASGI application: routes, error handlers, and the gateway's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from souverain.api import errors, handlers
from souverain.api.usage import usage_costs, usage_report
from souverain.auth import KeyStore
from souverain.config import Config
from souverain.engines import Engine, build_engine
from souverain.errors import ConfigError, Forbidden, GatewayError
from souverain.ledger import Ledger
from souverain.ledger.http import routes as ledger_routes
from souverain.metrics import Metrics
from souverain.pipeline import Pipeline
from souverain.privacy import Scanner, ScannerConfig, default_scanner
from souverain.privacy.config import SettingError, key_path, scanner_configs
from souverain.routing.router import Router
from souverain.telemetry import Telemetry
from souverain.telemetry import build as build_telemetry
from souverain.usage.accounting import Accounting

log = logging.getLogger("souverain.api")


@dataclass
class Gateway:
    """Everything a request handler may reach, hung on `app.state.gateway`."""

    config: Config
    keys: KeyStore
    ledger: Ledger | None = None
    # The account stage's prices, budgets and usage writer (docs/usage.md); None: the
    # gateway keeps no usage rows and enforces no budgets.
    accounting: Accounting | None = None
    engines: dict[str, Engine] = field(default_factory=dict)
    # Where this gateway meets the engine workers it shares with other gateway processes
    # on the machine; None: each model gets a private one.
    state_dir: Path | None = None
    started_at: int = field(default_factory=lambda: int(time.time()))
    # OpenTelemetry, where `telemetry:` configures it (tests pass one with in-memory
    # exporters); None otherwise, and nothing is built.
    telemetry: Telemetry | None = None
    _background: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not self.engines:
            self.engines = {m.name: build_engine(m, self.state_dir) for m in self.config.models}
        self.metrics = Metrics(lambda: self.engines, models=model_names(self.config))
        self.router = Router(self.config)
        if self.telemetry is None:
            self.telemetry = build_telemetry(self.config)
        scanner, tenant_scanners = build_scanners(self.config)
        self.pipeline = Pipeline(
            self.keys,
            self.engines,
            self.metrics,
            self.router,
            scanner,
            self.ledger,
            tenant_scanners=tenant_scanners,
            unscannable_class=self.config.routing.unscannable_class,
            telemetry=self.telemetry,
            accounting=self.accounting,
        )

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run `work` in the background, kept referenced until done; errors are logged."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background task failed: %s", task.exception())

    async def probe_forever(self) -> None:
        """Active health checks: every deployment, every `routing.health_interval_s`."""
        interval = self.config.routing.health_interval_s
        while True:
            await asyncio.sleep(interval)
            for name, engine in self.engines.items():
                try:
                    ok = await engine.probe()
                except Exception:
                    ok = False
                self.router.health.probed(name, ok)

    async def authorize_ledger(self, request: Request, scope: str) -> str | None:
        """Checkpoints, proofs and tiles (hashes only) are open to anyone who can reach the
        gateway, as tlog-tiles clients expect. Entries need an auditor key, which reads its
        own tenant's, or an `auditor:all` or admin key, which reads every tenant's
        (docs/ledger.md, "Who may read entries"). Returns the tenant to restrict to."""
        if scope == "ledger:read":
            return None
        principal = self.keys.authenticate(request.headers.get("authorization"))
        if principal.scopes & {"auditor:all", "admin"}:
            return None
        if "auditor" in principal.scopes:
            return principal.tenant
        raise Forbidden("reading ledger entries needs an API key with the auditor scope", code="insufficient_scope")


def model_names(config: Config) -> set[str]:
    """Every name a configured model answers to or is known by: public and deployment."""
    return {m.name for m in config.models} | {m.serves for m in config.models if m.serves}


def build_scanners(config: Config) -> tuple[Scanner, dict[str, Scanner]]:
    """The default scanner and one per tenant listed in `privacy.tenants`, built once:
    compiling one is costly, and a `Scanner` is immutable and thread-safe. Tenants with
    equal settings share one; the scanner's defaults give the shared `default_scanner()`."""
    try:
        default, tenants = scanner_configs(config.privacy)
    except SettingError as exc:
        raise ConfigError(f"{key_path(('privacy', *exc.key))}: {exc.message}") from None
    built: list[tuple[ScannerConfig, Scanner]] = [(ScannerConfig(), default_scanner())]

    def scanner(settings: ScannerConfig) -> Scanner:
        for known, existing in built:
            if known == settings:
                return existing
        built.append((settings, Scanner(settings)))
        return built[-1][1]

    return scanner(default), {tenant: scanner(settings) for tenant, settings in tenants.items()}


async def healthz(request: Request) -> Response:
    """Alive: the process answers. Says nothing about models."""
    return Response(b'{"status":"ok"}', media_type="application/json")


async def readyz(request: Request) -> Response:
    """Ready only when every configured model is loaded; a model that is not says why."""
    gw: Gateway = request.app.state.gateway
    states = {name: engine.state for name, engine in gw.engines.items()}
    ready = all(s == "ready" for s in states.values())
    answer: dict[str, Any] = {"status": "ready" if ready else "not ready", "models": states}
    reasons = {name: engine.error for name, engine in gw.engines.items() if engine.state != "ready" and engine.error}
    if reasons:
        answer["errors"] = reasons
    body = msgspec.json.encode(answer)
    return Response(body, status_code=200 if ready else 503, media_type="application/json")


async def metrics(request: Request) -> Response:
    """Served only when `hardening.metrics` says so: open, or to a key that may read it."""
    gw: Gateway = request.app.state.gateway
    if gw.config.hardening.metrics == "key":
        principal = gw.keys.authenticate(request.headers.get("authorization"))
        if not principal.scopes & {"metrics", "admin"}:
            raise Forbidden("reading /metrics needs an API key with the metrics scope", code="insufficient_scope")
    return Response(gw.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


def create_app(gateway: Gateway) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for engine in gateway.engines.values():
            await engine.start()
        if gateway.ledger is not None:
            await gateway.ledger.start()
        if gateway.accounting is not None:
            gateway.accounting.start()
        prober = None
        if gateway.config.routing.health_interval_s > 0:
            prober = asyncio.get_running_loop().create_task(gateway.probe_forever())
        try:
            yield
        finally:
            if prober is not None:
                prober.cancel()
            for engine in gateway.engines.values():
                await engine.close()
            if gateway._background:
                await asyncio.wait(list(gateway._background), timeout=5)
            if gateway.accounting is not None:  # its queued rows, before the ledger closes
                await asyncio.to_thread(gateway.accounting.stop)
            if gateway.ledger is not None:
                await gateway.ledger.stop()
            if gateway.telemetry is not None:
                # Flushes what is pending to the collector, within telemetry.timeout_s.
                await asyncio.to_thread(gateway.telemetry.shutdown)

    routes: list[BaseRoute] = [
        Route("/v1/chat/completions", handlers.chat_completions, methods=["POST"]),
        Route("/v1/embeddings", handlers.embeddings, methods=["POST"]),
        Route("/v1/models", handlers.list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", handlers.get_model, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if gateway.config.hardening.metrics != "disabled":
        routes.append(Route("/metrics", metrics, methods=["GET"]))
    if gateway.accounting is not None:
        routes.append(Route("/admin/usage", usage_report, methods=["GET"]))
        routes.append(Route("/admin/usage/costs", usage_costs, methods=["GET"]))
    if gateway.ledger is not None:
        routes.append(Mount("/ledger", routes=ledger_routes(gateway.ledger, gateway.authorize_ledger)))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            GatewayError: errors.on_gateway_error,
            HTTPException: errors.on_http_exception,
            Exception: errors.on_unexpected,
        },
    )
    app.state.gateway = gateway
    return app
