"""Per hop and per law: can that law reach the data here, and why.

A compelled-access law reaches a hop when three things hold together (sovereignty.md § 0):
the operator or a controlling parent is subject to the law (*nexus*), it provides a
service the law covers (*service*), and it has possession, custody or control of
plaintext (*access*). A nexus through incorporation or headquarters is *direct* and makes
the reach *established*; a nexus only through a subsidiary, office or customers in the
country makes it *residual* (contested, as in R v OVH). Any prong that is known to be
false removes the reach; otherwise unknown prongs leave it `unknown`, with `worst` the
status they would allow.

A transfer (GDPR chapter V) happens when a hop processes, stores, falls back to, or gives
admin or support access from, a country outside the EEA; each destination then needs a
basis (adequacy, the DPF for certified US importers, SCCs, BCRs, a derogation).
"""

from __future__ import annotations

from souverain.sovereignty.facts import SELF, FactRef, Trace, describe
from souverain.sovereignty.graph import HopFacts, Node
from souverain.sovereignty.results import SEVERITY, Exposure, ExposureStatus, MitigationNote, Step, Tri, t_any
from souverain.sovereignty.rules import Law, Rules

_LABEL = {
    "incorporated_in": "is incorporated in",
    "hq.registered_office": "has its registered office in",
    "hq.central_administration": "has its central administration in",
    "hq.principal_establishment": "has its principal establishment in",
    "foreign_presence.subsidiaries_in": "has a subsidiary in",
    "foreign_presence.offices_in": "has an office in",
    "foreign_presence.targets_customers_in": "targets customers in",
}


def compelled(hf: HopFacts, node: Node, law_id: str, law: Law) -> Exposure:
    rules = hf.pipes.rules
    trace = Trace(hf.lookup)
    hop = node.hop
    op = hf.operator(trace, hop)
    operator = op.value if op.usable else None
    if op.usable and op.value in (None, SELF):
        who = "the organisation itself" if op.value == SELF else "no one"
        step = Step(
            test="operator",
            result="no",
            text=f"{hop} is run by {who}: not a provider to the public",
            facts=trace.take(),
        )
        return Exposure(
            law=law_id,
            hop=hop,
            operator=operator,
            status="none",
            worst="none",
            steps=(step,),
            counted=_notes(rules, ["in_house"]),
            jurisdiction="none",
            jurisdiction_worst="none",
        )
    op_step = Step(test="operator", result="yes" if op.usable else "unknown", text=describe(op), facts=trace.take())
    if op.usable:
        direct, presence, nexus_step, via_parent = _nexus(hf, trace, op.value, law)
        service, service_step = _service(hf, trace, hop, op.value, law)
    else:
        direct = presence = service = "unknown"
        nexus_step = Step(test="nexus", result="unknown", text="operator unknown")
        service_step = Step(test="service", result="unknown", text="operator unknown")
        via_parent = False
    access = hf.reach(trace, node)
    nexus = t_any([direct, presence])
    status, upper = _status(direct, presence, service, access.result, node.certain)
    # Whom the law binds, whatever the operator can read: the provider's structure, which
    # the CSF's SOV-2 question grades (a party that holds none of the route's data is out).
    jurisdiction, jurisdiction_worst = _status(direct, presence, service, node.holds, node.certain)
    steps = [op_step, nexus_step, service_step, access]
    if not node.certain:
        steps.append(Step(test="certainty", result="unknown", text=f"{hop} is reached only through an unverified fact"))
    counted: list[str] = []
    if upper == "none":
        counted += ["no_nexus"] if nexus == "no" else []
        counted += ["not_a_covered_service"] if service == "no" else []
        counted += ["no_plaintext_access"] if access.result == "no" else []
    not_counted = _not_counted(hf, hop, operator, law, via_parent) if upper != "none" else []
    return Exposure(
        law=law_id,
        hop=hop,
        operator=operator,
        status=status,
        worst=upper,
        data_classes=tuple(node.classes or node.possible_classes) if upper != "none" else (),
        steps=tuple(steps),
        counted=_notes(rules, [c for c in counted if c in law.mitigations_that_count]),
        not_counted=_notes(rules, not_counted),
        jurisdiction=jurisdiction,
        jurisdiction_worst=jurisdiction_worst,
    )


def _status(
    direct: Tri, presence: Tri, service: Tri, access: Tri, certain: bool
) -> tuple[ExposureStatus, ExposureStatus]:
    """(status, worst) of a reach from its prongs: established with a direct nexus,
    residual with a nexus through presence only, none when a prong is known false, and
    unknown (with the worst it allows) otherwise."""
    if "yes" == direct == service == access and certain:
        lower: ExposureStatus = "established"
    elif "yes" == presence == service == access and certain:
        lower = "residual"
    else:
        lower = "none"
    if "no" in (t_any([direct, presence]), service, access):
        upper: ExposureStatus = "none"
    else:
        upper = "established" if direct != "no" else "residual"
    return (lower if lower == upper or lower != "none" else "unknown"), upper


def _nexus(hf: HopFacts, trace: Trace, entity: str, law: Law) -> tuple[Tri, Tri, Step, bool]:
    chain, complete = hf.chain(trace, entity)
    direct: list[Tri] = []
    presence: list[Tri] = []
    hits: list[str] = []
    via_parent = False
    for e in chain:
        name = hf.pipes.entity_name(e)
        for path in law.nexus.direct:
            ref = trace.entity(e, path)
            hit = ref.usable and ref.value == law.country
            direct.append("yes" if hit else "no" if ref.usable else "unknown")
            if hit:
                hits.append(f"{name} {_LABEL.get(path, path)} {law.country}")
                via_parent = via_parent or e != entity
        for path in law.nexus.presence:
            ref = trace.entity(e, path)
            hit = ref.usable and (law.country in ref.value or "ANY" in ref.value)
            presence.append("yes" if hit else "no" if ref.usable else "unknown")
            if hit:
                hits.append(f"{name} {_LABEL.get(path, path)} {law.country}")
    d, p = t_any(direct), t_any(presence)
    if not complete:
        d = "unknown" if d == "no" else d
        p = "unknown" if p == "no" else p
    parents = " → ".join(hf.pipes.entity_name(e) for e in chain)
    if d == "yes":
        text = f"direct nexus: {'; '.join(hits)} (control chain: {parents})"
    elif p == "yes":
        text = f"nexus through local presence only: {'; '.join(hits)}" + (
            "" if d == "no" else "; a direct nexus is not ruled out"
        )
    elif d == "no" and p == "no":
        text = f"no entity in the control chain ({parents}) is incorporated, headquartered or present in {law.country}"
    else:
        text = f"nexus to {law.country} unknown for {parents}" + ("" if complete else " (control chain not stated)")
    return d, p, Step(test="nexus", result=t_any([d, p]), text=text, facts=trace.take()), via_parent


def _service(hf: HopFacts, trace: Trace, hop: str, entity: str, law: Law) -> tuple[Tri, Step]:
    if law.service_classes == "any":
        return "yes", Step(test="service", result="yes", text=f"{law.name} applies to any person, whatever the service")
    ref = trace.hop(hop, "service_class")
    if ref.state == "missing":
        ref = trace.entity(entity, "service_class")
    covered = "/".join(law.service_classes)
    if not ref.usable:
        return "unknown", Step(
            test="service", result="unknown", text=f"service class unknown ({describe(ref)})", facts=trace.take()
        )
    hit = sorted(set(ref.value) & set(law.service_classes))
    result: Tri = "yes" if hit else "no"
    text = f"provides {'/'.join(hit)}, covered by {law.name}" if hit else f"provides no {covered} service"
    return result, Step(test="service", result=result, text=text, facts=trace.take())


def _not_counted(hf: HopFacts, hop: str, entity: str | None, law: Law, via_parent: bool) -> list[str]:
    """Measures present on this hop that do not remove the reach, to say so explicitly."""
    lookup, rules = hf.lookup, hf.pipes.rules
    found: list[str] = []
    processing = lookup.get("hop", hop, "location.processing_countries")
    scope = lookup.get("hop", hop, "location.processing_scope")
    if (processing.usable and processing.value and all(rules.in_zone(c, "EEA") for c in processing.value)) or (
        scope.usable and scope.value in ("data_zone_eu", "geography_eu")
    ):
        found.append("eu_region")
    chain = hf.chain(Trace(lookup), entity)[0] if entity else []
    if entity and via_parent:
        found.append("eu_subsidiary")
    if any(_true(lookup.get("entity", e, "dpf_certified")) for e in chain):
        found.append("dpf_certification")
    encryption = lookup.get("hop", hop, "data_state.at_rest.encryption")
    if encryption.usable and encryption.value == "cmk_in_provider_kms":
        found.append("provider_managed_cmk")
    if any(_true(lookup.get("entity", e, "gov_requests.challenge")) for e in chain):
        found.append("contractual_challenge")
    if _true(lookup.get("hop", hop, "access.customer_approval_required")):
        found.append("customer_lockbox")
    return [m for m in found if m in law.mitigations_that_do_not]


def _notes(rules: Rules, ids: list[str]) -> tuple[MitigationNote, ...]:
    return tuple(MitigationNote(id=i, title=rules.mitigations[i].title, why=rules.mitigations[i].why) for i in ids)


_FACETS = (
    ("processing", "location.processing_countries"),
    ("storage", "location.storage_countries"),
    ("admin access", "access.admin_access_from"),
    ("support access", "access.support_access_from"),
)


def transfer(hf: HopFacts, node: Node, law_id: str, law: Law) -> Exposure:
    """GDPR chapter V for one hop: where the data goes outside the EEA, and on what basis."""
    rules = hf.pipes.rules
    trace = Trace(hf.lookup)
    hop = node.hop
    if node.carries == "no":
        return Exposure(
            law=law_id,
            hop=hop,
            status="none",
            worst="none",
            steps=(Step(test="transfer", result="no", text=f"{hop} carries no data"),),
        )
    outside: list[str] = []
    unknown: list[str] = []
    for facet, path in _FACETS:
        if facet == "storage" and _false(trace.hop(hop, "data_state.at_rest.stored")):
            continue
        values, _ = hf.countries(trace, hop, path)
        if values is None:
            unknown.append(facet)
        else:
            outside += [c for c in values if not rules.in_zone(c, "EEA")]
    fallback = trace.hop(hop, "location.non_eu_fallback")
    if not fallback.usable:
        unknown.append("fallback")
    elif fallback.value:
        values, _ = hf.countries(trace, hop, "location.fallback_countries")
        outside += values if values is not None else ["ANY"]
    destinations = tuple(sorted(set(outside)))
    facts = trace.take()
    if destinations:
        lower: ExposureStatus = "established" if node.certain else "unknown"
        text = f"{hop} makes data available outside the EEA: {', '.join(destinations)}"
        result: Tri = "yes"
    elif unknown:
        lower, text, result = (
            "unknown",
            f"{hop}: whether data leaves the EEA is unknown ({', '.join(unknown)})",
            "unknown",
        )
    else:
        lower, text, result = "none", f"{hop}: processing, storage, fallback and access all in the EEA", "no"
    steps = [Step(test="transfer", result=result, text=text, facts=facts)]
    basis: list[str] = []
    if destinations:
        _, basis, basis_step = _basis(hf, trace, hop, destinations)
        steps.append(basis_step)
    worst: ExposureStatus = "none" if result == "no" else "established"
    return Exposure(
        law=law_id,
        hop=hop,
        operator=None,
        status=lower,
        worst=worst,
        steps=tuple(steps),
        destinations=destinations,
        basis=tuple(basis),
    )


def _basis(hf: HopFacts, trace: Trace, hop: str, destinations: tuple[str, ...]) -> tuple[Tri, list[str], Step]:
    rules = hf.pipes.rules
    mech = trace.hop(hop, "contract.transfer_mechanisms")
    mechanisms = set(mech.value) if mech.usable else set()
    op = trace.hop(hop, "operator")
    dpf = bool(
        op.usable and op.value and any(_true(trace.entity(e, "dpf_certified")) for e in hf.chain(trace, op.value)[0])
    )
    basis: list[str] = []
    uncovered: list[str] = []
    for country in destinations:
        if country in rules.adequacy.countries:
            basis.append(f"{country}: adequacy (Art. 45)")
        elif country == "US" and "dpf" in mechanisms and dpf:
            basis.append("US: Data Privacy Framework, certified importer (Art. 45, Decision 2023/1795)")
        elif mechanisms & {"scc_2021_914", "bcr", "art49"}:
            names = {
                "scc_2021_914": "SCCs (Art. 46, Decision 2021/914)",
                "bcr": "BCRs (Art. 47)",
                "art49": "derogation (Art. 49)",
            }
            basis.append(f"{country}: " + ", ".join(names[m] for m in sorted(mechanisms & set(names))))
        else:
            uncovered.append(country)
    if uncovered:
        result: Tri = "no" if mech.usable else "unknown"
        text = f"no transfer basis found for {', '.join(uncovered)}" + ("" if mech.usable else f" ({describe(mech)})")
    else:
        result, text = "yes", "; ".join(basis)
    return result, basis, Step(test="basis", result=result, text=text, facts=trace.take())


def _true(ref: FactRef) -> bool:
    return ref.usable and ref.value is True


def _false(ref: FactRef) -> bool:
    return ref.usable and ref.value is False


def severity(status: ExposureStatus) -> int:
    return SEVERITY.get(status, 0)
