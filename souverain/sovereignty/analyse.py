"""Analyse every route of a pipes file: walk, exposures, residency, criteria, level.

`analyse()` is a pure function of (merged pipes, shipped rules, minimum confidence): the
same inputs give the same analysis, byte for byte, which is what lets the ledger record a
profile's digest and a reviewer recompute it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from souverain.sovereignty.answers import answers
from souverain.sovereignty.check_context import RouteContext
from souverain.sovereignty.checks import run
from souverain.sovereignty.exposure import compelled, severity, transfer
from souverain.sovereignty.facts import Lookup, Trace
from souverain.sovereignty.graph import Graph, HopFacts, walk
from souverain.sovereignty.levels import ladder
from souverain.sovereignty.loader import Pipes
from souverain.sovereignty.residency import residency
from souverain.sovereignty.results import (
    Access,
    Analysis,
    CriterionResult,
    Exposure,
    ExposureStatus,
    HopReach,
    LawReach,
    Level,
    NodeView,
    RouteAnalysis,
    RouteProfile,
    tri,
)
from souverain.sovereignty.schema import Confidence, Requirements, Route


def analyse(pipes: Pipes, *, min_confidence: Confidence | None = None, routes: list[str] | None = None) -> Analysis:
    """Analyse the routes (all by default); `min_confidence` overrides the file's requirement."""
    floor = min_confidence or pipes.requirements.min_confidence or "asserted"
    names = routes if routes is not None else list(pipes.routes)
    results = {name: analyse_route(pipes, name, pipes.routes[name], floor) for name in names}
    cited: set[str] = set()
    for result in results.values():
        for item in (*result.criteria, *result.exposures):
            for ref in getattr(item, "facts", ()) or [f for s in getattr(item, "steps", ()) for f in s.facts]:
                cited.update(ref.evidence)
    return Analysis(
        sources=pipes.sources,
        rules_version=pipes.rules.version,
        rules_digest=pipes.rules.digest,
        min_confidence=floor,
        routes=results,
        evidence={e: pipes.evidence[e] for e in sorted(cited) if e in pipes.evidence},
    )


def analyse_route(pipes: Pipes, name: str, route: Route, floor: Confidence = "asserted") -> RouteAnalysis:
    rules = pipes.rules
    if route.requires and route.requires.min_confidence:
        floor = route.requires.min_confidence
    lookup = Lookup(pipes.entities, pipes.hops, floor)
    hf = HopFacts(pipes, lookup)
    graph = walk(pipes, lookup, route)
    exposures: list[Exposure] = []
    for node in graph.nodes:
        for law_id, law in rules.laws.items():
            if law.kind == "compelled_access":
                exposures.append(compelled(hf, node, law_id, law))
            elif route.regimes.gdpr and route.purpose.personal_data is not False:
                exposures.append(transfer(hf, node, law_id, law))
    where, reasons = residency(hf, graph)
    ctx = RouteContext(hf, route, graph, exposures, where, _ranks(hf, graph))
    criteria = tuple(run(ctx, cid, crit) for cid, crit in rules.criteria.items())
    level, steps = ladder(ctx, reasons, criteria)
    blocked = tuple(dict.fromkeys(r for c in steps if c.level == level + 1 and c.result != "yes" for r in c.reasons))
    laws = _laws(ctx)
    access, access_reason = _non_eu_access(ctx, laws)
    profile = RouteProfile(
        route=name,
        level=level,
        level_name=level.label,
        blocked_by=blocked,
        non_eu_access=access,
        non_eu_access_reason=access_reason,
        laws=laws,
        residency=where,
        verdicts={c.id: c.verdict for c in criteria},
        csf_seal=_csf_seal(criteria),
        personal_data=tri(route.purpose.personal_data),
        facts_digest=_facts_digest(pipes, route, graph, floor),
        rules_digest=rules.digest,
    ).with_digest()
    requirements = effective_requirements(pipes.requirements, route.requires)
    return RouteAnalysis(
        route=name,
        title=route.title,
        description=route.description,
        endpoint={k: v for k, v in msgspec.to_builtins(route.endpoint).items() if v},
        purpose=route.purpose,
        profile=profile,
        nodes=_views(ctx),
        exposures=tuple(exposures),
        criteria=criteria,
        ladder=steps,
        answers=answers(ctx),
        gaps=tuple(graph.gaps),
        breaches=tuple(breaches(profile, requirements)),
    )


def _ranks(hf: HopFacts, graph: Graph) -> dict[str, int]:
    """DORA supply-chain rank: 0 for the organisation's own hops, 1 for a direct provider,
    n+1 for a subcontractor of a rank-n provider."""
    trace = Trace(hf.lookup)
    ranks: dict[str, int] = {}
    for node in graph.nodes:  # parents come before children in walk order
        if hf.third_party(trace, node.hop) == "no":
            ranks[node.hop] = 0
            continue
        parent = ranks.get(node.parent or "", 0)
        ranks[node.hop] = parent + 1 if parent else 1
    return ranks


def _views(ctx: RouteContext) -> tuple[NodeView, ...]:
    pipes, trace = ctx.hf.pipes, Trace(ctx.hf.lookup)
    out = []
    for node in ctx.graph.nodes:
        mine = [e for e in ctx.exposures if e.hop == node.hop and pipes.rules.laws[e.law].kind == "compelled_access"]
        worst: ExposureStatus = max((e.worst for e in mine), key=severity, default="none")
        op = trace.hop(node.hop, "operator")
        out.append(
            NodeView(
                hop=node.hop,
                title=pipes.hop_titles.get(node.hop, ""),
                role=pipes.hop_roles[node.hop],
                operator=op.value if op.usable else None,
                operator_name=pipes.entity_name(op.value)
                if op.usable
                else f"{pipes.entity_name(op.value)}?"
                if isinstance(op.value, str)
                else "unknown",
                via=node.via,
                parent=node.parent,
                depth=node.depth,
                rank=ctx.ranks.get(node.hop, 0),
                certain=node.certain,
                data_classes=node.classes,
                third_party=ctx.hf.third_party(trace, node.hop),
                reach=ctx.hf.reach(trace, node).result,
                worst=worst,
                laws=tuple(
                    LawReach(
                        law=e.law,
                        status=e.status,
                        worst=e.worst,
                        hops=(HopReach(hop=e.hop, status=e.status, worst=e.worst),),
                    )
                    for e in mine
                    if e.worst != "none"
                ),
            )
        )
    return tuple(out)


def _non_eu_access(ctx: RouteContext, laws: tuple[LawReach, ...]) -> tuple[Access, str]:
    """The route's answer to "can a non-EU law compel plaintext?", with its one-line reason:
    `residual` only when the worst that can happen anywhere is a contested reach."""
    names = ctx.rules.laws
    established = [law for law in laws if law.status == "established"]
    if established:
        return "yes", "; ".join(law.reason for law in established)
    if not laws:
        return "no", "no non-EU law reaches plaintext on this route"
    if (
        ctx.graph.complete
        and all(law.worst in ("residual", "none") for law in laws)
        and any(law.status == "residual" for law in laws)
    ):
        residual = [e for e in ctx.exposures if e.status == "residual"]
        hops = ", ".join(dict.fromkeys(e.hop for e in residual))
        via = "; ".join(
            dict.fromkeys(s.text.split(": ", 1)[-1] for e in residual for s in e.steps if s.test == "nexus")
        )
        which = ", ".join(names[law.law].short for law in laws if law.status == "residual")
        return "residual", f"{which} at {hops}, through local presence only ({via}): contested, not settled"
    return "unknown", "not ruled out: " + "; ".join(f"{names[law.law].name} (at worst {law.worst})" for law in laws)


def _laws(ctx: RouteContext) -> tuple[LawReach, ...]:
    out = []
    for law_id, law in ctx.rules.laws.items():
        if law.kind != "compelled_access":
            continue
        mine = [e for e in ctx.exposures if e.law == law_id and e.worst != "none"]
        if not mine and ctx.graph.complete:
            continue
        status: ExposureStatus = max((e.status for e in mine), key=severity, default="none")
        if status == "none" and (mine or not ctx.graph.complete):
            status = "unknown"
        worst = "established" if not ctx.graph.complete else max((e.worst for e in mine), key=severity)
        hops = tuple(HopReach(hop=e.hop, status=e.status, worst=e.worst) for e in mine)
        out.append(
            LawReach(law=law_id, status=status, worst=worst, hops=hops, reason=_reason(ctx, law_id, mine, status))
        )
    return tuple(out)


def _reason(ctx: RouteContext, law_id: str, mine: list[Exposure], status: ExposureStatus) -> str:
    """One line: where the law reaches and, for a residual reach, through what presence."""
    law = ctx.rules.laws[law_id]
    at = [e for e in mine if e.status == status]
    where = ", ".join(e.hop for e in at) or "an incomplete hop graph"
    if status == "established":
        return f"{law.name}: established at {where}"
    if status == "residual":
        nexus = "; ".join(dict.fromkeys(s.text for e in at for s in e.steps if s.test == "nexus"))
        return f"{law.name}: residual at {where} ({nexus}): contested, not settled"
    return f"{law.name}: {status} at {where}"


def _csf_seal(criteria: tuple[CriterionResult, ...]) -> int | None:
    caps = [c for c in criteria if c.framework == "eu-csf-1.2.1" and c.verdict != "not_applicable"]
    if any(c.seal is None for c in caps):
        return None
    return min((c.seal for c in caps if c.seal is not None), default=None)


def _facts_digest(pipes: Pipes, route: Route, graph: Graph, floor: str) -> str:
    """sha256 over the route declaration and every fact of its hops and their entities."""
    hops = {n.hop: pipes.hops[n.hop] for n in graph.nodes}
    entities: dict[str, Any] = {}
    pending = [
        f.value
        for facts in hops.values()
        for p, f in facts.items()
        if p in ("operator", "contracting_entity", "keys.custodian", "model.provider")
    ]
    while pending:
        eid = pending.pop()
        if not isinstance(eid, str) or eid in entities or eid not in pipes.entities:
            continue
        entities[eid] = pipes.entities[eid]
        for path in ("parent_chain", "ultimate_parent"):
            fact = entities[eid].get(path)
            if fact is not None and fact.value:
                pending.extend(fact.value if isinstance(fact.value, list) else [fact.value])

    def strip(facts: dict) -> dict:
        return {p: [f.value, f.known, f.confidence, list(f.evidence)] for p, f in facts.items()}

    body = {
        "route": route,
        "min_confidence": floor,
        "hops": {h: strip(f) for h, f in hops.items()},
        "entities": {e: strip(f) for e, f in entities.items()},
    }
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


def effective_requirements(defaults: Requirements, own: Requirements | None) -> Requirements:
    """The file's requirements, with the route's own `requires` replacing them key by key."""
    if own is None:
        return defaults
    given = msgspec.to_builtins(own)
    return msgspec.convert({**msgspec.to_builtins(defaults), **given}, Requirements)


def breaches(profile: RouteProfile, req: Requirements) -> list[str]:
    """What the route fails of its requirements, in words; empty when it meets them."""
    out: list[str] = []
    if req.min_level is not None and profile.level < Level.parse(req.min_level):
        shown = list(profile.blocked_by[:3]) + (
            [f"and {len(profile.blocked_by) - 3} more"] if len(profile.blocked_by) > 3 else []
        )
        reasons = "; ".join(shown) or "see the level ladder"
        out.append(
            f"level {profile.level_name} ({int(profile.level)}) is below the required {req.min_level}: {reasons}"
        )
    for crit in req.criteria or ():
        verdict = profile.verdicts.get(crit)
        if verdict not in ("pass", "not_applicable"):
            out.append(f"criterion {crit} is {verdict}, required to pass")
    if req.min_csf_seal is not None and (profile.csf_seal is None or profile.csf_seal < req.min_csf_seal):
        seal = "unknown" if profile.csf_seal is None else profile.csf_seal
        out.append(f"CSF SEAL {seal} is below the required {req.min_csf_seal}")
    if req.no_non_eu_access and profile.non_eu_access != "no":
        out.append(
            f"a non-EU law may reach plaintext ({profile.non_eu_access}): {profile.non_eu_access_reason or 'unknown'}"
        )
    return out
