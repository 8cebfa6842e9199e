"""The `usage:` settings, as typed structs (docs/usage.md, docs/configuration.md).

    usage:
      currency: EUR
      prices:
        - {route: mistral-api, input_per_million: 1.50, output_per_million: 7.50}
        - {route: onprem-gpu, per_hour: 12.0, concurrency: 8}
      cost_centres: {keys: {alice-laptop: cc-research}, tenants: {acme: cc-acme}}
      budgets:
        - {tenant: acme, money: 100, period: month, requests_per_minute: 600}
        - {cost_centre: cc-research, tokens_per_minute: 200000}

This module imports nothing of the gateway's but the struct base: the configuration
schema imports it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from souverain.strict import Strict as Base

Name = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")]
Money = Decimal  # >= 0, checked in __post_init__
Period = Literal["hour", "day", "month"]


def _non_negative(name: str, value: Decimal | None) -> None:
    if value is not None and not value >= 0:
        raise ValueError(f"{name}: a price or budget is a number of at least 0")


class Price(Base):
    """The price of one route (or one model on any route, or one model on one route).

    API routes: per-token prices, per million tokens. Self-hosted routes: the cost of the
    capacity a request holds, `per_hour` (the hourly cost of the deployment: amortised
    purchase, or rent, power, hosting, operations) times the request's seconds on it,
    divided by `concurrency` (requests it serves at once)."""

    # The route (a model's `name` in `models:`) this price is for; omitted: any route.
    route: Name | None = None
    # The model asked for; omitted: any model on `route`.
    model: Name | None = None
    input_per_million: Money = Decimal(0)
    output_per_million: Money = Decimal(0)
    # Prompt tokens the route served from its cache; omitted: `input_per_million`.
    cached_input_per_million: Money | None = None
    # Self-hosted: the deployment's cost per hour, shared by `concurrency` requests.
    per_hour: Money = Decimal(0)
    concurrency: Annotated[int, Meta(ge=1)] = 1

    def __post_init__(self) -> None:
        for name in ("input_per_million", "output_per_million", "cached_input_per_million", "per_hour"):
            _non_negative(name, getattr(self, name))


class CostCentres(Base):
    """The cost-centre tag of a request: its key's (by key id or name), else its tenant's,
    else none. Not from a header: a caller must not move its spending to another budget."""

    keys: dict[str, Name] = {}
    tenants: dict[str, Name] = {}


class Budget(Base):
    """Limits on one tenant, key or cost centre (name exactly one of the three)."""

    tenant: Name | None = None
    key: Name | None = None  # a key id or a key name
    cost_centre: Name | None = None
    # Money per `period` (UTC calendar hour, day or month), in `usage.currency`.
    money: Money | None = None
    period: Period = "month"
    requests_per_minute: Annotated[int, Meta(ge=1)] | None = None
    tokens_per_minute: Annotated[int, Meta(ge=1)] | None = None

    def __post_init__(self) -> None:
        self.scope()
        _non_negative("money", self.money)

    def scope(self) -> tuple[str, str]:
        named = [(k, v) for k, v in (("tenant", self.tenant), ("key", self.key), ("cc", self.cost_centre)) if v]
        if len(named) != 1:
            raise ValueError("a budget names exactly one of tenant, key, cost_centre")
        return named[0]


class RedisBudgets(Base, tag="redis", tag_field="kind"):
    # redis://host:port/db or unix:///path/to/socket?db=N; the password from the
    # environment (${ENV_VAR}).
    url: Annotated[str, Meta(min_length=1)]


class StateBudgets(Base, tag="state", tag_field="kind"):
    """Counters in the `state:` database: SQLite in the state directory, or PostgreSQL."""


class UsageConfig(Base):
    # ISO 4217 code of every price and budget, and of the ledger's `cost`.
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")] = "EUR"
    prices: list[Price] = msgspec.field(default_factory=list)
    cost_centres: CostCentres = msgspec.field(default_factory=CostCentres)
    budgets: list[Budget] = msgspec.field(default_factory=list)
    # Where budget and limit counters are kept (shared by every replica).
    budget_store: StateBudgets | RedisBudgets = msgspec.field(default_factory=StateBudgets)
    # The output cap a reservation assumes for a request without max_tokens.
    default_output_cap: Annotated[int, Meta(ge=1)] = 4096
    # Seconds a self-hosted request is assumed to hold its slot, for its reservation.
    worst_case_seconds: Annotated[float, Meta(gt=0)] = 120.0
    # Days the per-request usage rows are kept: a whole UTC month of rows goes once it
    # ended more than this many days ago; the daily totals stay. Unset: kept forever.
    retention_days: Annotated[int, Meta(ge=1, le=36500)] | None = None
