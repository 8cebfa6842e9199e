"""The `usage:` settings, as typed structs (docs/usage.md, docs/configuration.md).

    usage:
      currency: EUR
      prices:
        - {route: mistral-api, input_per_million: 1.50, output_per_million: 7.50}
        - {route: mistral-api-small, input_per_million: 0.10, output_per_million: 0.30}
      self_hosted:
        - {route: onprem-gpu, gpus: 4, gpu_price: 30000, server_price: 20000,
           kwh_price: 0.25, hosting_per_month: 800, operations_fte: 0.25,
           operations_cost_per_year: 90000, tokens_per_second: 1500}
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


HOURS_PER_MONTH = 730  # 8,760 h / 12: the calculators' month (docs/usage.md, "The cost case")


class SelfHosted(Base):
    """The cost of one self-hosted route's deployment, and what it can serve: the model
    behind `souverain usage costs` and the `per_hour` its requests are charged.

    Defaults are the seed guide's deployment (four GPUs) and stated assumptions; every
    money figure is the operator's, in `usage.currency`, and 0 unless given."""

    # The route this deployment is, as the usage records name it: a `models[].route`, or
    # the built-in `local` (the embedded engine) or `undeclared`.
    route: Name
    # Bought: GPUs and servers amortised over `amortisation_years`.
    gpus: Annotated[int, Meta(ge=1, le=100_000)] = 4
    gpu_price: Money = Decimal(0)  # purchase price of one GPU
    server_price: Money = Decimal(0)  # the servers around them, all together
    amortisation_years: Annotated[float, Meta(gt=0, le=20)] = 4.0
    # Rented: the price of one GPU-hour (then the purchase prices stay 0).
    rent_per_gpu_hour: Money = Decimal(0)
    # Power: the deployment's average draw (GPUs and servers), its price, the site's PUE.
    watts: Annotated[float, Meta(ge=0)] = 3000.0
    kwh_price: Money = Decimal(0)
    pue: Annotated[float, Meta(ge=1, le=5)] = 1.4
    # Rack space, network and support contracts, per month.
    hosting_per_month: Money = Decimal(0)
    # Operations staff: the share of a full-time engineer it takes, and their yearly cost.
    operations_fte: Annotated[float, Meta(ge=0, le=1000)] = 0.0
    operations_cost_per_year: Money = Decimal(0)
    # Input + output tokens a second the deployment serves when busy (a benchmark of
    # yours); omitted: measured from the ledger over the period `souverain usage costs`
    # reads (tokens of the route's requests over the time at least one was running).
    tokens_per_second: Annotated[float, Meta(gt=0)] | None = None
    # Requests it serves at once: a request is charged per_hour × seconds / concurrency.
    concurrency: Annotated[int, Meta(ge=1)] = 1

    def __post_init__(self) -> None:
        for name in (
            "gpu_price",
            "server_price",
            "rent_per_gpu_hour",
            "kwh_price",
            "hosting_per_month",
            "operations_cost_per_year",
        ):
            _non_negative(name, getattr(self, name))
        if self.rent_per_gpu_hour and (self.gpu_price or self.server_price):
            raise ValueError(
                "a self-hosted route is bought (gpu_price, server_price) or rented (rent_per_gpu_hour), not both"
            )
        if not (self.rent_per_gpu_hour or self.gpu_price or self.server_price):
            raise ValueError("say what the deployment's GPUs cost: gpu_price (bought) or rent_per_gpu_hour (rented)")

    def monthly(self) -> dict[str, Decimal]:
        """The deployment's cost per month, by part (unrounded)."""
        hours = Decimal(HOURS_PER_MONTH)
        months = Decimal(repr(self.amortisation_years)) * 12
        kwh = Decimal(repr(self.watts)) * Decimal(repr(self.pue)) / 1000 * hours
        bought = self.gpu_price or self.server_price
        return {
            **(
                {"hardware": (self.gpus * self.gpu_price + self.server_price) / months}
                if bought
                else {"rent": self.gpus * self.rent_per_gpu_hour * hours}
            ),
            "power": kwh * self.kwh_price,
            "hosting": self.hosting_per_month,
            "operations": Decimal(repr(self.operations_fte)) * self.operations_cost_per_year / 12,
        }

    def per_month(self) -> Decimal:
        return sum(self.monthly().values(), Decimal(0))

    def per_hour(self) -> Decimal:
        return self.per_month() / HOURS_PER_MONTH


class CostCentres(Base):
    """The cost-centre tag of a request: its key's (by key id or name), else its tenant's,
    else none. Not from a header: a caller must not move its spending to another budget."""

    keys: dict[str, Name] = {}
    tenants: dict[str, Name] = {}

    def of(self, key_id: str, tenant: str, key_name: str | None = None) -> str:
        """The tag of a request made with this key (its name, where known) for this tenant;
        "" when none applies."""
        return (
            self.keys.get(key_id)
            or (self.keys.get(key_name) if key_name is not None else None)
            or self.tenants.get(tenant)
            or ""
        )


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
    # The cost of each self-hosted route's deployment: its `per_hour` price, and the
    # comparison of `souverain usage costs`.
    self_hosted: list[SelfHosted] = msgspec.field(default_factory=list)
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

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for entry in self.self_hosted:
            if entry.route in seen:
                raise ValueError(f"self_hosted: route {entry.route!r} is described twice")
            seen.add(entry.route)
        for price in self.prices:
            if price.route in seen and price.per_hour:
                raise ValueError(
                    f"prices: route {price.route!r} has a per_hour price and a self_hosted cost model; "
                    "keep one (the model gives its per_hour)"
                )
