"""DORA Register of Information rows and GDPR Art. 30 records, emitted from the pipes.

A route already knows who provides what, who subcontracts to whom, where data is stored
and processed and under which law: the register templates B_05.01 (providers), B_05.02
(supply chain, with ranks) and B_02.02 (contract specifics, locations, governing law) are
a projection of it. Only established facts go into the register: a hop reached through an
unverified fact, or a field whose fact is unknown, is left out and listed as a gap, so
the register never states what nobody checked.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from souverain import yamlfile
from souverain.sovereignty.facts import SELF, FactRef, Lookup
from souverain.sovereignty.loader import Pipes
from souverain.sovereignty.results import Analysis, NodeView, RouteAnalysis, tri
from souverain.sovereignty.rules import read_data

TABLES = ("b_05.01", "b_05.02", "b_02.02")
ID_TYPES = (
    ("lei", "eba_qCO:qx2000"),
    ("euid", "eba_qCO:qx2002"),
    ("vat", "eba_qCO:qx2004"),
    ("national", "eba_qCO:qx2001"),
)
NOT_APPLICABLE = "eba_GA:qx2007"
YES, NO = "eba_BT:x28", "eba_BT:x29"
SENSITIVENESS = {"low": "eba_ZZ:x791", "medium": "eba_ZZ:x792", "high": "eba_ZZ:x793"}
RELIANCE = {"not_significant": "eba_ZZ:x794", "low": "eba_ZZ:x795", "material": "eba_ZZ:x796", "full": "eba_ZZ:x797"}


class Taxonomy(msgspec.Struct, forbid_unknown_fields=True):
    title: str
    source: str
    tables: dict[str, dict[str, str]]


class _DoraFile(msgspec.Struct, forbid_unknown_fields=True):
    default: str
    taxonomies: dict[str, Taxonomy]


def taxonomies() -> tuple[str, dict[str, Taxonomy]]:
    """(default name, taxonomies by name) from the shipped column layouts."""
    root, data = yamlfile.compose(read_data("dora_roi.yaml"), "dora_roi.yaml")
    parsed = yamlfile.convert(data, _DoraFile, root, "dora_roi.yaml", hint="docs/pipes.md")
    return parsed.default, parsed.taxonomies


@dataclass
class Register:
    taxonomy: str
    rows: dict[str, list[dict[str, str]]] = field(default_factory=lambda: {t: [] for t in TABLES})
    gaps: list[str] = field(default_factory=list)

    def add(self, table: str, row: dict[str, str]) -> None:
        if row not in self.rows[table]:
            self.rows[table].append(row)

    def csv(self, table: str, layout: Taxonomy) -> str:
        columns = layout.tables[table]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(list(columns))
        for row in self.rows[table]:
            writer.writerow([row.get(name, "") for name in columns.values()])
        return buf.getvalue()


class _Facts:
    """Register-oriented reads: usable values or '' plus a gap."""

    def __init__(self, pipes: Pipes, lookup: Lookup, gaps: list[str]) -> None:
        self.pipes, self.lookup, self.gaps = pipes, lookup, gaps

    def get(self, kind: Literal["entity", "hop"], id_: str, path: str, why: str = "") -> Any:
        ref: FactRef = self.lookup.get(kind, id_, path)
        if ref.usable:
            return ref.value
        if why:
            self.gaps.append(f"{kind} {id_}: {path} {ref.state.replace('_', ' ')} ({why})")
        return None

    def ident(self, entity: str, why: str) -> tuple[str, str]:
        for key, code in ID_TYPES:
            value = self.get("entity", entity, f"ids.{key}")
            if value:
                return str(value), code
        self.gaps.append(f"entity {entity}: no LEI, EUID, VAT or national id ({why}; resolve the LEI through GLEIF)")
        return "", ""

    def country(self, value: Any) -> str:
        if isinstance(value, list):
            value = next((c for c in value if c not in ("EU", "ANY")), None)
        return f"eba_GA:{value}" if value and value not in ("EU", "ANY") else ""

    def hq(self, entity: str) -> str:
        office = self.get("entity", entity, "hq.registered_office")
        return self.country(office) or self.country(
            self.get("entity", entity, "incorporated_in", "headquarters country")
        )


def register(analysis: Analysis, pipes: Pipes, taxonomy: str) -> Register:
    reg = Register(taxonomy)
    lookup = Lookup(pipes.entities, pipes.hops, analysis.min_confidence)
    facts = _Facts(pipes, lookup, reg.gaps)
    lei = facts.get("entity", SELF, "ids.lei", "B_02.02 c0020 needs the financial entity's LEI") or ""
    routes = [r for name, r in analysis.routes.items() if pipes.routes[name].regimes.dora]
    if not routes:
        reg.gaps.append("no route has `regimes: {dora: true}`; the register is empty")
    for route in routes:
        _route(reg, facts, route, str(lei))
    return reg


def _route(reg: Register, facts: _Facts, route: RouteAnalysis, lei: str) -> None:
    nodes = {n.hop: n for n in route.nodes}
    providers: dict[str, tuple[str, str]] = {}  # hop → (provider id, type)
    contracts: dict[str, str] = {}  # hop → contract reference of its rank-1 ancestor
    for n in route.nodes:
        if n.third_party != "yes" or (n.data_classes == () and n.rank == 1 and n.role == "model_weights_source"):
            continue
        if not n.certain:
            reg.gaps.append(f"route {route.route}: {n.hop} is reached through an unverified fact: not in the register")
            continue
        entity = n.operator
        if n.rank == 1:
            signed = facts.get("hop", n.hop, "contracting_entity")
            entity = signed or entity
        if entity is None:
            continue
        pid = _provider(reg, facts, entity, n)
        providers[n.hop] = pid
        parent = _third_party_parent(nodes, n)
        if n.rank == 1 or parent is None:
            ref = facts.get("hop", n.hop, "contract.reference") or f"PIPES:{n.hop}"
            if not facts.lookup.get("hop", n.hop, "contract.reference").usable:
                reg.gaps.append(f"hop {n.hop}: no contract.reference; `{ref}` used (it must match B_02.01)")
            contracts[n.hop] = ref
            _contract_row(reg, facts, route, n, ref, pid, lei)
        else:
            contracts[n.hop] = contracts.get(parent.hop, f"PIPES:{parent.hop}")
        service = facts.get("hop", n.hop, "contract.ict_service_type", "B_05.02 c0020")
        recipient = providers.get(parent.hop, ("", "")) if parent and n.rank > 1 else ("", "")
        reg.add(
            "b_05.02",
            {
                "contract_ref": contracts[n.hop],
                "service_type": f"eba_TA:{service}" if service else "",
                "provider_id": pid[0],
                "provider_id_type": pid[1],
                "rank": str(n.rank),
                "recipient_id": recipient[0],
                "recipient_id_type": recipient[1],
            },
        )


def _third_party_parent(nodes: dict[str, NodeView], node: NodeView) -> NodeView | None:
    parent = nodes.get(node.parent or "")
    while parent is not None and parent.third_party != "yes":
        parent = nodes.get(parent.parent or "")
    return parent


def _provider(reg: Register, facts: _Facts, entity: str, node: NodeView) -> tuple[str, str]:
    pid = facts.ident(entity, f"B_05.01 c0010 for {node.hop}")
    chain = facts.get("entity", entity, "parent_chain", "B_05.01 ultimate parent")
    parent = chain[-1] if chain else None
    parent_id = facts.ident(parent, f"ultimate parent of {entity}") if parent else ("", "")
    name = facts.get("entity", entity, "legal_name", "B_05.01 legal name") or facts.pipes.entity_name(entity)
    cost = facts.get("hop", node.hop, "contract.annual_cost")
    row = {
        "provider_id": pid[0] or f"({entity})",
        "provider_id_type": pid[1],
        "legal_name": str(name),
        "latin_name": str(name),
        "person_type": "eba_CT:x213" if facts.get("entity", entity, "person_type") == "individual" else "eba_CT:x212",
        "hq_country": facts.hq(entity),
        "currency": f"eba_CU:{facts.get('hop', node.hop, 'contract.currency')}" if cost is not None else "",
        "annual_expense": "" if cost is None else f"{cost:g}",
        "parent_id": parent_id[0],
        "parent_id_type": parent_id[1],
    }
    existing = next((r for r in reg.rows["b_05.01"] if r["provider_id"] == row["provider_id"]), None)
    if existing is None:
        reg.rows["b_05.01"].append(row)
    return row["provider_id"], row["provider_id_type"]


def _contract_row(
    reg: Register, facts: _Facts, route: RouteAnalysis, n: NodeView, ref: str, pid: tuple[str, str], lei: str
) -> None:
    hop = n.hop
    get = facts.get
    stored = get("hop", hop, "data_state.at_rest.stored", "B_02.02 c0140")
    storage = facts.country(get("hop", hop, "location.storage_countries")) if stored else ""
    processing = facts.country(get("hop", hop, "location.processing_countries", "B_02.02 c0160"))
    law = get("hop", hop, "contract.governing_law", "B_02.02 c0120")
    service = get("hop", hop, "contract.ict_service_type", "B_02.02 c0060")
    for what, value, field_ in (("storage", storage, "c0150"), ("processing", processing, "c0160")):
        if not value and (what == "processing" or stored):
            reg.gaps.append(f"hop {hop}: no single {what} country (B_02.02 {field_}); `Not applicable` written")
    function = route.purpose.function_id
    if not function:
        reg.gaps.append(f"route {route.route}: purpose.function_id is empty (B_02.02 c0050)")
    sensitivity = SENSITIVENESS.get(route.purpose.data_sensitivity, "")
    reliance = get("hop", hop, "contract.reliance")
    reg.add(
        "b_02.02",
        {
            "contract_ref": ref,
            "entity_lei": lei,
            "provider_id": pid[0],
            "provider_id_type": pid[1],
            "function_id": function,
            "service_type": f"eba_TA:{service}" if service else "",
            "start_date": str(get("hop", hop, "contract.start_date") or ""),
            "end_date": str(get("hop", hop, "contract.end_date") or ""),
            "termination_reason": "",
            "notice_entity": _str(get("hop", hop, "contract.notice_days_entity")),
            "notice_provider": _str(get("hop", hop, "contract.notice_days_provider")),
            "governing_law": facts.country(law),
            "provision_country": facts.hq(n.operator) if n.operator else NOT_APPLICABLE,
            "stores_data": YES if stored else NO if stored is False else "",
            "storage_location": storage or NOT_APPLICABLE,
            "processing_location": processing or NOT_APPLICABLE,
            "sensitiveness": sensitivity,
            "reliance": RELIANCE.get(reliance or "", ""),
        },
    )


def _str(value: Any) -> str:
    return "" if value is None else str(value)


# ---- GDPR Art. 30 -----------------------------------------------------------------------


class Recipient(msgspec.Struct, frozen=True):
    entity: str
    name: str
    country: str
    hops: tuple[str, ...]


class Art30Record(msgspec.Struct, frozen=True, kw_only=True):
    """Art. 30(1) GDPR, for the processing this route performs."""

    route: str
    controller: dict[str, str]
    purpose: str
    function_id: str
    lawful_basis: str
    data_subjects: tuple[str, ...]
    data_categories: tuple[str, ...]
    special_categories: str
    recipients: tuple[Recipient, ...]
    transfers: tuple[str, ...]
    erasure: tuple[str, ...]
    security: tuple[str, ...]
    sovereignty_level: str
    profile_digest: str


def art30(analysis: Analysis, pipes: Pipes) -> list[Art30Record]:
    lookup = Lookup(pipes.entities, pipes.hops, analysis.min_confidence)

    def v(kind: Literal["entity", "hop"], id_: str, path: str) -> Any:
        ref = lookup.get(kind, id_, path)
        return ref.value if ref.usable else None

    controller = {
        "name": str(v("entity", SELF, "legal_name") or pipes.entity_name(SELF)),
        "lei": str(v("entity", SELF, "ids.lei") or ""),
        "country": str(v("entity", SELF, "incorporated_in") or ""),
    }
    out = []
    for name, r in analysis.routes.items():
        if r.purpose.personal_data is False:
            continue
        classes = sorted({c for n in r.nodes for c in (n.data_classes or ())})
        recipients: dict[str, list[str]] = {}
        for n in r.nodes:
            if n.third_party == "yes" and n.reach != "no" and n.operator:
                recipients.setdefault(n.operator, []).append(n.hop + ("" if n.certain else " (unverified)"))
        transfers = [
            f"{e.hop}: {', '.join(e.destinations)}; basis: {'; '.join(e.basis) or 'none found'}"
            for e in r.exposures
            if pipes.rules.laws[e.law].kind == "transfer" and e.destinations
        ] + [
            f"{e.hop}: unknown whether data leaves the EEA"
            for e in r.exposures
            if pipes.rules.laws[e.law].kind == "transfer" and e.status == "unknown" and not e.destinations
        ]
        erasure, security = [], []
        for n in r.nodes:
            if n.data_classes == ():
                continue
            stored, days = (
                v("hop", n.hop, "data_state.at_rest.stored"),
                v("hop", n.hop, "data_state.at_rest.retention_days"),
            )
            erasure.append(
                f"{n.hop}: "
                + (
                    "not stored"
                    if stored is False
                    else f"kept {days} days"
                    if days is not None
                    else "retention unknown"
                )
            )
            enc, custodian = v("hop", n.hop, "data_state.at_rest.encryption"), v("hop", n.hop, "keys.custodian")
            security.append(
                f"{n.hop}: in use {v('hop', n.hop, 'data_state.in_use') or 'unknown'}; at rest {enc or 'unknown'}; keys {pipes.entity_name(custodian) if custodian else 'unknown'}"
            )
        out.append(
            Art30Record(
                route=name,
                controller=controller,
                purpose=r.purpose.name,
                function_id=r.purpose.function_id,
                lawful_basis=r.purpose.lawful_basis,
                data_subjects=tuple(r.purpose.data_subjects),
                data_categories=tuple(classes),
                special_categories=tri(r.purpose.special_categories),
                recipients=tuple(
                    Recipient(
                        entity=e,
                        name=pipes.entity_name(e),
                        country=str(v("entity", e, "incorporated_in") or "unknown"),
                        hops=tuple(h),
                    )
                    for e, h in recipients.items()
                ),
                transfers=tuple(transfers) or ("none",),
                erasure=tuple(erasure),
                security=tuple(security),
                sovereignty_level=r.profile.level_name,
                profile_digest=r.profile.digest,
            )
        )
    return out


def art30_markdown(records: list[Art30Record]) -> str:
    out = ["# GDPR Art. 30 records of processing", ""]
    for rec in records:
        out += [f"## {rec.route}: {rec.purpose or '(purpose not stated)'}", ""]
        out.append(
            f"- **Controller**: {rec.controller['name']} ({rec.controller['country'] or 'country unknown'}), LEI {rec.controller['lei'] or 'unknown'}"
        )
        out.append(
            f"- **Purpose**: {rec.purpose or 'unknown'}" + (f" (function {rec.function_id})" if rec.function_id else "")
        )
        out.append(f"- **Lawful basis**: {rec.lawful_basis or 'not stated'}")
        out.append(f"- **Data subjects**: {', '.join(rec.data_subjects) or 'not stated'}")
        out.append(
            f"- **Data categories**: {', '.join(rec.data_categories) or 'unknown'}; special categories: {rec.special_categories}"
        )
        out.append(
            "- **Recipients**: "
            + (
                "; ".join(f"{r.name} ({r.country}) at {', '.join(r.hops)}" for r in rec.recipients)
                or "none outside the organisation"
            )
        )
        out.append("- **Transfers to third countries**: " + "; ".join(rec.transfers))
        out.append("- **Erasure time limits**: " + "; ".join(rec.erasure))
        out.append("- **Security measures**: " + "; ".join(rec.security))
        out.append(f"- **Sovereignty level** (Souverain): {rec.sovereignty_level}, profile `{rec.profile_digest[:16]}`")
        out.append("")
    return "\n".join(out)
