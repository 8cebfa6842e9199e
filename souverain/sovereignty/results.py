"""What an analysis produces: typed, JSON-ready structs.

`RouteProfile` is the small part the routing layer reads on every request and the ledger
records by digest; `RouteAnalysis` is everything a report shows (hops, exposures with
their chains of reasons, criteria with the facts they used, the level ladder).
"""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

from souverain.sovereignty.facts import FactRef
from souverain.sovereignty.schema import Confidence, Evidence, Purpose
from souverain.terms import Level

PROFILE_SCHEMA = "souverain.pipes.profile/v1"

Tri = Literal["yes", "no", "unknown"]
Verdict = Literal["pass", "fail", "partial", "unknown", "not_applicable"]
# For compelled-access laws: none < residual (contested reach through a local presence)
# < established. For transfers: none or established (a transfer happens). `unknown` as a
# status always comes with `worst`, the status the unknown facts would allow at worst.
ExposureStatus = Literal["none", "residual", "established", "unknown"]
SEVERITY = {"none": 0, "residual": 1, "established": 2}


def t_any(values: list[Tri] | tuple[Tri, ...]) -> Tri:
    """yes if any is yes; no if all are no (or none); else unknown."""
    if "yes" in values:
        return "yes"
    return "unknown" if "unknown" in values else "no"


def t_all(values: list[Tri] | tuple[Tri, ...]) -> Tri:
    """no if any is no; yes if all are yes (or none); else unknown."""
    if "no" in values:
        return "no"
    return "unknown" if "unknown" in values else "yes"


_NOT: dict[Tri, Tri] = {"yes": "no", "no": "yes", "unknown": "unknown"}


def tri(value: bool | Literal["unknown"]) -> Tri:
    """A stated yes/no, or unknown."""
    return "unknown" if value == "unknown" else "yes" if value else "no"


def t_not(value: Tri) -> Tri:
    return _NOT[value]


def combine(verdicts: list[Verdict], complete: bool = True) -> Verdict:
    """The worst verdict; `unknown` beats `partial`, and an incomplete set cannot pass."""
    applicable = [v for v in verdicts if v != "not_applicable"]
    if "fail" in applicable:
        return "fail"
    if "unknown" in applicable or not complete:
        return "unknown"
    if "partial" in applicable:
        return "partial"
    return "pass" if applicable else "not_applicable"


class _Out(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    pass


class Step(_Out, kw_only=True, frozen=True):
    """One link in a chain of reasons: which test, its result, why, from which facts."""

    test: str
    result: Tri
    text: str
    facts: tuple[FactRef, ...] = ()


class MitigationNote(_Out, kw_only=True, frozen=True):
    id: str
    title: str
    why: str


class Exposure(_Out, kw_only=True, frozen=True):
    law: str
    hop: str
    operator: str | None = None
    status: ExposureStatus
    worst: ExposureStatus
    data_classes: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()
    counted: tuple[MitigationNote, ...] = ()  # mitigations that remove the reach here
    not_counted: tuple[MitigationNote, ...] = ()  # present, but they do not remove it
    destinations: tuple[str, ...] = ()  # transfers: countries outside the EEA
    basis: tuple[str, ...] = ()  # transfers: the legal basis found for them
    # Compelled access: the status the law would have here if the operator could read the
    # data: whom the law binds, which follows the provider's structure (CSF SOV-2 Q2).
    jurisdiction: ExposureStatus = "none"
    jurisdiction_worst: ExposureStatus = "none"


class CriterionResult(_Out, kw_only=True, frozen=True):
    id: str
    framework: str
    ref: str
    title: str
    verdict: Verdict
    reasons: tuple[str, ...] = ()
    hops: tuple[str, ...] = ()
    facts: tuple[FactRef, ...] = ()
    seal: int | None = None  # CSF criteria: the SEAL cap this answer gives


class CountrySet(_Out, kw_only=True, frozen=True):
    countries: tuple[str, ...] = ()  # established
    possible: tuple[str, ...] = ()  # claimed by unverified facts or unconfirmed hops
    complete: bool  # every hop that matters stated it
    in_eea: Tri


class Residency(_Out, kw_only=True, frozen=True):
    processing: CountrySet
    storage: CountrySet
    fallback: CountrySet
    support: CountrySet
    admin: CountrySet
    telemetry: CountrySet


class HopReach(_Out, kw_only=True, frozen=True):
    """One law at one hop: each hop keeps its own status."""

    hop: str
    status: ExposureStatus
    worst: ExposureStatus


class LawReach(_Out, kw_only=True, frozen=True):
    law: str
    status: ExposureStatus  # the most severe status over the hops
    worst: ExposureStatus
    hops: tuple[HopReach, ...]  # every hop where the law is not ruled out, with its own status
    reason: str = ""  # one line: why residual, when it is


# What the profile says about compelled access to plaintext: `yes` an established reach,
# `residual` a contested reach through a local presence only (and nothing worse possible),
# `no` ruled out everywhere, `unknown` not ruled out.
Access = Literal["yes", "residual", "no", "unknown"]


class LevelCondition(_Out, kw_only=True, frozen=True):
    level: Level
    condition: str
    result: Tri
    reasons: tuple[str, ...] = ()


class RouteProfile(_Out, kw_only=True, frozen=True, omit_defaults=False):
    """What routing needs to know about a route, and what the ledger records by digest."""

    schema: str = PROFILE_SCHEMA
    route: str
    level: Level
    level_name: str
    blocked_by: tuple[str, ...] = ()  # why the level is not one higher
    non_eu_access: Access  # can a non-EU law compel plaintext? yes (established), residual, no, unknown
    non_eu_access_reason: str = ""  # one line: the law, the hops, and why residual when it is
    laws: tuple[LawReach, ...] = ()  # every non-EU law whose worst case is not none
    residency: Residency
    verdicts: dict[str, Verdict]
    csf_seal: int | None = None  # min over the CSF criteria evaluated; None when one is unknown
    personal_data: Tri  # may the route carry personal data (from its purpose)
    facts_digest: str  # sha256 of the facts the analysis read
    rules_digest: str  # sha256 of the shipped laws and criteria
    digest: str = ""  # sha256 of this profile's canonical JSON, without this field

    def with_digest(self) -> RouteProfile:
        body = msgspec.json.encode(msgspec.structs.replace(self, digest=""), order="sorted")
        return msgspec.structs.replace(self, digest=hashlib.sha256(body).hexdigest())


class NodeView(_Out, kw_only=True, frozen=True):
    hop: str
    title: str
    role: str
    operator: str | None = None
    operator_name: str = ""
    via: Literal["route", "runs_on", "subprocessor", "flow"]
    parent: str | None = None
    depth: int
    rank: int  # DORA supply-chain rank: 0 in-house, 1 direct provider, 2+ subcontractors
    certain: bool  # False when reached through an unverified runs_on/subprocessors fact
    data_classes: tuple[str, ...] | None = None  # None: unknown
    third_party: Tri
    reach: Tri  # can the operator reach plaintext
    worst: ExposureStatus  # the worst non-EU reach on this hop
    laws: tuple[LawReach, ...] = ()  # laws whose worst case here is not none


class Answer(_Out, kw_only=True, frozen=True):
    question: str
    answers: tuple[str, ...]


class RouteAnalysis(_Out, kw_only=True, frozen=True):
    route: str
    title: str = ""
    description: str = ""
    endpoint: dict[str, str] = {}
    purpose: Purpose
    profile: RouteProfile
    nodes: tuple[NodeView, ...]
    exposures: tuple[Exposure, ...]
    criteria: tuple[CriterionResult, ...]
    ladder: tuple[LevelCondition, ...]
    answers: tuple[Answer, ...]
    gaps: tuple[str, ...] = ()  # why the hop graph is incomplete
    breaches: tuple[str, ...] = ()  # requirements this route does not meet


class Analysis(_Out, kw_only=True, frozen=True, omit_defaults=False):
    schema: str = "souverain.pipes.analysis/v1"
    sources: tuple[str, ...]
    rules_version: str
    rules_digest: str
    min_confidence: Confidence
    routes: dict[str, RouteAnalysis]
    evidence: dict[str, Evidence] = {}  # every source cited by a fact the analysis used

    def profile(self, route: str) -> RouteProfile:
        return self.routes[route].profile

    @property
    def profiles(self) -> dict[str, RouteProfile]:
        return {name: r.profile for name, r in self.routes.items()}
