"""The sovereignty level of a route: one ordered value that routing can compare.

The levels are cumulative: a route is at level N when every condition of levels 1..N
holds, and each condition must be *known* to hold. An unknown fact therefore lowers the
level, never raises it, and a party added to a route can only add conditions that may fail.

    1 eu_resident    processing, storage and fallback all in the EEA, for every party that
                     carries data (flow recipients included), over a complete hop graph
    2 eu_controlled  and no non-EU law has *established* reach to plaintext, and no non-EU
                     or non-EU-controlled third party can obtain it (SecNumCloud § 19.6 c));
                     allowed: a contested reach through a local subsidiary, and an
                     infrastructure provider controlled from outside the EU that cannot
                     read the data (confidential computing, customer-held keys)
    3 sovereign      and no non-EU law reaches plaintext at all; admin access, support
                     access and telemetry in the EEA; and no party holding the data is
                     controlled from outside the EU or bound by a non-EU law (SecNumCloud
                     § 19.6 a) b), C3A SOV-1-03, CSF SOV-2 Q2 at SEAL-4)
    4 in_house       and no third party can reach plaintext: every hop that sees the data
                     in clear is run by the organisation itself

The criteria a level needs are named in criteria.yaml (`required_from`) and read here, so
a route never shows a level beside a criterion, on the same page, that contradicts it.
Confidential computing and customer-held keys remove the *access* prong of a non-EU law,
not the provider's foreign control: that is why level 2 allows them and level 3 does not.
"""

from __future__ import annotations

from collections.abc import Callable

from souverain.sovereignty.check_context import RouteContext
from souverain.sovereignty.facts import Trace
from souverain.sovereignty.results import CountrySet, CriterionResult, Level, LevelCondition, Tri, t_all


def _facet(name: str, facet: CountrySet, reasons: list[str], eea: Callable[[str], bool]) -> tuple[Tri, list[str]]:
    if facet.in_eea == "yes":
        return "yes", []
    if facet.in_eea == "no":
        outside = [c for c in facet.countries if not eea(c)]
        return "no", [f"{name} outside the EEA: {', '.join(outside)}"]
    return "unknown", [f"{name}: {r}" for r in reasons] or [f"{name}: not known for every hop"]


def ladder(
    ctx: RouteContext, residency_reasons: dict[str, list[str]], criteria: tuple[CriterionResult, ...]
) -> tuple[Level, tuple[LevelCondition, ...]]:
    res = ctx.residency

    def eea(country: str) -> bool:
        return ctx.rules.in_zone(country, "EEA")

    conditions: list[LevelCondition] = []

    def add(level: Level, name: str, parts: list[tuple[Tri, list[str]]]) -> None:
        result = t_all([p[0] for p in parts])
        reasons = [r for t, rs in parts if t != "yes" for r in rs]
        conditions.append(
            LevelCondition(level=level, condition=name, result=result, reasons=tuple(dict.fromkeys(reasons)))
        )

    compelled = [e for e in ctx.exposures if ctx.rules.laws[e.law].kind == "compelled_access"]
    incomplete: list[tuple[Tri, list[str]]] = []
    if not ctx.graph.complete:
        unsure = [
            f"{n.hop} is reached only through an unverified fact or a flow that may be on"
            for n in ctx.graph.nodes
            if not n.certain
        ]
        incomplete = [("unknown", [f"hop graph incomplete: {g}" for g in ctx.graph.gaps] + unsure)]
    add(
        Level.EU_RESIDENT,
        "processing, storage and fallback in the EEA",
        incomplete
        + [_facet(n, getattr(res, n), residency_reasons[n], eea) for n in ("processing", "storage", "fallback")],
    )
    established: list[tuple[Tri, list[str]]] = []
    for e in compelled:
        if e.worst == "established":
            t: Tri = "no" if e.status == "established" else "unknown"
            established.append(
                (
                    t,
                    [
                        f"{e.law} at {e.hop}: {e.status}"
                        + ("" if e.status == "established" else " (at worst established)")
                    ],
                )
            )
    add(Level.EU_CONTROLLED, "no established non-EU reach to plaintext", established + incomplete)
    reach: list[tuple[Tri, list[str]]] = []
    for e in compelled:
        if e.worst != "none":
            t = "no" if e.status in ("residual", "established") else "unknown"
            reach.append(
                (t, [f"{e.law} at {e.hop}: {e.status}" + (f" (at worst {e.worst})" if e.worst != e.status else "")])
            )
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
    for level in Level:
        required = [c for c in criteria if ctx.rules.criteria[c.id].required_from == level.label]
        if required:
            names = ", ".join(f"{ctx.rules.frameworks[c.framework].name.split(' (')[0]} {c.ref}" for c in required)
            add(level, f"criteria this level needs are met: {names}", [_criterion(c) for c in required])
    conditions.sort(key=lambda c: c.level)
    level = Level.NONE
    for candidate in Level:
        if candidate == Level.NONE:
            continue
        if any(c.result != "yes" for c in conditions if c.level == candidate):
            break
        level = candidate
    return level, tuple(conditions)


def _criterion(c: CriterionResult) -> tuple[Tri, list[str]]:
    """A criterion a level needs: met when it passes or does not apply."""
    if c.verdict in ("pass", "not_applicable"):
        return "yes", []
    result: Tri = "unknown" if c.verdict == "unknown" else "no"
    return result, [f"{c.id} ({c.ref}) {c.verdict}: {'; '.join(c.reasons[:2])}"]
