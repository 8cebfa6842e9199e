"""Property tests for `decide`: the chosen route always satisfies the policy for the class
the request travels as; no allowed route means a refusal; health never widens the set."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from souverain.classes import CLASSES
from souverain.routing.decide import Candidate, Choice, Health, Refusal, RequestFacts, decide, unmet
from souverain.routing.policy import ClassRule, Policy
from souverain.sovereignty import CountrySet, HopReach, LawReach, Level, Residency, RouteProfile

TRI = st.sampled_from(["yes", "no", "unknown"])
LEVELS = ["none", "eu_resident", "eu_controlled", "sovereign", "in_house"]


@st.composite
def country_sets(draw) -> CountrySet:
    in_eea = draw(TRI)
    countries = ("FR",) if in_eea == "yes" else draw(st.sampled_from([(), ("US",), ("FR", "US")]))
    return CountrySet(countries=countries, complete=in_eea != "unknown", in_eea=in_eea)


@st.composite
def profiles(draw, name: str) -> RouteProfile:
    access = draw(st.sampled_from(["yes", "residual", "no", "unknown"]))
    status = "residual" if access == "residual" else "established"
    laws = (
        ()
        if access == "no"
        else (
            LawReach(
                law="us-cloud-act", status=status, worst=status, hops=(HopReach(hop="h", status=status, worst=status),)
            ),
        )
    )
    return RouteProfile(
        route=name,
        level=Level(draw(st.integers(0, 4))),
        level_name="x",
        non_eu_access=access,
        laws=laws,
        residency=Residency(
            **{a: draw(country_sets()) for a in ("processing", "storage", "fallback", "support", "admin", "telemetry")}
        ),
        verdicts={"c1": draw(st.sampled_from(["pass", "fail", "partial", "unknown"]))},
        personal_data=draw(TRI),
        facts_digest="f",
        rules_digest="r",
    )


@st.composite
def rules(draw) -> ClassRule:
    return ClassRule(
        min_level=draw(st.sampled_from(LEVELS)),
        no_non_eu_access=draw(st.booleans()),
        residency=draw(st.lists(st.sampled_from(["processing", "storage", "fallback"]), unique=True, max_size=2)),
        verdicts=draw(st.sampled_from([[], ["c1"]])),
        pseudonymise_to=draw(st.sampled_from([None, "public", "internal", "confidential"])),
    )


@st.composite
def scenarios(draw):
    policy = Policy(classes={c: draw(rules()) for c in CLASSES})
    n = draw(st.integers(1, 5))
    candidates = [
        Candidate(
            f"d{i}",
            draw(st.sampled_from(["m", "m", "other"])),
            f"r{i}",
            draw(profiles(f"r{i}")),
            draw(st.integers(0, 2)),
        )
        for i in range(n)
    ]
    health = {c.deployment: Health(draw(st.booleans()), draw(st.integers(0, 5))) for c in candidates}
    facts = RequestFacts("m", draw(st.sampled_from(CLASSES)), draw(st.booleans()))
    return facts, policy, candidates, health


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_choice_always_satisfies_the_policy(scenario) -> None:
    facts, policy, candidates, health = scenario
    result = decide(facts, policy, candidates, health)
    serving = [c for c in candidates if c.model == facts.model]
    allowed_as_is = [c for c in serving if not unmet(policy.rule(facts.data_class), c.profile)]
    if isinstance(result, Choice):
        for c in (result.candidate, *result.fallbacks):
            assert c.model == facts.model
            assert unmet(policy.rule(result.data_class), c.profile) == []
            assert health[c.deployment].available
        if result.pseudonymise:
            assert not allowed_as_is and facts.pseudonymisable
            assert result.data_class == policy.rule(facts.data_class).pseudonymise_to
            assert CLASSES.index(result.data_class) < CLASSES.index(facts.data_class)
        else:
            assert result.data_class == facts.data_class
    else:
        assert isinstance(result, Refusal)
        if not serving:
            assert result.status == 404
        elif result.status == 503:
            # Allowed routes exist and all are down: no fallback outside the allowed set.
            assert not any(health[c.deployment].available for c in allowed_as_is)
        else:
            assert result.status == 403 and not allowed_as_is


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_health_never_widens_the_allowed_set(scenario) -> None:
    facts, policy, candidates, health = scenario
    all_up = {d: Health(True, h.outstanding) for d, h in health.items()}
    with_failures = decide(facts, policy, candidates, health)
    healthy = decide(facts, policy, candidates, all_up)
    if isinstance(with_failures, Choice):
        assert isinstance(healthy, Choice)
        allowed_when_healthy = {healthy.candidate.deployment, *(c.deployment for c in healthy.fallbacks)}
        assert with_failures.candidate.deployment in allowed_when_healthy
    if isinstance(healthy, Refusal):
        assert isinstance(with_failures, Refusal) and with_failures.status == healthy.status


def test_strict_default_keeps_personal_data_off_exposed_routes() -> None:
    def profile(level: Level, access: str, eea: str) -> RouteProfile:
        where = CountrySet(countries=("FR",) if eea == "yes" else ("US",), complete=True, in_eea=eea)
        return RouteProfile(
            route="r",
            level=level,
            level_name="x",
            non_eu_access=access,
            residency=Residency(
                **dict.fromkeys(("processing", "storage", "fallback", "support", "admin", "telemetry"), where)
            ),
            verdicts={},
            personal_data="yes",
            facts_digest="f",
            rules_digest="r",
        )

    onprem = Candidate("onprem", "m", "onprem", profile(Level.IN_HOUSE, "no", "yes"), priority=0)
    cloud = Candidate("cloud", "m", "hyperscaler-eu", profile(Level.EU_RESIDENT, "yes", "yes"), priority=1)
    policy = Policy()
    up = {"onprem": Health(True), "cloud": Health(True)}
    assert decide(RequestFacts("m", "public"), policy, [onprem, cloud], up).candidate is onprem
    # On-prem down: public data may use the cloud, personal data is refused with 503.
    down = {"onprem": Health(False), "cloud": Health(True)}
    assert decide(RequestFacts("m", "public"), policy, [onprem, cloud], down).candidate is cloud
    refusal = decide(RequestFacts("m", "personal"), policy, [onprem, cloud], down)
    assert isinstance(refusal, Refusal) and refusal.status == 503 and refusal.code == "no_route_available"
    # Only the cloud route configured: personal data is refused with 403 and the reasons.
    only_cloud = decide(RequestFacts("m", "personal"), policy, [cloud], up)
    assert isinstance(only_cloud, Refusal) and only_cloud.status == 403
    assert "non-EU law can compel" in only_cloud.message and "below sovereign" in only_cloud.message
    # Pseudonymise-then-forward, where the policy allows it.
    lenient = Policy(
        classes={
            **Policy().classes,
            "personal": ClassRule(min_level="sovereign", no_non_eu_access=True, pseudonymise_to="internal"),
        }
    )
    chosen = decide(RequestFacts("m", "personal", pseudonymisable=True), lenient, [cloud], up)
    assert isinstance(chosen, Choice) and chosen.pseudonymise and chosen.data_class == "internal"
    assert isinstance(decide(RequestFacts("m", "personal", pseudonymisable=False), lenient, [cloud], up), Refusal)
