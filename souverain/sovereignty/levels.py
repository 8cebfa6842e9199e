"""The sovereignty level of a route: one ordered value that routing can compare.

The levels are cumulative: a route is at level N when every condition of levels 1..N
holds, and each condition must be *known* to hold. An unknown fact therefore lowers the
level, never raises it, and a hop added to a route can only add conditions that may fail.

    1 eu_resident    processing, storage and fallback all in the EEA (for every hop that
                     carries data, over a complete hop graph)
    2 eu_controlled  and no non-EU law has *established* reach to plaintext (a contested
                     reach through a local subsidiary or office is allowed, and reported)
    3 sovereign      and no non-EU law reaches plaintext at all, and admin access, support
                     access and telemetry stay in the EEA
    4 in_house       and no third party can reach plaintext: every hop that sees the data
                     in clear is run by the organisation itself
"""

from __future__ import annotations

from collections.abc import Callable

from souverain.sovereignty.checks import RouteContext
from souverain.sovereignty.facts import Trace
from souverain.sovereignty.results import CountrySet, Level, LevelCondition, Tri, t_all


def _facet(name: str, facet: CountrySet, reasons: list[str], eea: Callable[[str], bool]) -> tuple[Tri, list[str]]:
    if facet.in_eea == "yes":
        return "yes", []
    if facet.in_eea == "no":
        outside = [c for c in facet.countries if not eea(c)]
        return "no", [f"{name} outside the EEA: {', '.join(outside)}"]
    return "unknown", [f"{name}: {r}" for r in reasons] or [f"{name}: not known for every hop"]


def ladder(ctx: RouteContext, residency_reasons: dict[str, list[str]]) -> tuple[Level, tuple[LevelCondition, ...]]:
    res = ctx.residency

    def eea(country: str) -> bool:
        return ctx.rules.in_zone(country, "EEA")
    conditions: list[LevelCondition] = []

    def add(level: Level, name: str, parts: list[tuple[Tri, list[str]]]) -> None:
        result = t_all([p[0] for p in parts])
        reasons = [r for t, rs in parts if t != "yes" for r in rs]
        conditions.append(LevelCondition(level=level, condition=name, result=result, reasons=tuple(dict.fromkeys(reasons))))

    compelled = [e for e in ctx.exposures if ctx.rules.laws[e.law].kind == "compelled_access"]
    incomplete: list[tuple[Tri, list[str]]] = []
    if not ctx.graph.complete:
        incomplete = [("unknown", [f"hop graph incomplete: {g}" for g in ctx.graph.gaps] or ["unverified hops on the route"])]
    add(
        Level.EU_RESIDENT,
        "processing, storage and fallback in the EEA",
        [_facet(n, getattr(res, n), residency_reasons[n], eea) for n in ("processing", "storage", "fallback")] + incomplete,
    )
    established: list[tuple[Tri, list[str]]] = []
    for e in compelled:
        if e.worst == "established":
            t: Tri = "no" if e.status == "established" else "unknown"
            established.append((t, [f"{e.law} at {e.hop}: {e.status}" + ("" if e.status == "established" else " (at worst established)")]))
    add(Level.EU_CONTROLLED, "no established non-EU reach to plaintext", established + incomplete)
    reach: list[tuple[Tri, list[str]]] = []
    for e in compelled:
        if e.worst != "none":
            t = "no" if e.status in ("residual", "established") else "unknown"
            reach.append((t, [f"{e.law} at {e.hop}: {e.status}" + (f" (at worst {e.worst})" if e.worst != e.status else "")]))
    access = [_facet(n, getattr(res, n), residency_reasons[n], eea) for n in ("admin", "support", "telemetry")]
    add(Level.SOVEREIGN, "no non-EU reach at all; admin, support and telemetry in the EEA", reach + access + incomplete)
    trace = Trace(ctx.hf.lookup)
    inside: list[tuple[Tri, list[str]]] = []
    for node in ctx.graph.nodes:
        third = ctx.hf.third_party(trace, node.hop)
        if third == "no":
            continue
        seen = ctx.hf.reach(trace, node).result
        t = "yes" if seen == "no" else "no" if third == "yes" and seen == "yes" else "unknown"
        if t != "yes":
            op = trace.hop(node.hop, "operator")
            who = ctx.hf.pipes.entity_name(op.value) if op.usable else "an unknown operator"
            inside.append((t, [f"{node.hop}: {who} can reach plaintext" + ("" if t == "no" else " (unknown)")]))
    add(Level.IN_HOUSE, "no third party can reach plaintext", inside + incomplete)
    level = Level.NONE
    for cond in conditions:
        if cond.result != "yes":
            break
        level = cond.level
    return level, tuple(conditions)
