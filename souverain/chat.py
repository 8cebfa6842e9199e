"""The internal request types every dialect parses into.

The OpenAI chat-completions body is the lingua franca of inference servers, so the
internal request keeps its field names; dialect parsers (OpenAI now, Mistral next)
normalise into these structs and engines translate out of them. Unknown fields are
accepted and ignored, as OpenAI-compatible servers do; wrong types and out-of-range values
are rejected with the offending field named.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from souverain.classes import DataClassName
from souverain.errors import InvalidRequest, ValidationFailed


class Wire(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Request structs. `omit_defaults` keeps what the caller did not send out of the
    classified payload; it also leaves out fields equal to their default (a tool's
    `type: "function"`), so these structs are never the body sent upstream: the
    translators (`souverain/engines/translators/`) write that field by field."""


class FunctionCall(Wire):
    name: str
    # OpenAI sends a JSON string; Mistral may send an object.
    arguments: str | dict[str, Any] = "{}"


class ToolCall(Wire):
    function: FunctionCall
    id: str | None = None
    type: str = "function"
    index: int | None = None


class Message(Wire):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text: a string, or the text parts of a content list joined."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        parts = []
        for part in self.content:
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                raise InvalidRequest(
                    f"content part of type {part.get('type')!r} is not supported; only text parts are",
                    param="messages",
                    code="unsupported_content",
                )
        return "".join(parts)


class FunctionDef(Wire):
    name: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    description: str | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


class Tool(Wire):
    function: FunctionDef
    type: Literal["function"] = "function"


class JSONSchemaFormat(Wire):
    name: str = "response"
    description: str | None = None
    # OpenAI's field; Mistral's SDK serialises its `schema_definition` under the same alias.
    schema: dict[str, Any] | None = None
    strict: bool | None = None


class ResponseFormat(Wire):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None
    # llama.cpp's extension: {"type": "json_object", "schema": {...}}
    schema: dict[str, Any] | None = None

    def target_schema(self) -> dict[str, Any] | None:
        """The JSON Schema the output must satisfy, or None for any JSON object / text."""
        if self.type == "json_schema":
            if self.json_schema is None or self.json_schema.schema is None:
                raise InvalidRequest(
                    "response_format of type json_schema needs json_schema.schema", param="response_format"
                )
            return self.json_schema.schema
        if self.type == "json_object":
            return self.schema
        return None


class StreamOptions(Wire):
    include_usage: bool = False


Temperature = Annotated[float, Meta(ge=0, le=2)]
Probability = Annotated[float, Meta(ge=0, le=1)]
Penalty = Annotated[float, Meta(ge=-2, le=2)]


class ChatRequest(Wire):
    model: Annotated[str, Meta(min_length=1)]
    messages: Annotated[list[Message], Meta(min_length=1)]
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None
    max_tokens: Annotated[int, Meta(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Meta(ge=1)] | None = None
    stop: str | Annotated[list[str], Meta(max_length=16)] | None = None
    seed: int | None = None
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = None
    # "any" is Mistral's spelling of "required"; `normalise` rewrites it.
    tool_choice: Literal["none", "auto", "required", "any"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    n: Annotated[int, Meta(ge=1)] | None = None
    # Log probabilities of the output tokens, and of the `top_logprobs` likeliest at each.
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    user: str | None = None
    # Reasoning, both dialects: none < minimal < low < medium < high < xhigh < max.
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    # Souverain's extension: a hard cap on thinking tokens (also the
    # `x-souverain-reasoning-budget` header, for SDKs that cannot send extra fields).
    reasoning_budget_tokens: Annotated[int, Meta(ge=0)] | None = None
    # Souverain's extension: the caller's own classification of the data (also the
    # `x-souverain-data-class` header); the scanner can only raise it.
    data_class: DataClassName | None = None
    # Mistral dialect fields.
    random_seed: int | None = None
    safe_prompt: bool = False
    prompt_mode: Literal["reasoning"] | None = None

    def normalise(self) -> ChatRequest:
        """Fold dialect spellings into one: `random_seed` → `seed`, `any` → `required`."""
        changes: dict[str, Any] = {}
        if self.random_seed is not None:
            if self.seed is not None and self.seed != self.random_seed:
                raise InvalidRequest("seed and random_seed disagree; send one", param="random_seed")
            changes["seed"], changes["random_seed"] = self.random_seed, None
        if self.tool_choice == "any":
            changes["tool_choice"] = "required"
        return msgspec.structs.replace(self, **changes) if changes else self

    def uses_mistral_fields(self) -> bool:
        return (
            self.random_seed is not None
            or self.safe_prompt
            or self.prompt_mode is not None
            or self.tool_choice == "any"
        )

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def named_tool(self) -> str | None:
        """The function name when tool_choice forces one specific function."""
        if isinstance(self.tool_choice, dict):
            fn = self.tool_choice.get("function")
            name = fn.get("name") if isinstance(fn, dict) else None
            if self.tool_choice.get("type") != "function" or not isinstance(name, str):
                raise InvalidRequest(
                    'tool_choice object must be {"type": "function", "function": {"name": ...}}',
                    param="tool_choice",
                )
            if not any(t.function.name == name for t in self.tools or []):
                raise InvalidRequest(f"tool_choice names {name!r}, which is not in tools", param="tool_choice")
            return name
        return None


class EmbeddingRequest(Wire):
    model: Annotated[str, Meta(min_length=1)]
    # Strings, or token ids (list[int] / list[list[int]]), which are refused with a clear 400.
    input: str | list[Any]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, Meta(ge=1)] | None = None
    user: str | None = None
    data_class: DataClassName | None = None
    # Mistral's names: output_dimension is `dimensions`; only float output is produced.
    output_dimension: Annotated[int, Meta(ge=1)] | None = None
    output_dtype: Literal["float"] | None = None

    def target_dimensions(self) -> int | None:
        return self.dimensions or self.output_dimension

    def texts(self) -> list[str]:
        if isinstance(self.input, str):
            items: list[Any] = [self.input]
        else:
            items = list(self.input)
        if not items:
            raise InvalidRequest("input must not be empty", param="input")
        if not all(isinstance(i, str) for i in items):
            raise InvalidRequest("token-id input is not supported; send strings", param="input")
        if not all(items):
            raise InvalidRequest("input must not hold an empty string: it has nothing to embed", param="input")
        return items


class Usage(Wire):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


def decode(body: bytes, kind: type[Wire]) -> Any:
    """Parse a JSON body into a request struct, turning every failure into a 400."""
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        message = str(exc)
        param = None
        loc: list[str | int] = []
        if " - at `$." in message:
            message, _, path = message.partition(" - at `$.")
            param = path.rstrip("`")
            message = f"{message} at `{param}`"
            loc = [int(i) if i.isdigit() else i for i in re.findall(r"[A-Za-z_][A-Za-z0-9_]*|\d+", param)]
        missing = re.match(r"Object missing required field `([^`]+)`", message)
        if missing:
            loc.append(missing.group(1))
            param = ".".join(str(p) for p in loc)
        raise ValidationFailed(f"Invalid request body: {message}", loc=loc, param=param) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"Request body is not valid JSON: {exc}", code="invalid_json") from None
    except UnicodeDecodeError as exc:  # msgspec lets invalid UTF-8 inside a string through
        raise InvalidRequest(
            f"Request body is not valid UTF-8 (byte {exc.start} of a string)", code="invalid_json"
        ) from None
    except RecursionError:  # nesting deeper than the decoder's stack
        raise InvalidRequest("Request body is nested too deeply", code="invalid_json") from None
