"""The cost case: what a period's traffic cost on the self-hosted routes against what the
same tokens would have cost on each API route of the catalogue, the break-even monthly
volume, and the cost per million tokens by utilisation (`souverain usage costs`,
`GET /admin/usage/costs`; docs/usage.md, "The cost case").

    case = CostQuery.parse(since, until, route, against, fmt).run(usage_config, db, throughput)

Fixed costs come from `usage.self_hosted` (or, for a route priced only `per_hour` in
`usage.prices`, that figure × 730 h); tokens from the daily usage roll-up; a route's
throughput from its configuration, else measured from the ledger (`measured_throughput`).
Every figure is a `Decimal` in `usage.currency`; nothing here writes anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

from souverain.usage.config import HOURS_PER_MONTH, UsageConfig
from souverain.usage.prices import MILLION, Catalogue, Tokens
from souverain.usage.report import EPOCH, QueryError, parse_day
from souverain.usage.store import UsageDb

UTILISATIONS = (Decimal("0.10"), Decimal("0.25"), Decimal("0.50"), Decimal("0.75"), Decimal("1"))
DEFAULT_DAYS = 30
FORMATS = ("table", "json", "html")
CENT = Decimal("0.01")
MILLI = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class Deployment:
    """A self-hosted route as the cost case sees it: its monthly cost, by part."""

    route: str
    parts: dict[str, Decimal]
    tokens_per_second: float | None  # configured; None: measured, if the ledger can tell

    @property
    def per_month(self) -> Decimal:
        return sum(self.parts.values(), Decimal(0))


def deployments(config: UsageConfig) -> list[Deployment]:
    """Every self-hosted route: those of `usage.self_hosted`, then the routes priced only
    `per_hour` in `usage.prices` (their monthly cost: per_hour × 730 h, not broken down)."""
    found = [Deployment(s.route, s.monthly(), s.tokens_per_second) for s in config.self_hosted]
    named = {d.route for d in found}
    for price in config.prices:
        if price.route and price.per_hour and price.route not in named and price.model is None:
            found.append(Deployment(price.route, {"per_hour": price.per_hour * HOURS_PER_MONTH}, None))
            named.add(price.route)
    return found


def api_routes(config: UsageConfig) -> list[str]:
    """The API routes of the catalogue: named routes priced per token, not self-hosted."""
    hosted = {d.route for d in deployments(config)}
    seen: list[str] = []
    for price in config.prices:
        per_token = price.input_per_million or price.output_per_million
        if price.route and per_token and not price.per_hour and price.route not in hosted and price.route not in seen:
            seen.append(price.route)
    return seen


@dataclass(frozen=True, slots=True)
class Throughput:
    tokens_per_second: float
    source: str  # "configured" | "measured"


def measured_throughput(entries: Iterable[tuple[float, int, int]]) -> float | None:
    """Tokens a second while busy, from (end time in epoch seconds, latency in ms, input +
    output tokens) of a route's answered requests: their tokens over the length of the
    union of their [end − latency, end] intervals (the time at least one was running).
    None without a request that took time."""
    spans = sorted((end - latency / 1000, end, tokens) for end, latency, tokens in entries if latency > 0)
    if not spans:
        return None
    busy = 0.0
    tokens = 0
    start, stop = spans[0][0], spans[0][1]
    for lo, hi, n in spans:
        tokens += n
        if lo > stop:
            busy += stop - start
            start, stop = lo, hi
        else:
            stop = max(stop, hi)
    busy += stop - start
    return tokens / busy if busy > 0 and tokens > 0 else None


def ledger_throughput(store: Any, routes: Sequence[str], first: datetime, end: datetime) -> dict[str, float]:
    """`measured_throughput` of each of `routes` over the ledger entries recorded in
    [first, end); `store` is a ledger store (`read_entries`, `sequenced_size`). Entries
    are in time order but for clock steps, so the start is found by bisection."""
    from souverain.ledger.entry import decode_entry

    size = store.sequenced_size()

    def time_at(index: int) -> float:
        rows = store.read_entries(index, index + 1)
        return decode_entry(rows[0][1]).time.timestamp() if rows else math.inf

    lo, hi = 0, size
    since = first.timestamp()
    while lo < hi:
        mid = (lo + hi) // 2
        if time_at(mid) < since:
            lo = mid + 1
        else:
            hi = mid
    wanted = set(routes)
    spans: dict[str, list[tuple[float, int, int]]] = {r: [] for r in routes}
    index, until = lo, end.timestamp()
    while index < size:
        rows = store.read_entries(index, index + 1000)
        if not rows:
            break
        for _, data in rows:
            entry = decode_entry(data)
            t = entry.time.timestamp()
            if t >= until:
                index = size
                break
            if entry.route in wanted and entry.status < 400 and t >= since:
                spans[entry.route].append((t, entry.latency_ms, entry.prompt_tokens + entry.completion_tokens))
        else:
            index = rows[-1][0] + 1
    out = {}
    for route, found in spans.items():
        tps = measured_throughput(found)
        if tps is not None:
            out[route] = tps
    return out


@dataclass(frozen=True, slots=True)
class CostQuery:
    since: date
    until: date
    route: str | None = None  # one self-hosted route; None: all
    against: str | None = None  # one API route; None: all
    format: str = "table"

    @classmethod
    def parse(
        cls,
        since: str | None,
        until: str | None,
        route: str | None = None,
        against: str | None = None,
        format: str | None = None,
        today: date | None = None,
    ) -> CostQuery:
        """The period defaults to the 30 days ending today (UTC), both included."""
        fmt = format or "table"
        if fmt not in FORMATS:
            raise QueryError(f"unknown format {fmt!r}; {', '.join(FORMATS)}")
        today = today or datetime.now(UTC).date()
        last = parse_day(until, "until") or today
        first = parse_day(since, "since") or last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            raise QueryError(f"since ({first}) is after until ({last})")
        return cls(first, last, route or None, against or None, fmt)

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def bounds(self) -> tuple[datetime, datetime]:
        """[first instant, instant after the last day), UTC."""
        start = datetime(self.since.year, self.since.month, self.since.day, tzinfo=UTC)
        return start, start + timedelta(days=self.days)

    def routes(self, config: UsageConfig) -> tuple[list[Deployment], list[str]]:
        """The self-hosted routes and API routes this query compares; a name that is
        neither is a QueryError naming what there is."""
        hosted = deployments(config)
        apis = api_routes(config)
        if not hosted:
            raise QueryError(
                "no self-hosted route to compare: describe one in usage.self_hosted "
                "(or give it a per_hour price in usage.prices)"
            )
        if self.route is not None:
            hosted = [d for d in hosted if d.route == self.route]
            if not hosted:
                names = ", ".join(d.route for d in deployments(config))
                raise QueryError(f"route {self.route!r} is not a self-hosted route of usage.self_hosted ({names})")
        if self.against is not None:
            if self.against not in apis:
                known = ", ".join(apis) or "none"
                raise QueryError(
                    f"route {self.against!r} has no per-token price in usage.prices, so nothing to compare with "
                    f"(API routes priced per token: {known})"
                )
            apis = [self.against]
        return hosted, apis

    def run(self, config: UsageConfig, db: UsageDb, open_ledger: Callable[[], Any] | None = None) -> CostCase:
        """The comparison; `open_ledger` opens a ledger store (closed after), read only
        when a route's throughput is to be measured."""
        hosted, apis = self.routes(config)
        throughput: dict[str, float] = {}
        unknown = [d.route for d in hosted if d.tokens_per_second is None]
        if unknown and open_ledger is not None:
            store = open_ledger()
            try:
                throughput = ledger_throughput(store, unknown, *self.bounds())
            finally:
                store.close()
        first = (self.since - EPOCH).days
        last = (self.until - EPOCH).days
        rows = db.totals(("route", "model"), first, last)
        return case(config, self, hosted, apis, rows, throughput)


@dataclass(slots=True)
class Against:
    """One API route, for one self-hosted route's traffic."""

    route: str
    cost: Decimal | None  # the period's tokens at this route's prices; None: no traffic
    per_million: Decimal | None  # blended, with the traffic's input/output/cache mix
    break_even: int | None  # tokens a month at which self-hosting costs the same
    why: str = ""  # why `break_even` is None


@dataclass(slots=True)
class RouteCase:
    route: str
    parts: dict[str, Decimal]
    per_month: Decimal
    period_cost: Decimal  # the deployment's cost over the period, used or not
    charged: Decimal  # what the period's requests were charged (per_hour × seconds)
    requests: int
    tokens: Tokens
    throughput: Throughput | None
    capacity: int | None  # tokens a month at full use
    utilisation: Decimal | None  # the period's tokens over what it could have served
    cost_per_million: Decimal | None  # the period's cost over its tokens
    sensitivity: list[tuple[Decimal, Decimal]]  # (utilisation, cost per million)
    against: list[Against] = field(default_factory=list)


@dataclass(slots=True)
class CostCase:
    currency: str
    since: date
    until: date
    days: int
    routes: list[RouteCase]
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        def money(v: Decimal | None, q: Decimal = CENT) -> str | None:
            return None if v is None else f"{v.quantize(q, rounding=ROUND_HALF_UP):f}"

        return {
            "currency": self.currency,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "days": self.days,
            "hours_per_month": HOURS_PER_MONTH,
            "self_hosted": [
                {
                    "route": r.route,
                    "monthly_cost": {k: money(v) for k, v in r.parts.items()} | {"total": money(r.per_month)},
                    "period_cost": money(r.period_cost),
                    "charged_to_requests": money(r.charged),
                    "requests": r.requests,
                    "tokens": {
                        "input": r.tokens.input,
                        "output": r.tokens.output,
                        "cached": r.tokens.cached,
                        "total": r.tokens.total,
                    },
                    "tokens_per_second": None if r.throughput is None else round(r.throughput.tokens_per_second, 3),
                    "throughput_source": None if r.throughput is None else r.throughput.source,
                    "capacity_tokens_per_month": r.capacity,
                    # the period's traffic at a monthly rate (730 h a month)
                    "tokens_per_month": int(
                        (Decimal(r.tokens.total) * HOURS_PER_MONTH / (self.days * 24)).to_integral_value(
                            rounding=ROUND_HALF_UP
                        )
                    ),
                    "utilisation": None if r.utilisation is None else f"{r.utilisation.quantize(MILLI):f}",
                    "cost_per_million": money(r.cost_per_million, MILLI),
                    "sensitivity": [
                        {"utilisation": f"{u:f}", "cost_per_million": money(c, MILLI)} for u, c in r.sensitivity
                    ],
                    "against": [
                        {
                            "route": a.route,
                            "cost": money(a.cost),
                            "per_million": money(a.per_million, MILLI),
                            "saving": None if a.cost is None else money(a.cost - r.period_cost),
                            "break_even_tokens_per_month": a.break_even,
                            **({"no_break_even": a.why} if a.why else {}),
                        }
                        for a in r.against
                    ],
                }
                for r in self.routes
            ],
            "notes": self.notes,
        }


def case(
    config: UsageConfig,
    query: CostQuery,
    hosted: Sequence[Deployment],
    apis: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    throughput: Mapping[str, float],
) -> CostCase:
    """The comparison, from the roll-up's `rows` (grouped by route and model)."""
    catalogue = Catalogue(config)
    hours = Decimal(query.days * 24)
    seconds = query.days * 86400
    notes: list[str] = []
    if not apis:
        notes.append("no API route priced per token in usage.prices: nothing to compare with")
    out: list[RouteCase] = []
    for d in hosted:
        mine = [r for r in rows if r["route"] == d.route]
        tokens = Tokens(
            input=sum(r["input_tokens"] for r in mine),
            output=sum(r["output_tokens"] for r in mine),
            cached=sum(r["cached_tokens"] for r in mine),
        )
        requests = sum(r["requests"] - r["refused"] for r in mine)
        per_month = d.per_month
        period_cost = per_month * hours / HOURS_PER_MONTH
        tput: Throughput | None = None
        if d.tokens_per_second is not None:
            tput = Throughput(d.tokens_per_second, "configured")
        elif d.route in throughput:
            tput = Throughput(throughput[d.route], "measured")
        capacity = None if tput is None else int(tput.tokens_per_second * HOURS_PER_MONTH * 3600)
        utilisation = None
        if tput is not None and tokens.total:
            utilisation = Decimal(tokens.total) / (Decimal(repr(tput.tokens_per_second)) * seconds)
        sensitivity = [(u, per_month / (Decimal(capacity) * u) * MILLION) for u in UTILISATIONS] if capacity else []
        rc = RouteCase(
            route=d.route,
            parts=d.parts,
            per_month=per_month,
            period_cost=period_cost,
            charged=Decimal(sum(r["cost_micros"] for r in mine)).scaleb(-6),
            requests=requests,
            tokens=tokens,
            throughput=tput,
            capacity=capacity,
            utilisation=utilisation,
            cost_per_million=period_cost / tokens.total * MILLION if tokens.total else None,
            sensitivity=sensitivity,
        )
        if not tokens.total:
            notes.append(
                f"{d.route}: no traffic from {query.since} to {query.until}, so no cost per token and no "
                "break-even (they need the traffic's input/output mix)"
            )
        if tput is None:
            notes.append(
                f"{d.route}: throughput unknown (no tokens_per_second in usage.self_hosted and none measured "
                "in the ledger for the period), so no utilisation and no sensitivity"
            )
        for api in apis:
            rc.against.append(_against(catalogue, api, mine, tokens, per_month, capacity))
        out.append(rc)
    return CostCase(config.currency, query.since, query.until, query.days, out, notes)


def _against(
    catalogue: Catalogue,
    api: str,
    rows: Sequence[Mapping[str, Any]],
    tokens: Tokens,
    per_month: Decimal,
    capacity: int | None,
) -> Against:
    if not tokens.total:
        return Against(api, None, None, None, "no traffic in the period")
    cost = Decimal(0)
    for r in rows:
        t = Tokens(input=r["input_tokens"], output=r["output_tokens"], cached=r["cached_tokens"])
        cost += catalogue.amount(api, r["model"], "", t, 0.0)
    per_million = cost / tokens.total * MILLION
    if not per_million:
        return Against(api, cost, per_million, None, "the API route costs nothing for this traffic")
    volume = per_month / per_million * MILLION
    break_even = int(volume.to_integral_value(rounding=ROUND_CEILING))
    if capacity is not None and break_even > capacity:
        at_full = per_month / capacity * MILLION
        return Against(
            api,
            cost,
            per_million,
            None,
            f"never: at full use self-hosting costs {at_full.quantize(MILLI)} a million tokens, "
            f"more than {per_million.quantize(MILLI)} on {api}",
        )
    return Against(api, cost, per_million, break_even)


def table(result: CostCase) -> str:
    """The comparison as aligned text."""
    cur = result.currency
    lines = [f"The cost case from {result.since} to {result.until} ({result.days} days; costs in {cur})"]
    data = result.to_json()
    for r in data["self_hosted"]:
        lines.append("")
        lines.append(f"self-hosted route {r['route']}")
        parts = ", ".join(f"{k} {v}" for k, v in r["monthly_cost"].items() if k != "total")
        lines.append(f"  monthly cost        {r['monthly_cost']['total']} ({parts})")
        lines.append(f"  cost in the period  {r['period_cost']} (charged to requests: {r['charged_to_requests']})")
        t = r["tokens"]
        lines.append(
            f"  traffic             {r['requests']} requests, {t['total']} tokens "
            f"({t['input']} input, {t['output']} output, {t['cached']} cached)"
        )
        if r["tokens_per_second"] is not None:
            lines.append(
                f"  throughput          {r['tokens_per_second']} tokens/s ({r['throughput_source']}); "
                f"capacity {r['capacity_tokens_per_month']} tokens a month"
            )
        if r["utilisation"] is not None:
            lines.append(f"  utilisation         {Decimal(r['utilisation']) * 100:.1f}%")
        if r["cost_per_million"] is not None:
            lines.append(f"  cost per million    {r['cost_per_million']}")
        if r["sensitivity"]:
            lines.append(
                "  by utilisation      "
                + ", ".join(
                    f"{Decimal(s['utilisation']) * 100:.0f}%: {s['cost_per_million']}" for s in r["sensitivity"]
                )
                + " a million tokens"
            )
        if r["against"]:
            columns = ["against", "same tokens", "per million", "saving", "break-even tokens/month"]
            cells = [
                [
                    a["route"],
                    a["cost"] or "-",
                    a["per_million"] or "-",
                    a["saving"] or "-",
                    str(a["break_even_tokens_per_month"])
                    if a["break_even_tokens_per_month"] is not None
                    else a.get("no_break_even", "-"),
                ]
                for a in r["against"]
            ]
            widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
            for row in cells:
                lines.append("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    for note in result.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"


def render(result: CostCase, fmt: str) -> str:
    if fmt == "json":
        import json

        return json.dumps(result.to_json(), indent=1) + "\n"
    if fmt == "html":
        from souverain.usage.costs_html import html

        return html(result.to_json())
    return table(result)
