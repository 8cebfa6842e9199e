"""Where a route's data goes: processing, storage, fallback, support, admin, telemetry.

Each facet is the union over the hops that carry data. A facet is *complete* only when
every such hop stated it (and the hop graph is complete); its `in_eea` is `no` as soon as
one established country is outside the EEA, `yes` only when complete and all inside.
Admin and support access are required of every hop that carries data, the organisation's
own included (an unstated fact must never look better than a stated one). Telemetry is
required too, because self-hosted software phones home (vLLM's usage statistics are on by
default). A flow that carries data has a recipient, which is a hop of the route like any
other (flows.py): its countries are processing and storage, not only telemetry.
`processing_scope` is descriptive: `processing_countries` is the fact (write `[ANY]` for a
global deployment).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from souverain.sovereignty.facts import Trace, describe
from souverain.sovereignty.graph import Graph, HopFacts, Node
from souverain.sovereignty.results import CountrySet, Residency, Tri
from souverain.sovereignty.schema import TelemetryFlow
from souverain.terms import ASPECTS


@dataclass
class _Facet:
    countries: set[str] = field(default_factory=set)
    possible: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)

    def add(self, node: Node, values: list[str]) -> None:
        (self.countries if node.certain else self.possible).update(values)


def residency(hf: HopFacts, graph: Graph) -> tuple[Residency, dict[str, list[str]]]:
    """The route's residency, and per facet the hops that left it incomplete (gaps in the
    hop graph itself are the graph's to report)."""
    facets: dict[str, _Facet] = {name: _Facet() for name in ASPECTS}
    for node in graph.nodes:
        if node.holds == "no":
            continue
        counts = {name: len(f.missing) for name, f in facets.items()}
        _node(hf, node, facets)
        if not node.certain:  # the unverified edge to it already makes the graph incomplete
            for name, f in facets.items():
                del f.missing[counts[name] :]
    rules = hf.pipes.rules
    out: dict[str, CountrySet] = {}
    for name, f in facets.items():
        complete = not f.missing and graph.complete
        outside = any(not rules.in_zone(c, "EEA") for c in f.countries)
        in_eea: Tri = "no" if outside else "yes" if complete else "unknown"
        out[name] = CountrySet(
            countries=tuple(sorted(f.countries)),
            possible=tuple(sorted(f.possible - f.countries)),
            complete=complete,
            in_eea=in_eea,
        )
    reasons = {name: f.missing for name, f in facets.items()}
    return Residency(**out), reasons


def _node(hf: HopFacts, node: Node, facets: dict[str, _Facet]) -> None:
    hop = node.hop
    trace = Trace(hf.lookup)

    def facet(name: str, path: str) -> None:
        values, claimed = hf.countries(trace, hop, path)
        if values is None:
            facets[name].missing.append(f"{hop}: {describe(trace.hop(hop, path))}")
            facets[name].possible.update(claimed)
        else:
            facets[name].add(node, values)

    facet("processing", "location.processing_countries")
    stored = trace.hop(hop, "data_state.at_rest.stored")
    if not (stored.usable and stored.value is False):
        facet("storage", "location.storage_countries")
    fallback = trace.hop(hop, "location.non_eu_fallback")
    if not fallback.usable:
        facets["fallback"].missing.append(f"{hop}: {describe(fallback)}")
        facets["fallback"].possible.update(hf.countries(trace, hop, "location.fallback_countries")[0] or ["ANY"])
    elif fallback.value:
        values, _ = hf.countries(trace, hop, "location.fallback_countries")
        facets["fallback"].add(node, values if values is not None else ["ANY"])
    facet("support", "access.support_access_from")
    facet("admin", "access.admin_access_from")
    telemetry = trace.hop(hop, "telemetry")
    # Stated flows that carry data have recipients, walked as parties of the route
    # (flows.py): their countries are those parties' processing and storage. Unstated
    # flows leave the hop graph itself incomplete (graph.py).
    if not telemetry.usable:
        facets["telemetry"].missing.append(f"{hop}: {describe(telemetry)}")
        return
    for flow in telemetry.value:
        _flow(node, flow, facets)


def _flow(node: Node, flow: TelemetryFlow, facets: dict[str, _Facet]) -> None:
    """The telemetry facet: where every flow that may be on goes (a declared recipient hop
    states its own countries)."""
    where = f"{node.hop}: telemetry {flow.name!r}"
    if flow.enabled is False:
        return
    countries = flow.countries if isinstance(flow.countries, list) else None
    if flow.enabled == "unknown":
        facets["telemetry"].missing.append(f"{where} may be on")
        facets["telemetry"].possible.update(countries or ["ANY"])
    elif countries is not None:
        facets["telemetry"].add(node, countries)
    elif not flow.to:
        facets["telemetry"].missing.append(f"{where} goes to unknown countries")
