"""Prometheus metrics, kept in a registry per gateway instance (no module-level state)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from souverain.engines import Engine
from souverain.engines.supervisor import WorkerEngine
from souverain.privacy import native

# The `model` label of a request for a name the configuration does not serve: labels come
# from the configuration only, so clients cannot grow the registry (one series per name).
UNKNOWN_MODEL = "_unknown"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
ENGINE_STATES = ("loading", "ready", "restarting", "failed")


class _EngineCollector(Collector):
    """Reads queue depth and state from the engines at scrape time."""

    def __init__(self, engines: Callable[[], Mapping[str, Engine]]) -> None:
        self._engines = engines

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        depth = GaugeMetricFamily(
            "souverain_queue_depth", "Requests admitted to a model and not finished", labels=["model"]
        )
        state = GaugeMetricFamily(
            "souverain_engine_state", "1 for the engine's current state", labels=["model", "state"]
        )
        for name, engine in self._engines().items():
            depth.add_metric([name], engine.queue_depth)
            for s in ENGINE_STATES:
                state.add_metric([name, s], 1.0 if engine.state == s else 0.0)
        generated = CounterMetricFamily(
            "souverain_generated_tokens",
            "Tokens an engine generated, including for requests cancelled midway",
            labels=["model"],
        )
        restarts = CounterMetricFamily(
            "souverain_engine_restarts",
            "Times an engine's worker was restarted after a crash or hang",
            labels=["model"],
        )
        variant = GaugeMetricFamily(
            "souverain_engine_cpu_variant",
            "1 for the llama.cpp CPU variant an embedded model runs on",
            labels=["model", "variant"],
        )
        for name, engine in self._engines().items():
            generated.add_metric([name], engine.generated_tokens)
            restarts.add_metric([name], engine.restarts)
            if isinstance(engine, WorkerEngine) and engine.variant:
                variant.add_metric([name, engine.variant], 1.0)
        yield depth
        yield state
        yield generated
        yield restarts
        yield variant
        # Which build of the privacy scanner runs: compiled by mypyc, or pure Python (no
        # compiler at install, a stale build, SOUVERAIN_PURE_PYTHON): same findings, about
        # half the speed (docs/privacy.md).
        scanner = GaugeMetricFamily(
            "souverain_privacy_scanner_compiled",
            "1 when the privacy scanner runs compiled (mypyc), 0 as pure Python",
            labels=["reason"],
        )
        scanner.add_metric([native.REASON], 1.0 if native.ACTIVE else 0.0)
        yield scanner


class Metrics:
    def __init__(self, engines: Callable[[], Mapping[str, Engine]], models: Iterable[str]) -> None:
        """`models`: every name a `model` label may take (public and deployment names)."""
        self.registry = CollectorRegistry()
        self._models = frozenset(models) | {"-"}
        self.requests = Counter(
            "souverain_requests",
            "Requests by endpoint, model and status",
            ["endpoint", "model", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "souverain_request_duration_seconds",
            "Time until the response is complete",
            ["endpoint", "model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttft = Histogram(
            "souverain_time_to_first_token_seconds",
            "Streaming: time until the first content chunk",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "souverain_tokens",
            "Tokens processed, by model and kind (prompt, completion)",
            ["model", "kind"],
            registry=self.registry,
        )
        self.registry.register(_EngineCollector(engines))

    def model_label(self, model: str) -> str:
        return model if model in self._models else UNKNOWN_MODEL

    def observe(self, endpoint: str, model: str, status: int, seconds: float) -> None:
        model = self.model_label(model)
        self.requests.labels(endpoint, model, str(status)).inc()
        self.latency.labels(endpoint, model).observe(seconds)

    def first_token(self, model: str, seconds: float) -> None:
        self.ttft.labels(self.model_label(model)).observe(seconds)

    def count_tokens(self, model: str, usage: Mapping[str, int] | None) -> None:
        if not usage:
            return
        model = self.model_label(model)
        self.tokens.labels(model, "prompt").inc(usage.get("prompt_tokens", 0) or 0)
        self.tokens.labels(model, "completion").inc(usage.get("completion_tokens", 0) or 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
