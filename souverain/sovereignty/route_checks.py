"""Checks that look at a route as a whole: third parties' access, CSF SEAL caps, the DORA
supply chain, GDPR transfers and AI Act log retention.

CSF checks return a SEAL cap. Where facts are unknown they work with the range of caps
the facts allow: the cap is known (and the verdict decided) only when the range is one
value; 4 passes, 0 fails, anything between is partial.
"""

from __future__ import annotations

from types import MappingProxyType

from souverain.sovereignty.check_context import RouteCheck, RouteContext, controlled_from_outside, in_zone
from souverain.sovereignty.custody import Custody
from souverain.sovereignty.facts import SELF, FactRef, Trace, describe
from souverain.sovereignty.graph import Node
from souverain.sovereignty.results import Tri, Verdict, combine, t_any, t_not

Result = tuple[Verdict, list[str], "int | None"]


def _third_party_nodes(ctx: RouteContext, trace: Trace) -> list[Node]:
    return [n for n in ctx.graph.nodes if n.holds != "no" and ctx.hf.third_party(trace, n.hop) != "no"]


def _seal(low: int, high: int, why: list[str], complete: bool = True) -> Result:
    """A verdict from the range of SEAL caps the facts allow."""
    if not complete:
        low = 0
    if low == high:
        verdict: Verdict = "pass" if low == 4 else "fail" if low == 0 else "partial"
        return verdict, why, low
    return ("fail" if high == 0 else "unknown"), [*why, f"SEAL cap between {low} and {high} on what is known"], None


def third_party_access(ctx: RouteContext, trace: Trace, p: dict) -> Result:
    verdicts: list[Verdict] = []
    why: list[str] = []
    nodes = _third_party_nodes(ctx, trace)
    for node in nodes:
        op = trace.hop(node.hop, "operator")
        if op.usable:
            seat = in_zone(ctx, trace.entity(op.value, "incorporated_in"), p["zone"])
            controlled, reasons = controlled_from_outside(ctx, op.value, trace, p["zone"], 50)
            non_eu = t_any([t_not(seat), controlled])
        else:
            non_eu, reasons = "unknown", [describe(op)]
        reach = ctx.hf.reach(trace, node).result
        certified = trace.hop(node.hop, "certified")
        if certified.usable and set(p.get("satisfied_by", ())) & set(certified.value):
            verdicts.append("pass")
            continue
        if non_eu == "no" or reach == "no":
            verdicts.append("pass")
        elif non_eu == "yes" and reach == "yes":
            verdicts.append("fail" if node.certain else "unknown")
            name = ctx.hf.pipes.entity_name(op.value)
            why.append(f"{node.hop}: {name} ({'; '.join(reasons) or 'non-EU'}) can obtain plaintext")
        else:
            verdicts.append("unknown")
            why.append(f"{node.hop}: non-EU control {non_eu}, access to plaintext {reach}")
    if not nodes and ctx.graph.complete:
        return "not_applicable", ["no third party carries data on this route"], None
    return (
        combine(verdicts, ctx.graph.complete),
        why or ["no non-EU or non-EU-controlled third party can obtain the data"],
        None,
    )


def csf_extraterritorial(ctx: RouteContext, trace: Trace, p: dict) -> Result:
    """SOV-2 Q2 grades the provider's structure: every party holding the route's data that
    a non-EU law binds caps the SEAL, even where confidential computing or customer-held
    keys keep it from reading the data (that removes the access prong, not the control)."""
    seal = p["seal"]
    lows: list[int] = [seal["none"]]
    highs: list[int] = [seal["none"]]
    why: list[str] = []
    for exp in ctx.exposures:
        if ctx.rules.laws[exp.law].kind != "compelled_access" or exp.jurisdiction_worst == "none":
            continue
        # An operator that is itself an EU company can only be reached through a parent:
        # the calculator's "EU subsidiary" rung; otherwise the operator is non-EU itself.
        own = trace.entity(exp.operator, "incorporated_in") if exp.operator else None
        eu_operator = own is not None and own.usable and ctx.rules.in_zone(own.value, "EU")
        established = seal["established_via_parent"] if eu_operator else seal["established_direct"]
        status, worst = exp.jurisdiction, exp.jurisdiction_worst
        highs.append(seal["none"] if status == "unknown" else _cap(seal, status, established))
        lows.append(_cap(seal, worst, established))
        reads = "" if exp.worst != "none" else ", though it cannot read the data"
        why.append(
            f"{exp.hop}: {exp.law} binds its operator: {status}"
            + (f" (at worst {worst})" if worst != status else "")
            + reads
        )
    return _seal(
        min(lows), min(highs), why or ["no party holding the data is bound by a non-EU law"], ctx.graph.complete
    )


def _cap(seal: dict, status: str, established: int) -> int:
    return established if status == "established" else seal[status] if status in seal else seal["none"]


def csf_keys(ctx: RouteContext, trace: Trace, p: dict) -> Result:
    seal = p["seal"]
    low = high = seal["customer_exclusive"]
    why: list[str] = []
    for node in _third_party_nodes(ctx, trace):
        reach = ctx.hf.reach(trace, node).result
        if reach == "no":
            continue
        custody = ctx.hf.custody(trace, node.hop)
        rung = None if custody.conflicts else _key_rung(custody)
        # Seeing plaintext caps the rung at customer_primary; where the key lives decides below that.
        worst = min(seal[rung] if rung else seal["provider_only"], seal["customer_primary"])
        best = (
            worst
            if rung and reach == "yes"
            else seal["customer_primary"]
            if reach == "yes"
            else seal["customer_exclusive"]
        )
        low, high = min(low, worst), min(high, best)
        why.append(
            f"{node.hop}: key material {custody.key_material}, provider can use it: {custody.provider_can_use}; provider reaches plaintext: {reach} → {rung or 'unknown'}"
        )
    return _seal(low, high, why or ["no third party can read the data"], ctx.graph.complete)


def _key_rung(custody: Custody) -> str | None:
    """The calculator's SOV-3 Q1 answer, from where the key lives and who can use it."""
    if custody.key_material == "outside":
        return "customer_exclusive" if custody.provider_can_use == "no" else "customer_primary"
    if custody.key_material == "provider":
        return "provider_only" if custody.holder_in_group == "yes" else "shared"
    return None


def csf_location(ctx: RouteContext, trace: Trace, p: dict) -> Result:
    seal, zone, res = p["seal"], p["zone"], ctx.residency
    main = [*res.processing.countries, *res.storage.countries]
    if any(not ctx.rules.in_zone(c, zone) for c in main):
        return "fail", [f"data processed or stored outside the {zone}: {', '.join(sorted(set(main)))}"], seal["non_eu"]
    if any(not ctx.rules.in_zone(c, zone) for c in res.fallback.countries):
        why = [f"fallback outside the {zone}: {', '.join(res.fallback.countries)}"]
        known = res.processing.complete and res.storage.complete
        return _seal(
            seal["eu_default_with_exceptions"] if known else seal["non_eu"], seal["eu_default_with_exceptions"], why
        )
    complete = res.processing.complete and res.storage.complete and res.fallback.complete
    if complete:
        return _seal(seal["eu_only"], seal["eu_only"], [f"processing, storage and fallback all in the {zone}"])
    return _seal(seal["non_eu"], seal["eu_only"], ["processing, storage or fallback location unknown"])


def csf_support(ctx: RouteContext, trace: Trace, p: dict) -> Result:
    seal, zone = p["seal"], p["zone"]
    if not _third_party_nodes(ctx, trace) and ctx.graph.complete:
        return "not_applicable", ["no third-party support on this route"], None
    support = ctx.residency.support
    if any(not ctx.rules.in_zone(c, zone) for c in support.countries):
        return _seal(seal["non_eu"], seal["non_eu"], [f"support from {', '.join(support.countries)}"])
    if support.complete:
        return _seal(seal["eu_only"], seal["eu_only"], [f"support from the {zone} only"])
    return _seal(seal["non_eu"], seal["eu_only"], ["where support works from is not known for every provider"])


def csf_ai(ctx: RouteContext, trace: Trace, p: dict) -> Result:
    seal, zone = p["seal"], p["zone"]
    low = high = seal["eu_model_eu_chips"]
    why: list[str] = []
    inference = [n for n in ctx.graph.nodes if ctx.hf.pipes.hop_roles.get(n.hop) == "model_inference"]
    if not inference:
        return "not_applicable", ["no model inference hop on this route"], None
    for node in inference:
        origin = trace.hop(node.hop, "model.weights_origin")
        chips = _hardware(ctx, trace, node.hop)
        model_eu = in_zone(ctx, origin, zone)
        chips_eu = in_zone(ctx, chips, zone) if chips is not None else "unknown"
        if model_eu == "no":
            cap: tuple[int, int] = (seal["non_eu_model"], seal["non_eu_model"])
        elif model_eu == "yes" and chips_eu != "unknown":
            rung = seal["eu_model_eu_chips"] if chips_eu == "yes" else seal["eu_model_foreign_chips"]
            cap = (rung, rung)
        else:
            cap = (seal["non_eu_model"], seal["eu_model_eu_chips"])
        low, high = min(low, cap[0]), min(high, cap[1])
        hw = describe(chips) if chips is not None else "accelerators not stated"
        why.append(f"{node.hop}: {describe(origin)}; {hw}")
    return _seal(low, high, why, ctx.graph.complete)


def _hardware(ctx: RouteContext, trace: Trace, start: str) -> FactRef | None:
    """hardware_origin of the hop, or of what it runs on."""
    hop: str | None = start
    seen: set[str] = set()
    while hop and hop not in seen:
        seen.add(hop)
        ref = trace.hop(hop, "hardware_origin")
        if ref.state != "missing":
            return ref
        runs_on = ctx.hf.lookup.get("hop", hop, "runs_on")
        hop = runs_on.value if runs_on.usable else None
    return None


def ctpp_concentration(ctx: RouteContext, trace: Trace, p: dict) -> Result:
    flags: list[Tri] = []
    why: list[str] = []
    for node in _third_party_nodes(ctx, trace):
        op = trace.hop(node.hop, "operator")
        if not op.usable:
            flags.append("unknown")
            continue
        chain, complete = ctx.hf.chain(trace, op.value)
        node_flags: list[Tri] = [] if complete else ["unknown"]
        for entity in chain:
            ref = trace.entity(entity, "dora_ctpp")
            node_flags.append(("yes" if ref.value else "no") if ref.usable else "unknown")
            if ref.usable and ref.value:
                why.append(f"{node.hop}: {ctx.hf.pipes.entity_name(entity)} is a designated CTPP")
        flag = t_any(node_flags)
        flags.append(flag if node.certain or flag != "yes" else "unknown")
    found = t_any(flags)
    if found == "yes":
        return "partial", why + ["assess concentration with the rest of the register (Art. 29(1)(b))"], None
    if found == "unknown" or not ctx.graph.complete:
        return "unknown", why + ["CTPP status not known for every provider in the chain"], None
    return "pass", ["no designated CTPP in the chain"], None


def subcontracting_chain(ctx: RouteContext, trace: Trace, p: dict) -> Result:
    tests: list[Tri] = []
    why: list[str] = []
    for node in _third_party_nodes(ctx, trace):
        op = trace.hop(node.hop, "operator")
        if not op.usable:
            tests.append("unknown")
            why.append(f"{node.hop}: {describe(op)}")
            continue
        if ctx.ranks.get(node.hop, 1) >= 2:
            seat = in_zone(ctx, trace.entity(op.value, "incorporated_in"), p["zone"])
            controlled, _ = controlled_from_outside(ctx, op.value, trace, p["zone"], 50)
            third_country = t_any([t_not(seat), controlled])
            tests.append(third_country)
            if third_country == "yes":
                why.append(
                    f"{node.hop}: subcontractor {ctx.hf.pipes.entity_name(op.value)} (rank {ctx.ranks[node.hop]}) in or controlled from a third country"
                )
    if not ctx.graph.complete:
        return (
            "unknown",
            why + ["the chain is not fully known: " + "; ".join(ctx.graph.gaps or ["unverified hops"])],
            None,
        )
    found = t_any(tests)
    if found == "yes":
        return "partial", why, None
    if found == "unknown":
        return "unknown", why, None
    return "pass", ["every subcontractor is known and EU-based"], None


def transfers(ctx: RouteContext, trace: Trace, p: dict) -> Result:
    verdicts: list[Verdict] = []
    why: list[str] = []
    for exp in ctx.exposures:
        if ctx.rules.laws[exp.law].kind != "transfer":
            continue
        if exp.worst == "none":
            verdicts.append("pass")
            continue
        basis = next((s for s in exp.steps if s.test == "basis"), None)
        if exp.status == "unknown" or basis is None or basis.result == "unknown":
            verdicts.append("unknown")
        else:
            verdicts.append("partial" if basis.result == "yes" else "fail")
        why.append(" ".join(s.text for s in exp.steps))
    return combine(verdicts, ctx.graph.complete), why or ["no transfer outside the EEA"], None


def log_retention(ctx: RouteContext, trace: Trace, p: dict) -> Result:
    outcomes: list[Verdict] = []
    why: list[str] = []
    for node in ctx.graph.nodes:
        if ctx.hf.pipes.hop_roles.get(node.hop) != "logging_sink":
            continue
        op = trace.hop(node.hop, "operator")
        custodian = trace.hop(node.hop, "keys.custodian")
        if SELF in (op.value if op.usable else None, custodian.value if custodian.usable else None):
            controlled: Tri = "yes"
        else:
            controlled = "no" if op.usable and custodian.usable else "unknown"
        days = trace.hop(node.hop, "data_state.at_rest.retention_days")
        long_enough: Tri = ("yes" if days.value >= p["min_days"] else "no") if days.usable else "unknown"
        if "no" in (controlled, long_enough):
            outcomes.append("fail")
        else:
            outcomes.append("pass" if controlled == long_enough == "yes" else "unknown")
        why.append(
            f"{node.hop}: under the organisation's control: {controlled}; {describe(days)} (needs ≥ {p['min_days']})"
        )
    if "pass" in outcomes:
        return "pass", why, None
    if "unknown" in outcomes:
        return "unknown", why, None
    return (
        "fail",
        why or ["no logging sink on this route: declare the gateway's log store as a `logging_sink` hop"],
        None,
    )


ROUTE_CHECKS: MappingProxyType[str, RouteCheck] = MappingProxyType(
    {
        "third_party_access": third_party_access,
        "csf_extraterritorial": csf_extraterritorial,
        "csf_keys": csf_keys,
        "csf_location": csf_location,
        "csf_support": csf_support,
        "csf_ai": csf_ai,
        "ctpp_concentration": ctpp_concentration,
        "subcontracting_chain": subcontracting_chain,
        "transfers": transfers,
        "log_retention": log_retention,
    }
)
