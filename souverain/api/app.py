"""The ASGI application: routes, error handlers, and the gateway's lifetime."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from souverain.api import errors, handlers
from souverain.auth import KeyStore
from souverain.config import Config
from souverain.engines import Engine, build_engine
from souverain.errors import GatewayError
from souverain.metrics import Metrics
from souverain.pipeline import Pipeline


@dataclass
class Gateway:
    """Everything a request handler may reach, hung on `app.state.gateway`."""

    config: Config
    keys: KeyStore
    engines: dict[str, Engine] = field(default_factory=dict)
    started_at: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        if not self.engines:
            self.engines = {m.name: build_engine(m) for m in self.config.models}
        self.metrics = Metrics(lambda: self.engines)
        self.pipeline = Pipeline(self.keys, self.engines, self.metrics)


async def healthz(request: Request) -> Response:
    """Alive: the process answers. Says nothing about models."""
    return Response(b'{"status":"ok"}', media_type="application/json")


async def readyz(request: Request) -> Response:
    """Ready only when every configured model is loaded."""
    gw: Gateway = request.app.state.gateway
    states = {name: engine.state for name, engine in gw.engines.items()}
    ready = all(s == "ready" for s in states.values())
    body = msgspec.json.encode({"status": "ready" if ready else "not ready", "models": states})
    return Response(body, status_code=200 if ready else 503, media_type="application/json")


async def metrics(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    return Response(gw.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


def create_app(gateway: Gateway) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for engine in gateway.engines.values():
            await engine.start()
        try:
            yield
        finally:
            for engine in gateway.engines.values():
                await engine.close()

    routes = [
        Route("/v1/chat/completions", handlers.chat_completions, methods=["POST"]),
        Route("/v1/embeddings", handlers.embeddings, methods=["POST"]),
        Route("/v1/models", handlers.list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", handlers.get_model, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
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
