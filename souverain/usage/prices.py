"""What a request costs, from the price catalogue (`usage.prices`), and the worst case a
budget reserves before the call.

Costs are `Decimal`s in `usage.currency`, rounded to micro-units (1e-6) once, at the end,
half up: the ledger's `cost` and the usage rows hold exactly the same figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from souverain.usage.config import Price, UsageConfig

MICRO = Decimal("0.000001")
MILLION = Decimal(1_000_000)
HOUR = Decimal(3600)


@dataclass(frozen=True, slots=True)
class Tokens:
    """One request's usage: the route's own counts when it reports them, else the
    gateway's (engines fill `usage` either way: docs/dialects.md, "What comes back")."""

    input: int = 0
    output: int = 0  # includes reasoning tokens, as OpenAI counts them
    reasoning: int = 0
    cached: int = 0  # of `input`, served from the route's prompt cache

    @classmethod
    def of(cls, usage: Mapping[str, Any] | None) -> Tokens:
        usage = usage or {}
        out_details = usage.get("completion_tokens_details") or {}
        in_details = usage.get("prompt_tokens_details") or {}
        return cls(
            input=_count(usage.get("prompt_tokens")),
            output=_count(usage.get("completion_tokens")),
            reasoning=_count(out_details.get("reasoning_tokens") if isinstance(out_details, dict) else 0),
            cached=_count(in_details.get("cached_tokens") if isinstance(in_details, dict) else 0),
        )

    @property
    def total(self) -> int:
        return self.input + self.output


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def micros(amount: Decimal) -> int:
    return int(amount.quantize(MICRO, rounding=ROUND_HALF_UP) * 1_000_000)


class Catalogue:
    """The price of each (route, model): the first entry of `usage.prices` naming both,
    else the first naming the route only, else the first naming the model only, else an
    entry naming neither; none: the request costs nothing (and a money budget counts
    nothing for it). A route of `usage.self_hosted` is priced by its cost model: its
    `per_hour` is the deployment's monthly cost over 730 hours."""

    def __init__(self, config: UsageConfig) -> None:
        self.currency = config.currency
        self.prices = [
            Price(route=s.route, per_hour=s.per_hour(), concurrency=s.concurrency) for s in config.self_hosted
        ] + list(config.prices)
        self._memo: dict[tuple[str, str, str], Price | None] = {}

    def price(self, route: str, model: str, deployment: str = "") -> Price | None:
        """`route` matches a price's `route` by the route's name or its deployment's."""
        key = (route, model, deployment)
        if key not in self._memo:
            routes = {route, deployment or route}
            ranked = [
                p
                for rank in range(4)
                for p in self.prices
                if rank
                == (
                    0
                    if p.route in routes and p.model == model
                    else 1
                    if p.route in routes and p.model is None
                    else 2
                    if p.route is None and p.model == model
                    else 3
                    if p.route is None and p.model is None
                    else -1
                )
            ]
            self._memo[key] = ranked[0] if ranked else None
        return self._memo[key]

    def cost(self, route: str, model: str, deployment: str, tokens: Tokens, seconds: float) -> Decimal:
        """The cost of a request that used `tokens` and held the route `seconds`."""
        return self.amount(route, model, deployment, tokens, seconds).quantize(MICRO, rounding=ROUND_HALF_UP)

    def amount(self, route: str, model: str, deployment: str, tokens: Tokens, seconds: float) -> Decimal:
        """`cost`, unrounded (for sums over many requests' tokens: the cost case)."""
        price = self.price(route, model, deployment)
        if price is None:
            return Decimal(0)
        cached = min(tokens.cached, tokens.input)
        cached_price = (
            price.input_per_million if price.cached_input_per_million is None else price.cached_input_per_million
        )
        amount = (
            (tokens.input - cached) * price.input_per_million
            + cached * cached_price
            + tokens.output * price.output_per_million
        ) / MILLION
        if price.per_hour:
            amount += price.per_hour * Decimal(repr(max(seconds, 0.0))) / HOUR / price.concurrency
        return amount

    def worst_case(
        self, route: str, model: str, deployment: str, input_tokens: int, output_cap: int, seconds: float
    ) -> Decimal:
        """The most a request can cost on (route, model): every input token uncached, the
        whole output cap used, the slot held `seconds`. Rounded up to the micro-unit."""
        price = self.price(route, model, deployment)
        if price is None:
            return Decimal(0)
        amount = (input_tokens * price.input_per_million + output_cap * price.output_per_million) / MILLION
        if price.per_hour:
            amount += price.per_hour * Decimal(repr(seconds)) / HOUR / price.concurrency
        return amount.quantize(MICRO, rounding="ROUND_CEILING")
