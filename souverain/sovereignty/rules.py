"""Laws and framework criteria, loaded from the data files shipped with the package.

The rules are data so that a legal reading can be reviewed (and corrected) next to its
citation, without reading Python. The code only knows a small set of *checks*; each
criterion names one and gives its parameters (thresholds, zones, fact paths).
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any, Literal

import msgspec

from souverain import yamlfile
from souverain.sovereignty.schema import Confidence
from souverain.terms import LevelName

DATA = "souverain.sovereignty.data"


class _Rule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    pass


class Source(_Rule, kw_only=True, frozen=True):
    title: str
    url: str
    confidence: Confidence


class Nexus(_Rule, kw_only=True, frozen=True):
    direct: tuple[str, ...] = ()
    presence: tuple[str, ...] = ()


class Law(_Rule, kw_only=True, frozen=True):
    name: str
    short: str  # for diagrams
    country: str
    kind: Literal["compelled_access", "transfer"]
    cite: str
    summary: str
    nexus: Nexus = Nexus()
    service_classes: tuple[str, ...] | Literal["any"] = "any"
    residual_note: str = ""
    mitigations_that_count: tuple[str, ...] = ()
    mitigations_that_do_not: tuple[str, ...] = ()
    confidence: Confidence
    sources: tuple[Source, ...] = ()
    note: str = ""


class Mitigation(_Rule, kw_only=True, frozen=True):
    title: str
    why: str


class Adequacy(_Rule, kw_only=True, frozen=True):
    countries: frozenset[str]
    cite: str
    confidence: Confidence
    note: str = ""


class Framework(_Rule, kw_only=True, frozen=True):
    name: str
    version: str
    date: str
    source: str
    note: str = ""


class Criterion(_Rule, kw_only=True, frozen=True):
    framework: str
    ref: str
    title: str
    check: str
    params: dict[str, Any] = {}
    applies: Literal["providers", "route"]
    regime: Literal["dora", "gdpr", "ai_act_high_risk"] | None = None
    satisfied_by: tuple[str, ...] = ()
    # The lowest sovereignty level that needs this criterion met (pass or not_applicable):
    # the ladder reads it, so a level never stands beside a criterion that contradicts it.
    required_from: LevelName | None = None
    confidence: Confidence
    note: str = ""


class LawsFile(_Rule, kw_only=True, frozen=True):
    version: str
    zones: dict[str, frozenset[str]]
    adequacy: Adequacy
    mitigations: dict[str, Mitigation]
    laws: dict[str, Law]


class CriteriaFile(_Rule, kw_only=True, frozen=True):
    version: str
    frameworks: dict[str, Framework]
    criteria: dict[str, Criterion]


class Rules(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the analyser applies; `digest` identifies this exact set of rules."""

    version: str
    zones: dict[str, frozenset[str]]
    adequacy: Adequacy
    mitigations: dict[str, Mitigation]
    laws: dict[str, Law]
    frameworks: dict[str, Framework]
    criteria: dict[str, Criterion]
    digest: str

    def in_zone(self, country: str, zone: str) -> bool:
        """Whether a country token lies in a zone; `EU` counts for the EU and the EEA, `ANY` never."""
        if country == "ANY":
            return False
        if country == "EU":
            return zone in ("EU", "EEA")
        return country in self.zones[zone]


def read_data(name: str) -> str:
    return resources.files(DATA).joinpath(name).read_text(encoding="utf-8")


def load_rules() -> Rules:
    """Read and check the shipped laws and criteria (a mistake here is a packaging bug)."""
    laws_text, criteria_text = read_data("laws.yaml"), read_data("criteria.yaml")
    root, data = yamlfile.compose(laws_text, "laws.yaml")
    laws = yamlfile.convert(data, LawsFile, root, "laws.yaml", hint="docs/pipes.md")
    root, data = yamlfile.compose(criteria_text, "criteria.yaml")
    criteria = yamlfile.convert(data, CriteriaFile, root, "criteria.yaml", hint="docs/pipes.md")
    for law_id, law in laws.laws.items():
        for mitigation in (*law.mitigations_that_count, *law.mitigations_that_do_not):
            if mitigation not in laws.mitigations:
                raise ValueError(f"laws.yaml: {law_id}: unknown mitigation {mitigation!r}")
    for crit_id, crit in criteria.criteria.items():
        if crit.framework not in criteria.frameworks:
            raise ValueError(f"criteria.yaml: {crit_id}: unknown framework {crit.framework!r}")
    digest = hashlib.sha256((laws_text + "\0" + criteria_text).encode()).hexdigest()
    return Rules(
        version=f"laws {laws.version}, criteria {criteria.version}",
        zones=laws.zones,
        adequacy=laws.adequacy,
        mitigations=laws.mitigations,
        laws=laws.laws,
        frameworks=criteria.frameworks,
        criteria=criteria.criteria,
        digest=digest,
    )
