"""OpenTelemetry (souverain/telemetry.py) against the real spine in process: the span and
the measurements of each request, with the SDK's in-memory exporter and reader; the OTLP
exporter against a real OTLP/HTTP receiver on loopback; nothing at all when telemetry is
not configured; no content on spans; the air gap over the collector's host."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from inprocess import TWO_ROUTES, InProcess, chat, run
from opentelemetry import trace
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from souverain.config import Config, parse_config
from souverain.engines.fake import FakeEngine, answer
from souverain.errors import ConfigError, UpstreamError
from souverain.telemetry import SCHEMA_URL, Telemetry

EMAIL = "marie.dubois@exemple.fr"
# Text that must never reach telemetry: in the prompt, in the answer, in the model name.
SECRET_PROMPT = "zebra-quartz-prompt-7731"
SECRET_ANSWER = "walrus-onyx-answer-4419"
THREAD_PREFIX = "Otel"  # the SDK's exporter threads: OtelBatchSpanRecordProcessor, OtelPeriodicExportingMetricReader


def engines(onprem: Any = None, cloud: Any = None) -> dict[str, FakeEngine]:
    return {"assistant-onprem": FakeEngine(onprem), "assistant-cloud": FakeEngine(cloud)}


def down(operation: str, payload: Any) -> Any:
    raise UpstreamError("cannot reach the upstream: ConnectError")


class Recorder:
    """The in-memory exporter and reader, and a factory that puts them in a gateway."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()

    def __call__(self, config: Config) -> Telemetry:
        return Telemetry(config, span_exporter=self.spans, metric_reader=self.reader)

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


def test_a_chat_request_gives_one_server_span_with_the_conventions_and_our_attributes(tmp_path: Path) -> None:
    rec = Recorder()

    async def test(client: httpx.AsyncClient, gw: InProcess) -> httpx.Response:
        return await client.post("/v1/chat/completions", json=chat("Hello"), headers=gw.headers)

    r = run(tmp_path, engines(), test, telemetry=rec)
    assert r.status_code == 200
    (span,) = rec.finished()
    assert span.name == "chat assistant"
    assert span.kind is SpanKind.SERVER
    assert span.instrumentation_scope is not None and span.instrumentation_scope.schema_url == SCHEMA_URL
    a = dict(span.attributes or {})
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "assistant"
    assert a["gen_ai.response.model"] == "assistant-onprem"
    assert a["gen_ai.provider.name"] == "openai"  # the flavor of TWO_ROUTES's upstreams
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == 9
    assert a["gen_ai.usage.input_tokens"] == 3 and a["gen_ai.usage.output_tokens"] == 1
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert a["souverain.route"] == "a-onprem"
    assert a["souverain.data_class"] == "public" and a["souverain.sent_class"] == "public"
    assert a["souverain.decision"] == "allowed"
    assert a["souverain.status"] == 200
    assert a["souverain.ledger.index"] == int(r.headers["x-souverain-ledger-index"])
    assert "error.type" not in a and "souverain.cost" not in a  # no cost set: left out
    assert span.status.status_code is StatusCode.UNSET
    assert span.end_time is not None and span.start_time is not None and span.end_time >= span.start_time
    assert span.resource.attributes["service.name"] == "souverain"


def test_the_histograms_carry_route_and_data_class(tmp_path: Path) -> None:
    rec = Recorder()

    async def test(client: httpx.AsyncClient, gw: InProcess) -> None:
        for _ in range(2):
            r = await client.post("/v1/chat/completions", json=chat(f"Write to {EMAIL}"), headers=gw.headers)
            assert r.status_code == 200
        r = await client.post("/v1/embeddings", json={"model": "assistant", "input": ["a", "b"]}, headers=gw.headers)
        assert r.status_code == 200

    run(tmp_path, engines(), test, telemetry=rec)
    durations = rec.points("gen_ai.client.operation.duration")
    by_op = {p.attributes["gen_ai.operation.name"]: p for p in durations}
    assert by_op["chat"].count == 2 and by_op["embeddings"].count == 1
    assert by_op["chat"].attributes["souverain.route"] == "a-onprem"
    assert by_op["chat"].attributes["souverain.data_class"] == "personal"
    tokens = {
        (p.attributes["gen_ai.operation.name"], p.attributes["gen_ai.token.type"]): p
        for p in rec.points("gen_ai.client.token.usage")
    }
    assert tokens[("chat", "input")].sum == 6 and tokens[("chat", "output")].sum == 2
    assert tokens[("chat", "input")].attributes["souverain.data_class"] == "personal"
    assert tokens[("embeddings", "input")].count == 1
    (embed,) = [s for s in rec.finished() if s.name.startswith("embeddings")]
    assert embed.name == "embeddings assistant"
    assert "gen_ai.usage.output_tokens" not in (embed.attributes or {})


def test_a_stream_reports_its_finish_reason_and_usage(tmp_path: Path) -> None:
    rec = Recorder()

    async def test(client: httpx.AsyncClient, gw: InProcess) -> None:
        body = chat("Hello", stream=True, stream_options={"include_usage": True})
        async with client.stream("POST", "/v1/chat/completions", json=body, headers=gw.headers) as r:
            assert r.status_code == 200
            [line async for line in r.aiter_lines()]

    run(tmp_path, engines(), test, telemetry=rec)
    (span,) = rec.finished()
    a = dict(span.attributes or {})
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert a["souverain.status"] == 200 and "souverain.ledger.index" in a


def test_failures_and_refusals_are_spans_too(tmp_path: Path) -> None:
    rec = Recorder()

    async def test(client: httpx.AsyncClient, gw: InProcess) -> list[httpx.Response]:
        failed = await client.post("/v1/chat/completions", json=chat("Hello"), headers=gw.headers)
        unknown = await client.post("/v1/chat/completions", json=chat("Hello"), headers={"authorization": "Bearer x"})
        return [failed, unknown]

    failed, unknown = run(tmp_path, engines(down, down), test, telemetry=rec)
    assert failed.status_code == 502 and unknown.status_code == 401
    spans = {s.attributes["souverain.status"]: s for s in rec.finished() if s.attributes}
    assert set(spans) == {502, 401}
    bad = spans[502]
    assert bad.status.status_code is StatusCode.ERROR
    assert bad.attributes is not None
    assert bad.attributes["error.type"] == failed.json()["error"]["code"]
    assert bad.attributes["souverain.decision"] == "failed"
    assert bad.attributes["souverain.route"] == "c-azure-eu"  # the last route tried
    assert bad.attributes["souverain.ledger.index"] == int(failed.headers["x-souverain-ledger-index"])
    anon = spans[401]
    assert anon.attributes is not None and "souverain.ledger.index" not in anon.attributes  # not recorded
    assert anon.status.status_code is StatusCode.UNSET  # a client's error, not the server's


def _everything(spans: list[ReadableSpan]) -> str:
    """Every name, attribute and resource attribute the spans would export, as text."""
    return json.dumps([json.loads(s.to_json()) for s in spans])


def test_no_content_on_spans(tmp_path: Path) -> None:
    rec = Recorder()

    def echo(operation: str, payload: Any) -> Any:
        if operation == "embed":
            return [[0.1] for _ in payload["input"]]
        return answer(f"{SECRET_ANSWER} {EMAIL}")

    async def test(client: httpx.AsyncClient, gw: InProcess) -> None:
        prompt = f"{SECRET_PROMPT} write to {EMAIL}"
        r = await client.post("/v1/chat/completions", json=chat(prompt), headers=gw.headers)
        assert r.status_code == 200 and SECRET_ANSWER in r.text
        r = await client.post("/v1/embeddings", json={"model": "assistant", "input": prompt}, headers=gw.headers)
        r = await client.post(
            "/v1/chat/completions", json={**chat(prompt), "model": f"m-{SECRET_PROMPT}"}, headers=gw.headers
        )
        assert r.status_code == 404

    run(tmp_path, engines(echo, echo), test, telemetry=rec)
    spans = rec.finished()
    assert len(spans) == 3
    text = _everything(spans)
    for secret in (SECRET_PROMPT, SECRET_ANSWER, EMAIL, "marie", "Bearer"):
        assert secret not in text
    assert "chat _unknown" in text  # a model name the configuration does not serve is not copied


def test_off_by_default_nothing_is_built_and_nothing_connects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    connects: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        connects.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    before = {t.name for t in threading.enumerate()}

    async def test(client: httpx.AsyncClient, gw: InProcess) -> set[str]:
        assert gw.gateway.telemetry is None and gw.gateway.pipeline.telemetry is None
        r = await client.post("/v1/chat/completions", json=chat("Hello"), headers=gw.headers)
        assert r.status_code == 200
        return {t.name for t in threading.enumerate()}

    during = run(tmp_path, engines(), test)
    assert not [n for n in during - before if n.startswith(THREAD_PREFIX)]
    assert connects == []
    # And nothing was set on OpenTelemetry's process-wide globals either.
    assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"


class Receiver:
    """A minimal OTLP/HTTP receiver on loopback: keeps every POST (path, headers, body)."""

    def __init__(self) -> None:
        received: list[tuple[str, dict[str, str], bytes]] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def test_the_otlp_exporter_sends_to_the_configured_collector(tmp_path: Path, receiver: Receiver) -> None:
    config = TWO_ROUTES + (
        "telemetry:\n"
        f"  endpoint: http://127.0.0.1:{receiver.port}\n"
        "  headers:\n"
        "    x-collector-token: ${COLLECTOR_TOKEN}\n"
        "  service_name: souverain-test\n"
        "  resource_attributes: {deployment.environment.name: test}\n"
    )

    async def test(client: httpx.AsyncClient, gw: InProcess) -> httpx.Response:
        assert gw.gateway.telemetry is not None  # built from the configuration
        # The exporter threads that the test with telemetry off looks for, and finds none of.
        assert [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]
        return await client.post("/v1/chat/completions", json=chat(f"{SECRET_PROMPT} {EMAIL}"), headers=gw.headers)

    # The gateway's shutdown (in `run`) flushes both exporters.
    r = run(tmp_path, engines(), test, config=config, env={"COLLECTOR_TOKEN": "tok-123"})
    assert r.status_code == 200
    by_path = {path: (headers, body) for path, headers, body in receiver.received}
    assert set(by_path) == {"/v1/traces", "/v1/metrics"}
    headers, body = by_path["/v1/traces"]
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["x-collector-token"] == "tok-123"
    traces = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
    (rs,) = traces.resource_spans
    resource = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
    assert resource["service.name"] == "souverain-test" and resource["deployment.environment.name"] == "test"
    (ss,) = rs.scope_spans
    assert ss.schema_url == SCHEMA_URL
    (span,) = ss.spans
    assert span.name == "chat assistant"
    attrs = {kv.key: kv.value for kv in span.attributes}
    assert attrs["souverain.data_class"].string_value == "personal"
    assert attrs["souverain.ledger.index"].int_value == int(r.headers["x-souverain-ledger-index"])
    for path, _, raw in receiver.received:
        assert SECRET_PROMPT.encode() not in raw and EMAIL.encode() not in raw, path
    metrics = metrics_service_pb2.ExportMetricsServiceRequest.FromString(by_path["/v1/metrics"][1])
    names = {m.name for rm in metrics.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert names == {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"}


# -- the configuration -----------------------------------------------------------------


def test_the_air_gap_refuses_a_collector_that_is_not_local() -> None:
    text = "telemetry:\n  endpoint: https://otel.vendor.example:4318\n"
    with pytest.raises(
        ConfigError, match=r"^t\.yaml:2: telemetry\.endpoint: air gap is on and 'otel\.vendor\.example'"
    ):
        parse_config(text, "t.yaml", {})
    allowed = "air_gap:\n  allowed_hosts: [otel.vendor.example]\n" + text
    assert parse_config(allowed, "t.yaml", {}).telemetry.endpoint == "https://otel.vendor.example:4318"
    off = "air_gap:\n  enabled: false\n" + text
    assert parse_config(off, "t.yaml", {}).telemetry.endpoint == "https://otel.vendor.example:4318"
    assert parse_config("telemetry:\n  endpoint: http://localhost:4318\n", "t.yaml", {}).telemetry.endpoint


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("telemetry:\n  endpoint: grpc://127.0.0.1:4317\n", r"t\.yaml:2: telemetry\.endpoint: expected"),
        ("telemetry:\n  endpoint: http://u:p@127.0.0.1:4318\n", r"t\.yaml:2: telemetry\.endpoint: credentials"),
        (
            "telemetry:\n  endpoint: http://127.0.0.1:4318\n  headers:\n    authorization: Bearer abc\n",
            r"t\.yaml:4: telemetry\.headers\.authorization: a value written in the file",
        ),
        ("telemetry:\n  sampling_ratio: 1.5\n", r"sampling_ratio"),
    ],
)
def test_bad_telemetry_settings_are_refused_with_their_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text, "t.yaml", {})


def test_headers_from_the_environment_are_accepted() -> None:
    text = "telemetry:\n  endpoint: http://127.0.0.1:4318\n  headers:\n    authorization: ${OTEL_AUTH}\n"
    config = parse_config(text, "t.yaml", {"OTEL_AUTH": "Bearer abc"})
    assert config.telemetry.headers == {"authorization": "Bearer abc"}


def test_a_withheld_answer_is_a_failed_span(tmp_path: Path) -> None:
    """The ledger cannot take the entry: the caller gets a 503, and so does the span."""
    rec = Recorder()

    class BrokenLedger:
        async def append(self, *args: Any, **kwargs: Any) -> int:
            raise OSError("disk full")

    async def test(client: httpx.AsyncClient, gw: InProcess) -> httpx.Response:
        gw.gateway.pipeline.ledger = BrokenLedger()  # type: ignore[assignment]
        return await client.post("/v1/chat/completions", json=chat("Hello"), headers=gw.headers)

    r = run(tmp_path, engines(), test, telemetry=rec)
    assert r.status_code == 503
    (span,) = rec.finished()
    a = dict(span.attributes or {})
    assert a["souverain.status"] == 503 and a["souverain.decision"] == "failed"
    assert a["error.type"] == r.json()["error"]["code"]
    assert "souverain.ledger.index" not in a
    assert span.status.status_code is StatusCode.ERROR


def test_the_cost_is_on_the_span_when_accounting_set_one(tmp_path: Path) -> None:
    """Accounting (issue 21) sets the cost; telemetry passes it on, and leaves it out when
    there is none (the chat test above)."""
    rec = Recorder()
    telemetry = rec(parse_config(TWO_ROUTES, "t.yaml", {}))

    class Facts:
        endpoint, model, deployment, route = "chat", "assistant", "assistant-cloud", "c-azure-eu"
        data_class, classified, sent_class, decision = "public", True, "public", "allowed"
        status, error, finish_reasons, started = 200, "", ["length"], 0.0
        usage = {"prompt_tokens": 10, "completion_tokens": 20}
        trace = None

    telemetry.request(Facts(), 7, Decimal("0.000165"), "EUR")
    (span,) = rec.finished()
    a = dict(span.attributes or {})
    assert a["souverain.cost"] == pytest.approx(0.000165)
    assert a["souverain.cost.currency"] == "EUR"
    assert a["souverain.ledger.index"] == 7 and a["gen_ai.response.model"] == "assistant-cloud"
    telemetry.shutdown()


def test_souverain_serve_exports_and_flushes_at_shutdown(start_server: Any, receiver: Receiver) -> None:
    """The real server: telemetry named at start, and what is pending sent when it stops
    (SIGTERM: the app's shutdown flushes the batch processor within timeout_s)."""
    server = start_server(
        "routing:\n  health_interval_s: 0\n"
        "models:\n  - name: remote\n    engine: openai_http\n    base_url: http://127.0.0.1:9/v1\n"
        f"telemetry:\n  endpoint: http://127.0.0.1:{receiver.port}\n"
    )
    r = httpx.post(
        f"{server.url}/v1/chat/completions", json={**chat("Hello"), "model": "remote"}, headers=server.headers()
    )
    assert r.status_code == 502  # nothing listens on port 9: a failure, and a span all the same
    assert f"souverain: telemetry: traces and metrics to http://127.0.0.1:{receiver.port} (OTLP/HTTP)" in (
        server.log.read_text()
    )
    server.stop()
    spans = [
        span
        for path, _, body in receiver.received
        if path == "/v1/traces"
        for rs in trace_service_pb2.ExportTraceServiceRequest.FromString(body).resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    (span,) = [s for s in spans if s.name == "chat remote"]
    attrs = {kv.key: kv.value for kv in span.attributes}
    assert attrs["souverain.status"].int_value == 502
    assert attrs["souverain.ledger.index"].int_value == int(r.headers["x-souverain-ledger-index"])


def test_sampling_thins_spans_not_metrics(tmp_path: Path) -> None:
    rec = Recorder()
    config = TWO_ROUTES + "telemetry:\n  sampling_ratio: 0\n"

    async def test(client: httpx.AsyncClient, gw: InProcess) -> None:
        for _ in range(3):
            assert (await client.post("/v1/chat/completions", json=chat("Hi"), headers=gw.headers)).status_code == 200

    run(tmp_path, engines(), test, config=config, telemetry=rec)
    assert rec.finished() == []
    (point,) = rec.points("gen_ai.client.operation.duration")
    assert point.count == 3


def test_nothing_is_built_without_an_endpoint_or_with_both_signals_off() -> None:
    from souverain.telemetry import build

    assert build(parse_config("telemetry:\n  sampling_ratio: 0.5\n", "t.yaml", {})) is None
    both_off = "telemetry:\n  endpoint: http://127.0.0.1:4318\n  traces: false\n  metrics: false\n"
    assert build(parse_config(both_off, "t.yaml", {})) is None
    on = build(parse_config("telemetry:\n  endpoint: http://127.0.0.1:4318\n  metrics: false\n", "t.yaml", {}))
    assert on is not None and on.tracer_provider is not None and on.meter_provider is None
    on.shutdown()


# -- W3C trace context ------------------------------------------------------------------
TRACE_ID, CALLER_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"


def test_a_valid_traceparent_puts_the_span_in_the_callers_trace(tmp_path: Path) -> None:
    rec = Recorder()

    async def test(client: httpx.AsyncClient, gw: InProcess) -> None:
        traced = {**gw.headers, "traceparent": TRACEPARENT, "tracestate": "vendor=opaque"}
        r = await client.post("/v1/chat/completions", json=chat("Hello"), headers=traced)
        assert r.status_code == 200
        body = chat("Hello", stream=True)
        async with client.stream("POST", "/v1/chat/completions", json=body, headers=traced) as r:
            assert r.status_code == 200
            [line async for line in r.aiter_lines()]
        r = await client.post("/v1/embeddings", json={"model": "assistant", "input": "a"}, headers=traced)
        assert r.status_code == 200

    run(tmp_path, engines(), test, telemetry=rec)
    spans = rec.finished()
    assert [s.name for s in spans] == ["chat assistant", "chat assistant", "embeddings assistant"]
    for span in spans:
        assert span.kind is SpanKind.SERVER
        assert span.context is not None and span.parent is not None
        assert span.context.trace_id == int(TRACE_ID, 16)
        assert span.parent.span_id == int(CALLER_SPAN, 16) and span.parent.is_remote
        assert span.context.span_id != int(CALLER_SPAN, 16)
    assert len({s.context.span_id for s in spans if s.context}) == 3  # one span each


@pytest.mark.parametrize(
    "traceparent",
    [
        "not a traceparent",
        f"00-{'0' * 32}-{CALLER_SPAN}-01",  # the all-zero trace id is invalid
        f"00-{TRACE_ID}-{'0' * 16}-01",  # and so is the all-zero parent id
        f"00-{TRACE_ID.upper()}-{CALLER_SPAN}-01",  # lowercase only
        f"ff-{TRACE_ID}-{CALLER_SPAN}-01",  # version ff is forbidden
        f"00-{TRACE_ID}-{CALLER_SPAN}-01-extra",  # version 00 has exactly four parts
        f"00-{TRACE_ID}-{CALLER_SPAN}-01" + "x" * 600,
    ],
)
def test_an_invalid_traceparent_is_ignored(tmp_path: Path, traceparent: str) -> None:
    rec = Recorder()

    async def test(client: httpx.AsyncClient, gw: InProcess) -> httpx.Response:
        headers = {**gw.headers, "traceparent": traceparent, "tracestate": "vendor=opaque"}
        return await client.post("/v1/chat/completions", json=chat("Hello"), headers=headers)

    r = run(tmp_path, engines(), test, telemetry=rec)
    assert r.status_code == 200
    (span,) = rec.finished()
    assert span.parent is None  # a trace of its own
    assert span.context is not None and span.context.trace_id not in (0, int(TRACE_ID, 16))


@pytest.fixture(scope="module")
def upstream() -> Iterator[Any]:
    from upstreams import Upstream

    u = Upstream("upstream")
    yield u
    u.stop()


def marked(upstream: Any, propagate: bool) -> str:
    """`assistant` from `upstream`, marked `propagate_trace` or not."""
    return (
        "routing:\n  health_interval_s: 0\n"
        "models:\n  - name: assistant\n    engine: openai_http\n"
        f"    base_url: http://127.0.0.1:{upstream.port}/v1\n"
        f"    propagate_trace: {str(propagate).lower()}\n"
    )


def two_requests(upstream: Any, headers: dict[str, str]) -> Any:
    """A chat request and a streamed one; the headers `upstream` got for each."""

    async def test(client: httpx.AsyncClient, gw: InProcess) -> list[dict[str, str]]:
        before = len(upstream.headers)
        r = await client.post("/v1/chat/completions", json=chat("Hello"), headers={**gw.headers, **headers})
        assert r.status_code == 200, r.text
        body = chat("Hello", stream=True)
        async with client.stream("POST", "/v1/chat/completions", json=body, headers={**gw.headers, **headers}) as r:
            assert r.status_code == 200
            [line async for line in r.aiter_lines()]
        return upstream.headers[before:]

    return test


def test_a_marked_upstream_is_told_the_trace_and_nothing_else(tmp_path: Path, upstream: Any) -> None:
    rec = Recorder()
    incoming = {"traceparent": TRACEPARENT, "tracestate": "vendor=opaque"}
    got = run(tmp_path, {}, two_requests(upstream, incoming), config=marked(upstream, True), telemetry=rec)
    spans = rec.finished()
    assert len(got) == len(spans) == 2
    for headers, span in zip(got, spans, strict=True):
        assert span.context is not None
        # The caller's trace, and the gateway's span as the upstream's parent.
        assert headers["traceparent"] == f"00-{TRACE_ID}-{span.context.span_id:016x}-{span.context.trace_flags:02x}"
        assert span.context.trace_flags.sampled
        assert "tracestate" not in headers  # the caller's free text is not passed on

    # Without an incoming trace, the upstream is told the gateway's own.
    rec = Recorder()
    (tmp_path / "own").mkdir()
    (plain, streamed) = run(
        tmp_path / "own", {}, two_requests(upstream, {}), config=marked(upstream, True), telemetry=rec
    )
    for headers, span in zip((plain, streamed), rec.finished(), strict=True):
        assert span.context is not None and span.parent is None
        ids = f"{span.context.trace_id:032x}-{span.context.span_id:016x}-{span.context.trace_flags:02x}"
        assert headers["traceparent"] == f"00-{ids}"


def test_an_unmarked_upstream_is_told_no_trace(tmp_path: Path, upstream: Any) -> None:
    rec = Recorder()
    incoming = {"traceparent": TRACEPARENT}
    got = run(tmp_path, {}, two_requests(upstream, incoming), config=marked(upstream, False), telemetry=rec)
    assert len(got) == 2 and not [h for h in got if "traceparent" in h or "tracestate" in h]
    assert [s.context.trace_id for s in rec.finished() if s.context] == [int(TRACE_ID, 16)] * 2  # traced all the same


def test_without_telemetry_no_trace_is_sent_even_to_a_marked_upstream(tmp_path: Path, upstream: Any) -> None:
    got = run(tmp_path, {}, two_requests(upstream, {"traceparent": TRACEPARENT}), config=marked(upstream, True))
    assert len(got) == 2 and not [h for h in got if "traceparent" in h]


def test_only_a_well_formed_traceparent_is_sealed_with_a_body() -> None:
    from souverain.outbound import Outbound, Rules, seal
    from souverain.privacy import default_scanner

    def sealed(headers: dict[str, str]) -> Any:
        outbound = Outbound("chat", {"messages": []}, headers)
        return seal(outbound, route="r", scanner=default_scanner(), rules=Rules(), unmet=lambda c: [])

    assert sealed({"traceparent": TRACEPARENT}).headers == {"traceparent": TRACEPARENT}
    assert sealed({}).headers == {}
    for bad in ({"traceparent": TRACEPARENT + "-x"}, {"traceparent": "00-marie@example.fr"}, {"tracestate": "a=b"}):
        with pytest.raises(TypeError, match="cannot be sealed"):
            sealed(bad)
