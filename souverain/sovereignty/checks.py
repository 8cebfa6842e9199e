"""The checks that framework criteria name in criteria.yaml.

A *provider* check looks at one hop run by a third party and returns its verdict; the
runner applies it to every such hop that carries data and keeps the worst. A *route*
check looks at the route as a whole. Every check is monotone in what is known: a fact
that becomes unknown can turn pass into unknown, never fail or unknown into pass
(tests/test_pipes_properties.py holds it to that).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

from souverain.sovereignty.check_context import (
    Outcome,
    ProviderCheck,
    RouteContext,
    controlled_from_outside,
    in_zone,
    operator_of,
    verdict_of,
)
from souverain.sovereignty.custody import conflict_text
from souverain.sovereignty.facts import Trace, describe
from souverain.sovereignty.graph import Node
from souverain.sovereignty.results import CriterionResult, Tri, Verdict, combine, t_all, t_not
from souverain.sovereignty.route_checks import ROUTE_CHECKS
from souverain.sovereignty.rules import Criterion

# ---- provider checks (one third-party hop at a time) -----------------------------------


def provider_seat(ctx: RouteContext, node: Node, trace: Trace, p: dict) -> Outcome:
    op = operator_of(ctx, node, trace)
    if op is None:
        return "unknown", [f"{node.hop}: operator unknown"]
    tests = {f: in_zone(ctx, trace.entity(op, f), p["zone"]) for f in p["fields"]}
    bad = [f for f, t in tests.items() if t == "no"]
    open_ = [f for f, t in tests.items() if t == "unknown"]
    if bad:
        reason = f"{', '.join(bad)} outside the {p['zone']}"
    elif open_:
        reason = f"{', '.join(open_)} not known"
    else:
        reason = f"all in the {p['zone']}"
    return verdict_of(t_all(list(tests.values()))), [f"{ctx.hf.pipes.entity_name(op)}: {reason}"]


def shareholding(ctx: RouteContext, node: Node, trace: Trace, p: dict) -> Outcome:
    op = operator_of(ctx, node, trace)
    if op is None:
        return "unknown", [f"{node.hop}: operator unknown"]
    outside, why = controlled_from_outside(ctx, op, trace, p["zone"], None)
    tests: list[Tri] = [t_not(outside)]
    for path, limit in (("max_individual_pct", p["max_individual_pct"]), ("collective_pct", p["max_collective_pct"])):
        ref = trace.entity(op, f"non_eu_shareholding.{path}")
        if ref.usable:
            tests.append("yes" if ref.value <= limit else "no")
            if ref.value > limit:
                why.append(f"non-EU {path.split('_')[0]} holding {ref.value} % > {limit} %")
        else:
            tests.append("unknown")
            why.append(describe(ref))
    return verdict_of(t_all(tests)), why or [f"{ctx.hf.pipes.entity_name(op)}: within the limits"]


def effective_control(ctx: RouteContext, node: Node, trace: Trace, p: dict) -> Outcome:
    op = operator_of(ctx, node, trace)
    if op is None:
        return "unknown", [f"{node.hop}: operator unknown"]
    seat = in_zone(ctx, trace.entity(op, "incorporated_in"), p["zone"])
    outside, why = controlled_from_outside(ctx, op, trace, p["zone"], p["control_pct"])
    result = t_all([seat, t_not(outside)])
    return verdict_of(result), why or [f"{ctx.hf.pipes.entity_name(op)}: EU-controlled"]


def residency(ctx: RouteContext, node: Node, trace: Trace, p: dict) -> Outcome:
    tests: list[Tri] = []
    why: list[str] = []
    hop = node.hop
    if "processing" in p["facets"]:
        tests.append(in_zone(ctx, trace.hop(hop, "location.processing_countries"), p["zone"]))
    stored = trace.hop(hop, "data_state.at_rest.stored")
    if "storage" in p["facets"] and not (stored.usable and stored.value is False):
        tests.append(in_zone(ctx, trace.hop(hop, "location.storage_countries"), p["zone"]))
    if "fallback" in p["facets"]:
        fb = trace.hop(hop, "location.non_eu_fallback")
        tests.append(("no" if fb.value else "yes") if fb.usable else "unknown")
        if fb.usable and fb.value:
            why.append(f"{hop}: falls back outside the EU")
    return verdict_of(t_all(tests)), why or [f"{hop}: {' / '.join(p['facets'])} checked against the {p['zone']}"]


def access_from(ctx: RouteContext, node: Node, trace: Trace, p: dict) -> Outcome:
    ref = trace.hop(node.hop, f"access.{p['facet']}_access_from")
    return verdict_of(in_zone(ctx, ref, p["zone"])), [describe(ref)]


def support_from(ctx: RouteContext, node: Node, trace: Trace, p: dict) -> Outcome:
    ref = trace.hop(node.hop, "access.support_access_from")
    inside = in_zone(ctx, ref, p["zone"])
    if inside != "no":
        return verdict_of(inside), [describe(ref)]
    documented = trace.hop(node.hop, "access.support_operations_documented")
    if not documented.usable:
        return "unknown", [describe(ref), describe(documented)]
    return ("partial" if documented.value else "fail"), [describe(ref), describe(documented)]


def contract_term(ctx: RouteContext, node: Node, trace: Trace, p: dict) -> Outcome:
    ref = trace.hop(node.hop, p["path"])
    if not ref.usable:
        return "unknown", [describe(ref)]
    if "equals" in p:
        ok = ref.value == p["equals"]
    elif "min" in p:
        ok = ref.value >= p["min"]
    else:
        ok = ref.value <= p["max"]
    return ("pass" if ok else "fail"), [describe(ref)]


_CUSTODY_VERDICT: dict[str, Verdict] = {"outside": "pass", "provider": "fail", "unknown": "unknown"}


def key_custody(ctx: RouteContext, node: Node, trace: Trace, p: dict) -> Outcome:
    """Where the key material lives, not who is named custodian (custody.py)."""
    found = ctx.hf.custody(trace, node.hop)
    if found.conflicts:
        return "unknown", [conflict_text(c) for c in found.conflicts]
    verdict = _CUSTODY_VERDICT[found.key_material]
    where = {"outside": "outside the provider", "provider": "with the provider or its group", "unknown": "not known"}[
        found.key_material
    ]
    return verdict, [f"{node.hop}: key material {where}", *found.reasons]


def staff_citizenship(ctx: RouteContext, node: Node, trace: Trace, p: dict) -> Outcome:
    ref = trace.hop(node.hop, "access.support_staff_citizenship")
    return verdict_of(in_zone(ctx, ref, p["zone"])), [describe(ref)]


PROVIDER_CHECKS: MappingProxyType[str, ProviderCheck] = MappingProxyType(
    {
        "provider_seat": provider_seat,
        "shareholding": shareholding,
        "effective_control": effective_control,
        "residency": residency,
        "access_from": access_from,
        "support_from": support_from,
        "contract_term": contract_term,
        "key_custody": key_custody,
        "staff_citizenship": staff_citizenship,
    }
)


def run(ctx: RouteContext, crit_id: str, crit: Criterion) -> CriterionResult:
    """Evaluate one criterion on one route."""

    def result(verdict: Verdict, reasons: Iterable[str], **more: Any) -> CriterionResult:
        return CriterionResult(
            id=crit_id,
            framework=crit.framework,
            ref=crit.ref,
            title=crit.title,
            verdict=verdict,
            reasons=tuple(reasons),
            **more,
        )

    out_of_scope = _regime(ctx, crit)
    if out_of_scope:
        return result("not_applicable", (out_of_scope,))
    trace = Trace(ctx.hf.lookup)
    if crit.applies == "route":
        params = {**crit.params, "satisfied_by": crit.satisfied_by}
        route_verdict, route_reasons, seal = ROUTE_CHECKS[crit.check](ctx, trace, params)
        return result(route_verdict, route_reasons, facts=trace.take(), seal=seal)
    check = PROVIDER_CHECKS[crit.check]
    verdicts: list[Verdict] = []
    reasons: list[str] = []
    hops: list[str] = []
    for node in ctx.graph.nodes:
        third = ctx.hf.third_party(trace, node.hop)
        if third == "no" or node.holds == "no":
            continue
        hops.append(node.hop)
        certified = trace.hop(node.hop, "certified")
        if crit.satisfied_by and certified.usable and set(crit.satisfied_by) & set(certified.value):
            verdict: Verdict = "pass"
            why = [f"{node.hop}: in the scope of {', '.join(sorted(set(crit.satisfied_by) & set(certified.value)))}"]
        else:
            verdict, why = check(ctx, node, trace, crit.params)
        if not node.certain and verdict == "fail":
            verdict = "unknown"
            why = [*why, f"{node.hop} is reached only through an unverified fact"]
        verdicts.append(verdict)
        reasons.extend(why)
    if not hops and ctx.graph.complete:
        reasons.append("no third party carries data on this route")
    verdict = combine(verdicts, ctx.graph.complete)
    if not ctx.graph.complete:
        reasons.append("the hop graph is incomplete: " + "; ".join(ctx.graph.gaps or ["unverified hops"]))
    return result(verdict, reasons, hops=tuple(hops), facts=trace.take())


def _regime(ctx: RouteContext, crit: Criterion) -> str:
    """Why the criterion does not apply to this route ('' when it does)."""
    route = ctx.route
    if crit.regime == "dora" and not route.regimes.dora:
        return "DORA is not among the route's regimes"
    if crit.regime == "gdpr" and (not route.regimes.gdpr or route.purpose.personal_data is False):
        return "the route carries no personal data"
    if crit.regime == "ai_act_high_risk":
        ai = route.purpose.ai_act
        if not route.regimes.ai_act or ai.high_risk is False:
            return "not a high-risk AI system (AI Act Art. 6)"
        role = crit.params.get("role")
        if role and ai.role not in (role, "unknown"):
            return f"the organisation is not the {role} of this system"
    return ""
