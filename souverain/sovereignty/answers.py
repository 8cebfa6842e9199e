"""The buyer's questions, answered per route in plain sentences.

Procurement and DPO questionnaires ask the same seven things; a report that answers them
directly, hop by hop and with "unknown" where it is, saves a meeting.
"""

from __future__ import annotations

from typing import Literal

from souverain.sovereignty.check_context import RouteContext
from souverain.sovereignty.facts import FactRef, Lookup, Trace
from souverain.sovereignty.results import SEVERITY, Answer, Exposure

QUESTIONS = (
    "Who hosts the model?",
    "Who holds the keys?",
    "Which law governs each provider?",
    "Where are logs stored?",
    "Who can reach production data?",
    "Which subprocessors?",
    "How long is data kept?",
)


def _v(ref: FactRef) -> str:
    if ref.usable:
        value = ref.value
        if isinstance(value, list):
            return ", ".join(map(str, value)) if value else "none"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return "none" if value is None else str(value)
    if ref.value not in (None, [], ""):
        claimed = ", ".join(map(str, ref.value)) if isinstance(ref.value, list) else str(ref.value)
        return f"unknown ({claimed}, {ref.state.replace('_', ' ')})"
    return "unknown"


def answers(ctx: RouteContext) -> tuple[Answer, ...]:
    pipes, lookup = ctx.hf.pipes, ctx.hf.lookup
    roles = pipes.hop_roles
    nodes = ctx.graph.nodes
    out: dict[str, list[str]] = {q: [] for q in QUESTIONS}

    def get(hop: str, path: str) -> FactRef:
        return lookup.get("hop", hop, path)

    def who(hop: str) -> str:
        op = get(hop, "operator")
        if not op.usable:
            return (
                f"{_entity(lookup, pipes, op.value)}? ({op.state.replace('_', ' ')})"
                if isinstance(op.value, str)
                else _v(op)
            )
        return _entity(lookup, pipes, op.value)

    reach = {n.hop: ctx.hf.reach(_Quiet(lookup), n).result for n in nodes}
    own: list[str] = []  # the organisation's own hops that see the data
    for node in nodes:
        hop = node.hop
        label = pipes.hop_titles.get(hop) or hop
        tag = "" if node.certain else " [unverified]"
        if roles.get(hop) == "model_inference":
            runs_on = get(hop, "runs_on")
            under = f", on {who(runs_on.value)} ({runs_on.value})" if runs_on.usable and runs_on.value else ""
            model, maker = get(hop, "model.id"), get(hop, "model.provider")
            what = (
                _v(model)
                if model.usable
                else f"by {_entity(lookup, pipes, maker.value)}"
                if maker.usable
                else "unknown"
            )
            out[QUESTIONS[0]].append(f"{label}: {who(hop)}{under}; model {what}{tag}")
        if node.carries == "no":
            continue
        custodian = get(hop, "keys.custodian")
        third = ctx.hf.third_party(_Quiet(lookup), hop)
        if third != "no" or custodian.state != "missing":
            holder = _entity(lookup, pipes, custodian.value) if custodian.usable else _v(custodian)
            custody = ctx.hf.custody(_Quiet(lookup), hop)
            where = {"provider": "with the provider", "outside": "outside the provider", "unknown": "location unknown"}[
                custody.key_material
            ]
            decrypt = (
                f"; key material {where}; operator can use it: {custody.provider_can_use}" if third != "no" else ""
            )
            out[QUESTIONS[1]].append(f"{label}: {holder}{decrypt}{tag}")
        if third != "no":
            laws = _reaching(ctx.exposures, hop, pipes)
            out[QUESTIONS[2]].append(
                f"{who(hop)} ({label}): contract under {_v(get(hop, 'contract.governing_law'))} law; non-EU reach: {laws}{tag}"
            )
        stored = get(hop, "data_state.at_rest.stored")
        days = get(hop, "data_state.at_rest.retention_days")
        stored_in = get(hop, "location.storage_countries")
        if roles.get(hop) in ("logging_sink", "abuse_monitoring", "telemetry") or (
            stored.usable and stored.value and third != "no"
        ):
            out[QUESTIONS[3]].append(f"{label}: {who(hop)}, in {_v(stored_in)}, kept {_v(days)} days{tag}")
        if reach[hop] != "no" and third == "no":
            own.append(label)
        elif reach[hop] != "no":
            admin, support = get(hop, "access.admin_access_from"), get(hop, "access.support_access_from")
            maybe = "" if reach[hop] == "yes" else " (possibly)"
            out[QUESTIONS[4]].append(
                f"{who(hop)}{maybe} at {label}: admin from {_v(admin)}, support from {_v(support)}{tag}"
            )
        if node.via != "route" and third != "no":
            out[QUESTIONS[5]].append(
                f"{who(hop)}: {label}, rank {ctx.ranks.get(hop, 1)}, {node.via.replace('_', ' ')} of {node.parent}{tag}"
            )
        if stored.usable and stored.value is False:
            kept = "not stored"
        elif stored.usable:
            kept = f"stored {_v(days)} days"
        else:
            kept = f"storage {_v(stored)}"
        out[QUESTIONS[6]].append(f"{label}: {kept}{tag}")
    if own:
        name = _entity(lookup, pipes, "self") if "self" in pipes.entities else "the organisation"
        out[QUESTIONS[4]].insert(0, f"{name}, the organisation itself: {', '.join(own)}")
    empty = {QUESTIONS[5]: "none declared" if ctx.graph.complete else "unknown: the hop graph is incomplete"}
    return tuple(Answer(question=q, answers=tuple(a) or (empty.get(q, "none on this route"),)) for q, a in out.items())


def _entity(lookup: Lookup, pipes, entity: str | None) -> str:
    if entity is None:
        return "none"
    country = lookup.get("entity", entity, "incorporated_in")
    return f"{pipes.entity_name(entity)} ({country.value if country.usable else '?'})"


def _reaching(exposures: list[Exposure], hop: str, pipes) -> str:
    found = [
        e
        for e in exposures
        if e.hop == hop and e.worst != "none" and pipes.rules.laws[e.law].kind == "compelled_access"
    ]
    if not found:
        return "none"
    found.sort(key=lambda e: -SEVERITY.get(e.worst, 0))
    return ", ".join(f"{pipes.rules.laws[e.law].name} ({e.status})" for e in found)


class _Quiet(Trace):
    """A Trace that records nothing (answers cite no facts)."""

    def get(self, kind: Literal["entity", "hop"], id_: str, path: str) -> FactRef:
        return self.lookup.get(kind, id_, path)
