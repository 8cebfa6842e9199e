"""The hop graph of one route, walked to any depth, and what each hop can see.

A route lists its hops; each hop may `runs_on` another, have `subprocessors`, and send data
flows whose recipients are parties too (flows.py), and so on down. The walk records how each hop was reached and whether that edge is established: an
edge that only an unverified fact claims is still walked (so reports show where the data
may go) but the hop is marked uncertain and the graph incomplete. An incomplete graph can
never pass anything that is a statement about *every* hop. A hop that carries data and
does not state its `telemetry` leaves the graph incomplete too: its flows' recipients
would be parties of the route.

A hop that does not state its `data_classes` carries those of the hop it serves (the
infrastructure under a model sees what the model sees) or, for a hop listed in the route,
those of the hop before it; when that hop carries nothing, it is unknown.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from souverain.sovereignty.custody import Custody, hop_custody
from souverain.sovereignty.facts import SELF, FactRef, Lookup, Trace, control_chain, describe
from souverain.sovereignty.flows import carries_data, received_classes, recipient
from souverain.sovereignty.loader import Pipes
from souverain.sovereignty.results import Step, Tri, t_all, t_any
from souverain.sovereignty.schema import Route

Via = Literal["route", "runs_on", "subprocessor", "flow"]
Inflow = tuple[tuple[str, ...] | None, tuple[str, ...]] | None  # (classes, possible classes) flowing in


class Node(msgspec.Struct, frozen=True):
    hop: str
    depth: int
    via: Via
    parent: str | None
    certain: bool
    classes: tuple[str, ...] | None  # effective data classes; None = unknown
    possible_classes: tuple[str, ...] = ()
    # Runs (directly or not) a hop that may carry data: the infrastructure provider holds
    # the data in its machines even when it cannot read it, and the sovereignty criteria
    # judge it whatever its own `data_classes` say.
    hosts: bool = False

    @property
    def holds(self) -> Tri:
        """Does the party hold the route's data (in clear or not)?"""
        return "yes" if self.hosts else self.carries

    @property
    def carries(self) -> Tri:
        if self.classes is None:
            return "unknown"
        return "yes" if self.classes else "no"


class Graph(msgspec.Struct):
    nodes: list[Node]
    gaps: list[str]

    @property
    def complete(self) -> bool:
        return not self.gaps and all(n.certain for n in self.nodes)


def walk(pipes: Pipes, lookup: Lookup, route: Route) -> Graph:
    nodes: list[Node] = []
    gaps: list[str] = []
    seen: set[str] = set()

    def visit(
        hop: str, depth: int, via: Via, parent: Node | None, certain: bool, inflow: Inflow, hosts: bool = False
    ) -> None:
        if hop in seen:
            return
        seen.add(hop)
        own = lookup.get("hop", hop, "data_classes")
        classes: tuple[str, ...] | None
        possible: tuple[str, ...]
        if own.usable:
            classes, possible = tuple(own.value), ()
        elif own.state == "missing" and inflow is not None and inflow[0] != ():
            # Inherit what flows in. From a hop that carries nothing there is nothing to
            # inherit, and a hop that says nothing about itself is then unknown, not empty.
            classes, possible = inflow
        else:
            classes, possible = None, tuple(own.value or ()) if own.state != "missing" else ()
            if inflow is not None:
                possible = tuple(dict.fromkeys([*possible, *(inflow[0] or ()), *inflow[1]]))
        node = Node(
            hop, depth, via, parent.hop if parent and via != "route" else None, certain, classes, possible, hosts
        )
        nodes.append(node)
        passed: Inflow = (classes, possible)
        edges: tuple[tuple[str, Via], ...] = (("runs_on", "runs_on"), ("subprocessors", "subprocessor"))
        for path, edge in edges:
            ref = lookup.get("hop", hop, path)
            claimed = ([ref.value] if path == "runs_on" else list(ref.value or ())) if ref.value is not None else []
            if not ref.usable and certain:
                gaps.append(_gap(ref))
            for target in claimed:
                if target is not None:
                    hosting = edge == "runs_on" and node.holds != "no"
                    visit(target, depth + 1, edge, node, certain and ref.usable, passed, hosting)
        telemetry = lookup.get("hop", hop, "telemetry")
        if not telemetry.usable and certain and node.carries != "no":
            # Flows are edges like subprocessors: unstated, they may lead to parties unseen.
            gaps.append(
                _gap(telemetry) + (" (state `[]` when no data flows out of it)" if telemetry.state == "missing" else "")
            )
        for index, flow in enumerate(telemetry.value if isinstance(telemetry.value, list) else ()):
            target = recipient(hop, index, flow)
            received = received_classes(flow, classes)
            if carries_data(flow) and received != () and target in pipes.hops:
                # A flow that may be off is walked like an edge only an unverified fact claims;
                # one from a hop that carries nothing takes nothing, and makes no party.
                sure = certain and telemetry.usable and flow.enabled is True
                visit(
                    target,
                    depth + 1,
                    "flow",
                    node,
                    sure,
                    (received, () if received is not None else tuple(dict.fromkeys([*(classes or ()), *possible]))),
                )

    previous: Node | None = None
    for hop in route.hops:
        # A route is a chain: a route hop that does not say what it carries gets what the
        # hop before it carries (the gateway passes the client's prompts on).
        visit(hop, 0, "route", previous, True, (previous.classes, previous.possible_classes) if previous else None)
        previous = next((n for n in nodes if n.hop == hop), previous)
    return Graph(nodes, gaps)


def _gap(ref: FactRef) -> str:
    hop = ref.subject.split(":", 1)[1]
    if ref.state == "missing":
        return f"{hop}: `{ref.path}` is not stated (state `[]`/`none` if there are none)"
    return f"{hop}: {describe(ref)}" + (f" ({ref.note})" if ref.note else "")


class HopFacts:
    """Derived, per-hop questions the exposure and criteria code keeps asking."""

    def __init__(self, pipes: Pipes, lookup: Lookup) -> None:
        self.pipes = pipes
        self.lookup = lookup

    def operator(self, trace: Trace, hop: str) -> FactRef:
        return trace.hop(hop, "operator")

    def third_party(self, trace: Trace, hop: str) -> Tri:
        ref = self.operator(trace, hop)
        if not ref.usable:
            return "unknown"
        return "no" if ref.value in (None, SELF) else "yes"

    def reach(self, trace: Trace, node: Node) -> Step:
        """Possession, custody or control of plaintext: in use, stored decryptable, or keys held."""
        hop = node.hop
        if node.carries == "no":
            return Step(test="access", result="no", text=f"{hop} carries no data", facts=trace.take())
        in_use = trace.hop(hop, "data_state.in_use")
        stored = trace.hop(hop, "data_state.at_rest.stored")
        prongs: list[Tri] = []
        why: list[str] = []
        if in_use.usable:
            prongs.append("yes" if in_use.value == "plaintext" else "no")
            if in_use.value == "plaintext":
                why.append("sees plaintext in use")
        else:
            prongs.append("unknown")
            why.append(describe(in_use))
        if stored.usable and stored.value is False:
            prongs.append("no")
        else:
            can = self.custody(trace, hop).provider_can_use
            if can == "no":
                prongs.append("no")
            elif can == "yes" and stored.usable:
                prongs.append("yes")
                why.append("stores data it can decrypt")
            else:
                prongs.append("unknown")
                why.append(
                    describe(stored) if not stored.usable else "whether it can decrypt what it stores is unknown"
                )
        result = t_any(prongs)
        if node.carries == "unknown" and result == "yes":
            result = "unknown"
            why.append("which data it carries is unknown")
        if result == "no":
            text = f"{hop} has no access to plaintext (not in use in clear, nothing stored it can decrypt)"
        elif result == "yes":
            text = f"{hop} {' and '.join(why)}: possession, custody or control of {', '.join(node.classes or ())}"
        else:
            text = f"{hop}: access to plaintext unknown ({'; '.join(why)})"
        return Step(test="access", result=result, text=text, facts=trace.take())

    def custody(self, trace: Trace, hop: str) -> Custody:
        return hop_custody(trace, hop)

    def chain(self, trace: Trace, entity: str) -> tuple[list[str], bool]:
        return control_chain(trace, entity)

    def countries(self, trace: Trace, hop: str, path: str) -> tuple[list[str] | None, list[str]]:
        """(usable countries or None, claimed-but-unusable countries)."""
        ref = trace.hop(hop, path)
        if ref.usable:
            return list(ref.value), []
        return None, list(ref.value or []) if isinstance(ref.value, list) else []

    def zone_test(self, values: list[str] | None, zone: str) -> Tri:
        if values is None:
            return "unknown"
        return t_all(["yes" if self.pipes.rules.in_zone(c, zone) else "no" for c in values])
