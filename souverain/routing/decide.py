"""`decide`: the one place where the sovereignty rule is enforced.

A pure function of (request facts, policy, candidate routes with their profiles, route
health): same inputs, same answer, nothing read from anywhere else. It returns either a
`Choice` (the route to use, the fallbacks allowed after it, and the reasons) or a
`Refusal` (why nothing may or can carry the request). It never returns a route the
policy excludes for the request's class, whatever the health of the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from souverain.classes import CLASSES, DataClassName
from souverain.routing.policy import ClassRule, Policy
from souverain.sovereignty import Level, RouteProfile


@dataclass(frozen=True, slots=True)
class Candidate:
    """A configured deployment that serves a public model over a declared route."""

    deployment: str  # the `models[].name` of the engine entry
    model: str  # the public model name it serves
    route: str  # the pipes route name
    profile: RouteProfile
    priority: int = 0  # lower is preferred


@dataclass(frozen=True, slots=True)
class Health:
    available: bool  # healthy, and its circuit breaker lets requests through
    outstanding: int = 0  # requests in flight


@dataclass(frozen=True, slots=True)
class RequestFacts:
    model: str
    data_class: DataClassName
    # Personal data the scanner found, which placeholders can remove (so that
    # "pseudonymise, then forward" can lower the class).
    pseudonymisable: bool = False


@dataclass(frozen=True, slots=True)
class Choice:
    candidate: Candidate
    data_class: DataClassName  # the class the request travels as
    pseudonymise: bool
    fallbacks: tuple[Candidate, ...]  # allowed and available, in order, for retries
    reasons: tuple[str, ...]
    excluded: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int  # 404 unknown model, 403 no route may carry it, 503 none available now
    code: str
    message: str
    data_class: DataClassName
    excluded: tuple[tuple[str, tuple[str, ...]], ...] = ()


def decide(
    facts: RequestFacts, policy: Policy, candidates: Sequence[Candidate], health: Mapping[str, Health]
) -> Choice | Refusal:
    serving = [c for c in candidates if c.model == facts.model]
    if not serving:
        return Refusal(
            404,
            "model_not_found",
            f"The model {facts.model!r} does not exist or you do not have access to it.",
            facts.data_class,
        )
    travel_as = facts.data_class
    allowed, excluded = _split(serving, policy, travel_as)
    pseudonymise = False
    rule = policy.rule(facts.data_class)
    if not allowed and rule.pseudonymise_to is not None and facts.pseudonymisable:
        lower = rule.pseudonymise_to
        if CLASSES.index(lower) < CLASSES.index(facts.data_class):
            allowed, _ = _split(serving, policy, lower)
            if allowed:
                travel_as, pseudonymise = lower, True
    if not allowed:
        detail = "; ".join(f"{route}: {', '.join(why)}" for route, why in excluded)
        return Refusal(
            403,
            "no_permitted_route",
            f"No route for model {facts.model!r} may carry {facts.data_class} data under this tenant's policy "
            f"({detail}). The request was not sent anywhere.",
            facts.data_class,
            tuple(excluded),
        )
    up = [c for c in allowed if health.get(c.deployment, Health(False)).available]
    if not up:
        names = ", ".join(c.route for c in allowed)
        return Refusal(
            503,
            "no_route_available",
            f"Every route allowed to carry {travel_as} data for model {facts.model!r} is unavailable ({names}); "
            "the gateway does not fall back to routes the policy excludes. Retry later.",
            facts.data_class,
            tuple(excluded),
        )
    up.sort(key=lambda c: (c.priority, health[c.deployment].outstanding, c.deployment))
    chosen = up[0]
    reasons = [f"{facts.data_class} data; route {chosen.route} is {chosen.profile.level.label}"]
    if pseudonymise:
        reasons.append(f"no route may carry {facts.data_class} data as it is; pseudonymised and sent as {travel_as}")
    return Choice(chosen, travel_as, pseudonymise, tuple(up[1:]), tuple(reasons), tuple(excluded))


def _split(
    serving: Sequence[Candidate], policy: Policy, data_class: DataClassName
) -> tuple[list[Candidate], list[tuple[str, tuple[str, ...]]]]:
    rule = policy.rule(data_class)
    allowed, excluded = [], []
    for candidate in serving:
        why = unmet(rule, candidate.profile)
        if why:
            excluded.append((candidate.route, tuple(why)))
        else:
            allowed.append(candidate)
    return allowed, excluded


def unmet(rule: ClassRule, profile: RouteProfile) -> list[str]:
    """Why `profile` may not carry a class under `rule`: empty when it may."""
    reasons = []
    needed = Level.parse(rule.min_level)
    if profile.level < needed:
        why = f" ({'; '.join(profile.blocked_by[:2])})" if profile.blocked_by else ""
        reasons.append(f"level {profile.level.label} is below {needed.label}{why}")
    if rule.no_non_eu_access and profile.non_eu_access != "no":
        laws = ", ".join(r.law for r in profile.laws) or "unverified facts"
        state = {"yes": "can", "residual": "can, through a contested residual reach,"}.get(profile.non_eu_access, "may")
        reasons.append(f"a non-EU law {state} compel access to the plaintext ({laws})")
    for aspect in rule.residency:
        where = getattr(profile.residency, aspect)
        if where.in_eea != "yes":
            seen = ", ".join(where.countries + where.possible) or "not stated"
            reasons.append(f"{aspect} is not established inside the EEA ({seen})")
    for criterion in rule.verdicts:
        verdict = profile.verdicts.get(criterion, "unknown")
        if verdict != "pass":
            reasons.append(f"criterion {criterion} is {verdict}, not pass")
    return reasons
