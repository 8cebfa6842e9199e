"""What every sovereignty check reads (a route's context), the shapes of a check, and the
helpers both provider checks (`checks.py`) and route checks (`route_checks.py`) use.
Kept apart so that the two check modules import it and not each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from souverain.sovereignty.facts import Trace
from souverain.sovereignty.graph import Graph, HopFacts, Node
from souverain.sovereignty.results import Exposure, Residency, Tri, Verdict, t_all, t_any, t_not
from souverain.sovereignty.schema import Route


@dataclass
class RouteContext:
    """Everything about one route that the checks read."""

    hf: HopFacts
    route: Route
    graph: Graph
    exposures: list[Exposure]
    residency: Residency
    ranks: dict[str, int]

    @property
    def rules(self):
        return self.hf.pipes.rules


Outcome = tuple[Verdict, list[str]]
ProviderCheck = Callable[[RouteContext, Node, Trace, dict[str, Any]], Outcome]
RouteCheck = Callable[[RouteContext, Trace, dict[str, Any]], tuple[Verdict, list[str], int | None]]


_VERDICT_OF: dict[Tri, Verdict] = {"yes": "pass", "no": "fail", "unknown": "unknown"}


def verdict_of(t: Tri) -> Verdict:
    return _VERDICT_OF[t]


def in_zone(ctx: RouteContext, ref, zone: str) -> Tri:
    if not ref.usable:
        return "unknown"
    values = ref.value if isinstance(ref.value, list) else [ref.value]
    return t_all(["yes" if ctx.rules.in_zone(v, zone) else "no" for v in values])


def operator_of(ctx: RouteContext, node: Node, trace: Trace) -> str | None:
    ref = trace.hop(node.hop, "operator")
    return ref.value if ref.usable else None


def controlled_from_outside(
    ctx: RouteContext, op: str, trace: Trace, zone: str, pct: float | None
) -> tuple[Tri, list[str]]:
    chain, complete = ctx.hf.chain(trace, op)
    tests: list[Tri] = []
    why: list[str] = []
    for parent in chain[1:]:
        t = in_zone(ctx, trace.entity(parent, "incorporated_in"), zone)
        tests.append(t_not(t))
        if t == "no":
            why.append(f"controlled by {ctx.hf.pipes.entity_name(parent)}, outside the {zone}")
    if not complete:
        tests.append("unknown")
        why.append(f"{ctx.hf.pipes.entity_name(op)}: parent chain not stated")
    for flag in ("veto_rights", "appoints_board_majority"):
        ref = trace.entity(op, f"non_eu_shareholding.{flag}")
        tests.append(("yes" if ref.value else "no") if ref.usable else "unknown")
        if ref.usable and ref.value:
            why.append(f"non-EU holders have {flag.replace('_', ' ')}")
    if pct is not None:
        ref = trace.entity(op, "non_eu_shareholding.max_individual_pct")
        tests.append(("yes" if ref.value > pct else "no") if ref.usable else "unknown")
        if ref.usable and ref.value > pct:
            why.append(f"a non-EU holder has {ref.value} %")
    return t_any(tests), why
