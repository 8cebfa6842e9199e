"""Routing policy: what a route must satisfy to carry each data class.

A policy names, per data class, requirements stated in terms of the pipes analysis (a
route's `RouteProfile`): a minimum sovereignty level, no non-EU law able to compel the
plaintext, residency in the EEA of the chosen aspects (processing, storage...), and
criteria whose verdict must be `pass`. `unknown` never satisfies a requirement.

The shipped default is strict: personal and special data only where no non-EU law reaches
the plaintext. A class may allow "pseudonymise, then forward": if no route may carry the
request as it is, the gateway replaces the personal data with placeholders, re-classifies,
and routes it as the lower class.
"""

from __future__ import annotations

import msgspec

from souverain.classes import DataClassName
from souverain.strict import Strict as Base
from souverain.terms import Aspect, LevelName


class ClassRule(Base):
    """What a route must satisfy to carry one data class."""

    # The lowest sovereignty level allowed (docs/pipes.md defines the levels).
    min_level: LevelName = "none"
    # The route's analysis must say no non-EU law can compel access to the plaintext.
    no_non_eu_access: bool = False
    # These aspects of the route's residency must be established inside the EEA.
    residency: list[Aspect] = []
    # Criteria (by id, as in `souverain pipes report`) whose verdict must be `pass`.
    verdicts: list[str] = []
    # If no route may carry the request as it is: pseudonymise it, and route it as this
    # (lower) class. Unset: refuse.
    pseudonymise_to: DataClassName | None = None


def _strict() -> dict[DataClassName, ClassRule]:
    return {
        "public": ClassRule(),
        "internal": ClassRule(min_level="eu_resident"),
        "confidential": ClassRule(min_level="eu_controlled"),
        "personal": ClassRule(min_level="sovereign", no_non_eu_access=True, residency=["processing", "storage"]),
        "special": ClassRule(min_level="in_house", no_non_eu_access=True, residency=["processing", "storage"]),
    }


class Policy(Base):
    """Requirements per data class; classes left out get the strict default's rule."""

    classes: dict[DataClassName, ClassRule] = msgspec.field(default_factory=_strict)

    def rule(self, data_class: DataClassName) -> ClassRule:
        return self.classes.get(data_class) or _strict()[data_class]
