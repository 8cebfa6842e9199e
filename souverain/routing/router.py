"""The router: deployments from the configuration, their route profiles from the pipes
analysis, each tenant's policy, and live health, put together for `decide`.

Built once at start. A deployment without `route:` gets a built-in profile: `local` for
the embedded engine (in this process, so no third party can reach the data; in the EEA
when `routing.local_in_eea` says so), `undeclared` for an HTTP upstream (level none,
non-EU access unknown: under the default policy it may carry public data only).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from souverain.auth import Principal
from souverain.classes import DataClassName
from souverain.config import Config, LlamaCppModel
from souverain.errors import ConfigError
from souverain.routing.decide import Candidate, Choice, Health, Refusal, RequestFacts, decide, unmet
from souverain.routing.health import HealthBook
from souverain.routing.policy import Policy
from souverain.sovereignty import CountrySet, Level, Residency, RouteProfile, load_profiles
from souverain.sovereignty.results import Access
from souverain.terms import ASPECTS


def builtin_profile(name: str, *, local: bool, in_eea: bool) -> RouteProfile:
    where = CountrySet(complete=local and in_eea, in_eea="yes" if local and in_eea else "unknown")
    access: Access
    if local:
        level, access = (Level.IN_HOUSE if in_eea else Level.NONE), "no"
        blocked = () if in_eea else ("routing.local_in_eea is false",)
    else:
        level, access, blocked = Level.NONE, "unknown", ("no pipes route declared for this upstream",)
    return RouteProfile(
        route=name,
        level=level,
        level_name=level.label,
        blocked_by=blocked,
        non_eu_access=access,
        residency=Residency(**dict.fromkeys(ASPECTS, where)),
        verdicts={},
        personal_data="unknown",
        facts_digest="builtin",
        rules_digest="builtin",
    ).with_digest()


class Router:
    def __init__(self, config: Config) -> None:
        routing = config.routing
        profiles: dict[str, RouteProfile] = {}
        if routing.pipes:
            try:
                profiles = {k: v if v.digest else v.with_digest() for k, v in load_profiles(routing.pipes).items()}
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(f"{routing.pipes}: cannot analyse the pipes file: {exc}") from None
        self.candidates: list[Candidate] = []
        for i, model in enumerate(config.models):
            if model.route:
                if model.route not in profiles:
                    where = (
                        f"the pipes file {routing.pipes}"
                        if routing.pipes
                        else "any pipes file (routing.pipes is not set)"
                    )
                    raise ConfigError(f"models[{i}].route: no route named {model.route!r} in {where}")
                profile = profiles[model.route]
            else:
                local = isinstance(model, LlamaCppModel)
                profile = builtin_profile("local" if local else "undeclared", local=local, in_eea=routing.local_in_eea)
            self.candidates.append(
                Candidate(model.name, model.serves or model.name, model.route or profile.route, profile, model.priority)
            )
        self.default_policy = routing.policy
        self.tenant_policies = routing.tenants
        self.retries = routing.retries
        self.default_class: DataClassName = routing.default_class
        self.health = HealthBook(routing.circuit.failures, routing.circuit.cooldown_s)

    def policy(self, tenant: str) -> Policy:
        return self.tenant_policies.get(tenant, self.default_policy)

    def public_models(self) -> list[str]:
        return list(dict.fromkeys(c.model for c in self.candidates))

    def visible_models(self, principal: Principal) -> list[str]:
        """Public names this caller may use, and that some route allowed for it (at the
        lowest class) serves: the only names /v1/models lists."""
        rule = self.policy(principal.tenant).rule("public")
        return [
            m
            for m in self.public_models()
            if principal.may_use(m) and any(c.model == m and not unmet(rule, c.profile) for c in self.candidates)
        ]

    def decide(
        self,
        principal: Principal,
        model: str,
        data_class: DataClassName,
        pseudonymisable: bool,
        ready_since: Mapping[str, float],
    ) -> Choice | Refusal:
        """`ready_since`: per deployment, when its engine last became ready (monotonic
        seconds; absent or 0 where the engine does not restart itself)."""
        candidates = self.candidates if principal.may_use(model) else []
        health: dict[str, Health] = self.health.snapshot(
            (c.deployment for c in candidates), ready_since, time.monotonic()
        )
        return decide(
            RequestFacts(model, data_class, pseudonymisable), self.policy(principal.tenant), candidates, health
        )
