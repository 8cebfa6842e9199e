"""Data flows (telemetry, logs, samples) and the parties that receive them.

A hop's `telemetry` list declares the flows that leave it. Every flow that is (or may be)
on and carries anything of the route's data makes its recipient a party of the route: it
is walked like a subprocessor, analysed for non-EU laws and transfers, listed among the
subprocessors, and written into the DORA register. A flow names its recipient in one of
two ways:

- `to: <hop id>`: a declared hop, with all its facts (where it processes and stores,
  who administers it, what it runs on): the precise form;
- `destination: <entity id>` (or nothing): the loader adds a recipient hop, `<hop>#<n>`,
  that knows only what the flow says: its operator, that it receives the data in clear,
  the `countries` it goes to. Its own infrastructure, subprocessors and admin and support
  access are not stated, so the route's hop graph stays incomplete until the flow names a
  declared hop with `to:`.

What the recipient receives follows `content`: `content` is what the sending hop
carries, `metadata` is request metadata (`metadata_logs`: a record pertaining to a
customer is within 18 U.S.C. § 2713 as much as the content), `unknown` is unknown, and
`none` (a heartbeat, a licence check) makes no party: it only shows in the telemetry facet.
"""

from __future__ import annotations

from souverain.sovereignty.facts import Fact, Facts
from souverain.sovereignty.schema import TelemetryFlow

RECIPIENT_SEPARATOR = "#"  # cannot appear in a declared id, so a generated hop never collides


def carries_data(flow: TelemetryFlow) -> bool:
    """Whether the flow may take anything of the route's data to a party."""
    return flow.enabled is not False and flow.content != "none"


def recipient(hop: str, index: int, flow: TelemetryFlow) -> str:
    """The hop that receives flow `index` of `hop`: the declared one, or the generated one."""
    return flow.to or f"{hop}{RECIPIENT_SEPARATOR}{index}"


def received_classes(flow: TelemetryFlow, sent: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """What the recipient receives, given what the sending hop carries (None: unknown)."""
    if flow.content == "metadata":  # metadata of the requests the hop handles: none if it handles none
        return () if sent == () else ("metadata_logs",)
    if flow.content == "content":
        return sent
    return () if flow.content == "none" else None


def add_recipients(hops: dict[str, Facts], titles: dict[str, str], roles: dict[str, str]) -> dict[str, str]:
    """Add a generated recipient hop for every flow that names no declared hop; returns
    generated id → the hop it was generated from."""
    made: dict[str, str] = {}
    for hop, facts in list(hops.items()):
        fact = facts.get("telemetry")
        if fact is None or not isinstance(fact.value, list):
            continue
        for index, flow in enumerate(fact.value):
            if flow.to or not carries_data(flow):
                continue
            rid = recipient(hop, index, flow)
            hops[rid] = _recipient_facts(flow, fact)
            titles[rid] = f"{flow.name} (flow from {hop})"
            roles[rid] = "telemetry"
            made[rid] = hop
    return made


def _recipient_facts(flow: TelemetryFlow, source: Fact) -> Facts:
    """What the flow says about its recipient, at the confidence of the flow itself."""

    def stated(value: object, known: bool = True, note: str = "") -> Fact:
        return Fact(value if known else None, known, source.confidence, source.evidence, note, source.origin)

    unstated = "a flow recipient's own infrastructure: name a declared hop with `to:` to state it"
    countries = flow.countries if isinstance(flow.countries, list) else None
    return {
        "operator": stated(flow.destination, flow.destination is not None, "the flow's destination"),
        "runs_on": stated(None, False, unstated),
        "subprocessors": stated(None, False, unstated),
        "data_state.in_use": stated("plaintext", note="a flow delivers what it carries readable by its recipient"),
        "data_state.at_rest.stored": stated(None, False),
        "location.processing_countries": stated(countries, countries is not None, "the flow's countries"),
        "location.storage_countries": stated(countries, countries is not None, "the flow's countries"),
        "location.non_eu_fallback": stated(False, countries is not None, "the flow's countries are everywhere it goes"),
        "access.admin_access_from": stated(None, False, unstated),
        "access.support_access_from": stated(None, False, unstated),
    }
