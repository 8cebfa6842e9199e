"""Facts: every leaf of an entity or hop, with its evidence and confidence.

The loader flattens each entity and hop into `{dotted.path: Fact}` so that the catalogue
and a user's file merge fact by fact (overriding `location.processing_countries` leaves
the rest of the catalogue's hop alone), and so that every verdict can cite exactly the
facts it used. A fact's confidence is, in order: its own `confidence`, else the best of
its evidence's, else the object's `confidence`, else `asserted`.

`Lookup` answers "what is known about X" under a minimum confidence: a fact below it, a
fact marked unverified, `unknown` and a fact never stated all come back not usable, and
the analyser treats each as unknown.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from souverain.sovereignty.schema import CONFIDENCE_RANK, META_KEYS, Confidence, Evidence, Stated

SELF = "self"  # the organisation whose pipes these are
FactState = Literal["known", "unknown", "unverified", "low_confidence", "missing"]

# Facts whose value names an entity or hop; `none` (or null) means "no such".
REF_PATHS = frozenset(
    {"operator", "contracting_entity", "runs_on", "ultimate_parent", "keys.custodian", "model.provider"}
)
# Leaves that hold a country or a list of countries (checked against ISO 3166 on load).
COUNTRY_LEAVES = frozenset(
    {
        "incorporated_in", "registered_office", "central_administration", "principal_establishment",
        "subsidiaries_in", "offices_in", "targets_customers_in", "weights_origin", "hsm_country",
        "processing_countries", "storage_countries", "fallback_countries", "admin_access_from",
        "support_access_from", "support_staff_citizenship", "governing_law", "dispute_forum", "hardware_origin",
    }
)  # fmt: skip


class Fact(msgspec.Struct, frozen=True):
    value: Any
    known: bool  # False when written `unknown`
    confidence: Confidence
    evidence: tuple[str, ...] = ()
    note: str = ""
    origin: str = ""  # the file that stated it


class FactRef(msgspec.Struct, frozen=True, omit_defaults=True):
    """A fact as an analysis used it: what it says, and whether it could count."""

    subject: str  # "entity:<id>" or "hop:<id>"
    path: str
    state: FactState
    value: Any = None  # what the source claims, even when it could not count
    confidence: Confidence | None = None
    evidence: tuple[str, ...] = ()
    note: str = ""

    @property
    def usable(self) -> bool:
        return self.state == "known"


Facts = dict[str, Fact]


def flatten(obj: msgspec.Struct, evidence: dict[str, Evidence], origin: str) -> Facts:
    """One entity or hop → its stated facts (UNSET fields are skipped)."""
    default_evidence = tuple(getattr(obj, "evidence", ()))
    default_confidence = getattr(obj, "confidence", None)
    out: Facts = {}

    def confidence_of(explicit: Confidence | None, cited: tuple[str, ...]) -> Confidence:
        if explicit:
            return explicit
        if cited:
            return max(
                (evidence[e].confidence for e in cited if e in evidence),
                key=CONFIDENCE_RANK.__getitem__,
                default="asserted",
            )
        return default_confidence or "asserted"

    def walk(node: msgspec.Struct, prefix: str) -> None:
        for name in node.__struct_fields__:
            if not prefix and name in META_KEYS:
                continue
            value = getattr(node, name)
            if value is msgspec.UNSET:
                continue
            path = prefix + name
            if isinstance(value, Stated):
                cited = tuple(value.evidence)
                raw, conf, note = value.value, confidence_of(value.confidence, cited), value.note
            elif isinstance(value, msgspec.Struct) and not isinstance(value, list):
                walk(value, path + ".")
                continue
            else:
                cited, raw, note = default_evidence, value, ""
                conf = confidence_of(None, cited)
            if path in REF_PATHS and raw == "none":
                raw = None
            known = raw != "unknown"
            out[path] = Fact(raw if known else None, known, conf, cited, note, origin)

    walk(obj, "")
    return out


class Lookup:
    """Read facts under a minimum confidence; every answer is a `FactRef`.

    `everything=True` counts every stated fact, unverified ones included: the loader uses
    it to find declarations that contradict each other, whatever their confidence."""

    def __init__(
        self,
        entities: dict[str, Facts],
        hops: dict[str, Facts],
        min_confidence: Confidence = "asserted",
        *,
        everything: bool = False,
    ) -> None:
        self._tables = {"entity": entities, "hop": hops}
        self._floor = CONFIDENCE_RANK[min_confidence]
        self._everything = everything

    def get(self, kind: Literal["entity", "hop"], id_: str, path: str) -> FactRef:
        subject = f"{kind}:{id_}"
        fact = self._tables[kind].get(id_, {}).get(path)
        if fact is None:
            return FactRef(subject, path, "missing")
        if not fact.known:
            state: FactState = "unknown"
        elif self._everything:
            state = "known"
        elif fact.confidence == "unverified":
            state = "unverified"
        elif CONFIDENCE_RANK[fact.confidence] < self._floor:
            state = "low_confidence"
        else:
            state = "known"
        return FactRef(subject, path, state, fact.value, fact.confidence, fact.evidence, fact.note)

    def stated(self, kind: Literal["entity", "hop"], id_: str, path: str) -> bool:
        """Whether the path was stated at all (even as `unknown`)."""
        return path in self._tables[kind].get(id_, {})


class Trace:
    """Collects the facts one evaluation consulted, in order, without repeats."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.refs: list[FactRef] = []
        self._seen: set[tuple[str, str]] = set()

    def get(self, kind: Literal["entity", "hop"], id_: str, path: str) -> FactRef:
        ref = self.lookup.get(kind, id_, path)
        key = (ref.subject, path)
        if key not in self._seen:
            self._seen.add(key)
            self.refs.append(ref)
        return ref

    def hop(self, id_: str, path: str) -> FactRef:
        return self.get("hop", id_, path)

    def entity(self, id_: str, path: str) -> FactRef:
        return self.get("entity", id_, path)

    def take(self) -> tuple[FactRef, ...]:
        refs, self.refs, self._seen = tuple(self.refs), [], set()
        return refs


def control_chain(trace: Trace, entity: str) -> tuple[list[str], bool]:
    """The entity and its controlling parents, and whether that list is known to be complete."""
    chain = [entity]
    parents = trace.entity(entity, "parent_chain")
    if parents.usable:
        chain.extend(p for p in parents.value if p not in chain)
        return chain, True
    top = trace.entity(entity, "ultimate_parent")
    if top.usable and top.value is None:
        return chain, True
    if top.usable and top.value not in chain:
        chain.append(top.value)
    return chain, False


def describe(ref: FactRef) -> str:
    """`hop:x location.processing_countries = [FR] (verified)`, for reasons in reports."""
    shown = "unknown" if ref.value is None and ref.state != "known" else _show(ref.value)
    if ref.state == "known":
        return f"{ref.subject} {ref.path} = {shown} ({ref.confidence})"
    if ref.state == "missing":
        return f"{ref.subject} {ref.path} is not stated"
    if ref.state == "unknown":
        return f"{ref.subject} {ref.path} is unknown"
    return f"{ref.subject} {ref.path} = {shown} but {ref.state.replace('_', ' ')}"


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, msgspec.Struct):
        return str(msgspec.to_builtins(value))
    if value is None:
        return "none"
    return str(value).lower() if isinstance(value, bool) else str(value)
