"""OpenTelemetry traces and metrics for every request, sent over OTLP/HTTP only where the
operator configured a collector (`telemetry.endpoint`; docs/telemetry.md).

What is emitted. One span per request, completed when the request's outcome is final (the
spine calls `Telemetry.request` where it records the ledger entry), from the same facts the
ledger holds: names and numbers, never the prompt, the answer, a header or a key. Its
`gen_ai.*` attributes follow the GenAI semantic conventions at `SCHEMA_URL` (pinned:
attribute and metric names change between versions while the conventions are in
Development); the `souverain.*` attributes are ours. Two histograms per the conventions,
`gen_ai.client.token.usage` and `gen_ai.client.operation.duration`, with the route and the
data class as attributes.

Why a SERVER span: the conventions model the inference span from the caller's side
(CLIENT); the gateway's span is the server side of that call, covering the whole request
(classify, decide, every attempt at dispatch, record), so a caller's CLIENT span and ours
describe one operation from its two ends.

Cost. The spine holds `Telemetry | None`: off, a request pays one `is None` check. On,
spans go to a `BatchSpanProcessor` and metrics to a periodic reader, so the export (and a
slow or absent collector) runs on the SDK's threads, never on the request.

Trace context (W3C, by OpenTelemetry's own propagator). A request that arrives with a
valid `traceparent` gets its span in the caller's trace, as a child of the caller's span;
an invalid one is ignored (the span starts a trace of its own), never an error. Upstreams
are told the trace (a `traceparent` naming the gateway's span) only where the operator
marked the deployment `propagate_trace: true`: a trace id sent to another party links
the requests it sees to the caller's. `tracestate` is never sent: it is the caller's free
text, which no scanner has cleared for that route.

No module-level state: the providers belong to this object, not to OpenTelemetry's
globals, so two gateways in one process (the tests) never share one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.semconv.schemas import Schemas
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from souverain.config import Config, LlamaCppModel, OpenAIHTTPModel
from souverain.config.schema import TelemetryConfig

# The semantic conventions version every name below is taken from (opentelemetry-semantic-
# conventions 0.66b2 ships it). Changing it is a change of what operators' dashboards read.
SCHEMA_URL = Schemas.V1_44_0.value
SCOPE = "souverain"

# The conventions' advised bucket boundaries for the two histograms.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = tuple(4**i for i in range(14))  # 1, 4, 16, ... 67108864

# `gen_ai.operation.name` per endpoint, and `gen_ai.provider.name` per upstream flavor
# (the conventions' well-known values where one exists, else the server's own name).
OPERATIONS = {"chat": "chat", "embeddings": "embeddings"}
PROVIDERS = {"openai": "openai", "mistral": "mistral_ai"}
EMBEDDED_PROVIDER = "llama.cpp"
# A requested model name the configuration does not serve: names on spans and metrics come
# from the configuration, so a client can put neither text nor unbounded series there.
UNKNOWN_MODEL = "_unknown"


# The W3C Trace Context headers, read and written by OpenTelemetry's propagator.
TRACE_HEADERS = ("traceparent", "tracestate")
_W3C = TraceContextTextMapPropagator()


class RequestTrace:
    """One request's place in a trace: the caller's context (from a valid `traceparent`;
    else an empty one, and the gateway's span starts a trace), and the gateway's SERVER
    span, started the first time it is needed: to tell an upstream
    (`Telemetry.outbound_headers`), or when the outcome is final (`Telemetry.request`)."""

    __slots__ = ("parent", "span")

    def __init__(self, parent: Context) -> None:
        self.parent = parent
        self.span: Span | None = None


class RequestFacts(Protocol):
    """What `Telemetry.request` reads of one request (the spine's `Facts` is one)."""

    @property
    def trace(self) -> RequestTrace | None: ...
    @property
    def endpoint(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def deployment(self) -> str: ...
    @property
    def route(self) -> str: ...
    @property
    def data_class(self) -> str: ...
    @property
    def classified(self) -> bool: ...
    @property
    def sent_class(self) -> str: ...
    @property
    def decision(self) -> str: ...
    @property
    def status(self) -> int: ...
    @property
    def error(self) -> str: ...
    @property
    def usage(self) -> Mapping[str, Any]: ...
    @property
    def finish_reasons(self) -> Sequence[str]: ...
    @property
    def started(self) -> float: ...


class _Upstream:
    """What the conventions want to know of a deployment: who serves it, and where."""

    __slots__ = ("address", "model", "port", "provider")

    def __init__(self, provider: str, model: str, address: str | None, port: int | None) -> None:
        self.provider, self.model, self.address, self.port = provider, model, address, port


def _upstreams(config: Config) -> dict[str, _Upstream]:
    out: dict[str, _Upstream] = {}
    for m in config.models:
        if isinstance(m, LlamaCppModel):
            out[m.name] = _Upstream(EMBEDDED_PROVIDER, m.name, None, None)
        else:
            parts = urlsplit(m.base_url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            provider = PROVIDERS.get(m.flavor, m.flavor)
            out[m.name] = _Upstream(provider, m.upstream_model or m.name, parts.hostname, port)
    return out


class Telemetry:
    """The gateway's tracer and meter, from `telemetry:`; built only when it is configured.

    `span_exporter` and `metric_reader` replace the OTLP ones (tests: the SDK's in-memory
    exporter and reader); with them, spans are exported at once (SimpleSpanProcessor).
    """

    def __init__(
        self,
        config: Config,
        *,
        span_exporter: SpanExporter | None = None,
        metric_reader: MetricReader | None = None,
    ) -> None:
        settings = config.telemetry
        self.settings = settings
        self._upstreams = _upstreams(config)
        self._models = {m.name for m in config.models} | {m.serves for m in config.models if m.serves}
        # The deployments whose upstream is told the trace (`propagate_trace: true`).
        self._propagate = {m.name for m in config.models if isinstance(m, OpenAIHTTPModel) and m.propagate_trace}
        resource = Resource.create({**settings.resource_attributes, "service.name": settings.service_name})
        self.tracer_provider: TracerProvider | None = None
        self.meter_provider: MeterProvider | None = None
        if settings.traces:
            self.tracer_provider = TracerProvider(resource=resource, sampler=TraceIdRatioBased(settings.sampling_ratio))
            if span_exporter is not None:
                self.tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
            else:
                self.tracer_provider.add_span_processor(BatchSpanProcessor(_otlp_spans(settings)))
        if settings.metrics:
            reader = metric_reader or PeriodicExportingMetricReader(
                _otlp_metrics(settings), export_interval_millis=settings.metrics_interval_s * 1000
            )
            self.meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
        self._tracer = self.tracer_provider.get_tracer(SCOPE, schema_url=SCHEMA_URL) if self.tracer_provider else None
        if self.meter_provider is not None:
            meter = self.meter_provider.get_meter(SCOPE, schema_url=SCHEMA_URL)
            self._duration = meter.create_histogram(
                "gen_ai.client.operation.duration",
                unit="s",
                description="GenAI operation duration",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            )
            self._tokens = meter.create_histogram(
                "gen_ai.client.token.usage",
                unit="{token}",
                description="Number of input and output tokens used",
                explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
            )

    def trace(self, headers: Mapping[str, Sequence[str]]) -> RequestTrace | None:
        """Where a request starts, from its W3C trace context `headers` (each name in
        `TRACE_HEADERS` to the values received); None when no spans are made."""
        if self._tracer is None:
            return None
        return RequestTrace(_W3C.extract(headers))

    def outbound_headers(self, facts: RequestFacts, deployment: str) -> dict[str, str]:
        """The trace context to send with a request to `deployment`'s upstream: the
        `traceparent` of the gateway's span if the deployment is marked
        `propagate_trace: true`, else nothing."""
        if deployment not in self._propagate or facts.trace is None:
            return {}
        carrier: dict[str, str] = {}
        _W3C.inject(carrier, set_span_in_context(self._server_span(facts, facts.trace)))
        return {"traceparent": carrier["traceparent"]} if "traceparent" in carrier else {}

    def _server_span(self, facts: RequestFacts, trace: RequestTrace | None) -> Span:
        """The request's SERVER span, started the first time it is needed, from the
        request's start, in the caller's trace if it named one."""
        if trace is not None and trace.span is not None:
            return trace.span
        assert self._tracer is not None
        started = time.time_ns() - int((time.perf_counter() - facts.started) * 1e9)
        span = self._tracer.start_span(
            " ".join(self._named(facts)),
            context=trace.parent if trace is not None else None,
            kind=SpanKind.SERVER,
            start_time=started,
        )
        if trace is not None:
            trace.span = span
        return span

    def _named(self, facts: RequestFacts) -> tuple[str, str]:
        """`gen_ai.operation.name` and `gen_ai.request.model` (a name the configuration
        serves, else `UNKNOWN_MODEL`); the span's name is the two."""
        model = facts.model if facts.model in self._models else UNKNOWN_MODEL
        return OPERATIONS.get(facts.endpoint, facts.endpoint), model

    def request(
        self, facts: RequestFacts, ledger_index: int | None, cost: Any = None, currency: str | None = None
    ) -> None:
        """One request's span and measurements, once its outcome is final. `cost`: the
        request's cost (a number, in `currency`) where accounting priced it, else None."""
        ended = time.time_ns()
        elapsed = time.perf_counter() - facts.started
        operation, model = self._named(facts)
        upstream = self._upstreams.get(facts.deployment)
        common: dict[str, Any] = {"gen_ai.operation.name": operation, "gen_ai.request.model": model}
        if upstream is not None:
            common["gen_ai.provider.name"] = upstream.provider
            common["gen_ai.response.model"] = upstream.model
            if upstream.address is not None:
                common["server.address"] = upstream.address
                common["server.port"] = upstream.port
        if facts.status >= 400:
            common["error.type"] = facts.error or str(facts.status)
        ours: dict[str, Any] = {"souverain.route": facts.route or "none", "souverain.decision": facts.decision}
        if facts.classified:
            ours["souverain.data_class"] = facts.data_class
        if self._tracer is not None:
            self._span(facts, ended, operation, model, common, ours, ledger_index, cost, currency)
        if self.meter_provider is not None:
            measured = {**common, **ours}
            self._duration.record(elapsed, measured)
            usage = facts.usage
            for kind, key in (("input", "prompt_tokens"), ("output", "completion_tokens")):
                if key in usage and usage[key] is not None:
                    self._tokens.record(int(usage[key]), {**measured, "gen_ai.token.type": kind})

    def _span(
        self,
        facts: RequestFacts,
        ended: int,
        operation: str,
        model: str,
        common: dict[str, Any],
        ours: dict[str, Any],
        ledger_index: int | None,
        cost: Any,
        currency: str | None,
    ) -> None:
        assert self._tracer is not None
        attributes: dict[str, Any] = {**common, **ours, "souverain.status": facts.status}
        usage = facts.usage
        if usage.get("prompt_tokens") is not None:
            attributes["gen_ai.usage.input_tokens"] = int(usage["prompt_tokens"])
        if usage.get("completion_tokens") is not None and operation != "embeddings":
            attributes["gen_ai.usage.output_tokens"] = int(usage["completion_tokens"])
        if facts.finish_reasons:
            attributes["gen_ai.response.finish_reasons"] = list(facts.finish_reasons)
        if facts.sent_class:
            attributes["souverain.sent_class"] = facts.sent_class
        if ledger_index is not None:
            attributes["souverain.ledger.index"] = ledger_index
        if cost is not None:
            attributes["souverain.cost"] = float(cost)
            if currency:
                attributes["souverain.cost.currency"] = currency
        span = self._server_span(facts, facts.trace)
        span.update_name(f"{operation} {model}")
        span.set_attributes(attributes)
        if facts.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=ended)

    def shutdown(self) -> None:
        """Flush what is pending and stop the SDK's threads (at the gateway's shutdown)."""
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


def _otlp_spans(settings: TelemetryConfig) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    assert settings.endpoint is not None
    return OTLPSpanExporter(
        endpoint=settings.endpoint.rstrip("/") + "/v1/traces",
        headers=dict(settings.headers),
        timeout=settings.timeout_s,
    )


def _otlp_metrics(settings: TelemetryConfig) -> Any:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    assert settings.endpoint is not None
    return OTLPMetricExporter(
        endpoint=settings.endpoint.rstrip("/") + "/v1/metrics",
        headers=dict(settings.headers),
        timeout=settings.timeout_s,
    )


def build(config: Config) -> Telemetry | None:
    """The gateway's telemetry, or None when `telemetry.endpoint` is not set (nothing is
    built: no exporter, no thread, no connection)."""
    settings = config.telemetry
    if settings.endpoint is None or not (settings.traces or settings.metrics):
        return None
    return Telemetry(config)
