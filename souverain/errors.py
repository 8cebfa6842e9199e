"""Errors that cross module boundaries.

Every failure a client can see is a `GatewayError`: it carries the HTTP status and the
OpenAI error `type`/`code`, so the API layer renders it in the caller's dialect without
knowing where it came from. Anything else that escapes is a bug and becomes a 500 without
a stack trace in the response.
"""

from __future__ import annotations


class GatewayError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class ValidationFailed(InvalidRequest):
    """The body does not match the schema; `loc` is the path to the bad field. OpenAI
    clients get a 400; Mistral clients a 422 in the shape their SDK parses."""

    def __init__(self, message: str, *, loc: list[str | int], param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.loc = loc


class Unsupported(InvalidRequest):
    """The request needs something the chosen upstream cannot do (a column of the
    capability table, docs/dialects.md, named by `capability`). Raised before anything is
    sent; the pipeline then tries the next allowed route, and answers with the first
    refusal if none can."""

    def __init__(self, message: str, *, capability: str, param: str, code: str) -> None:
        super().__init__(message, param=param, code=code)
        self.capability = capability


class Unauthorized(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(GatewayError):
    status = 403
    type = "permission_error"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class Overloaded(GatewayError):
    """The engine's queue is full; the client should come back after `Retry-After`."""

    status = 429
    type = "rate_limit_error"
    code = "engine_queue_full"


class UpstreamError(GatewayError):
    status = 502
    type = "upstream_error"
    code = "upstream_error"


class UpstreamRateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "upstream_rate_limited"


class UpstreamTimeout(GatewayError):
    status = 504
    type = "upstream_error"
    code = "upstream_timeout"


class GatewayTimeout(GatewayError):
    status = 504
    type = "server_error"
    code = "request_timeout"


class EngineUnavailable(GatewayError):
    status = 503
    type = "server_error"
    code = "engine_not_ready"


class NoRoute(GatewayError):
    """No route may carry the request's data class (403), or none of those that may is
    available now (503). The request was sent nowhere."""

    type = "routing_error"

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message, code=code, headers={"Retry-After": "5"} if status == 503 else None)
        self.status = status


class LedgerUnavailable(GatewayError):
    status = 503
    type = "server_error"
    code = "ledger_unavailable"


class StateUnavailable(GatewayError):
    """This process cannot vouch that its copy of the API keys is current (the database
    has not answered within `state.key_cache_s`): keys are refused until it does."""

    status = 503
    type = "server_error"
    code = "state_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "1"})


class BudgetExceeded(GatewayError):
    """A budget or limit of the caller's tenant, key or cost centre has no room for this
    request's worst case (docs/usage.md). OpenAI's shapes: `insufficient_quota` for money,
    `rate_limit_exceeded` (type `requests` or `tokens`) for limits; `Retry-After` and the
    `x-ratelimit-*` headers say when it resets."""

    status = 429

    def __init__(self, message: str, *, type_: str, code: str, headers: dict[str, str]) -> None:
        super().__init__(message, code=code, headers=headers)
        self.type = type_


class BudgetUnavailable(GatewayError):
    """The budget store cannot be reached: no request is let through unaccounted."""

    status = 503
    type = "server_error"
    code = "budget_store_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "5"})


class ConfigError(Exception):
    """A configuration file is invalid; the message names the file, line and key."""
