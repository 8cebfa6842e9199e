"""Properties the analysis must keep whatever the pipes say.

1. Adding a hop whose operator has a US parent and sees plaintext never raises a route's
   level (and never makes non-EU access look better).
2. Removing evidence (or a fact altogether) never turns a fail or an unknown into a pass,
   and never raises a level: unknown never passes.

Both run on the worked example and on randomly generated pipes (entities with random
seats, parents and shareholdings; hops with random locations, keys, access, contracts,
subprocessors; facts at random confidence), so that every check meets known-failing
facts and not only the example's.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from souverain.sovereignty import analyse, load_pipes, parse_pipes
from souverain.sovereignty.custody import hop_custody
from souverain.sovereignty.facts import Fact, Lookup, Trace, flatten
from souverain.sovereignty.flows import add_recipients
from souverain.sovereignty.loader import Pipes
from souverain.sovereignty.schema import Entity, Evidence, Hop, Route

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pipes" / "pipes.yaml"
BASE = load_pipes(EXAMPLE)
EMPTY = parse_pipes("", "empty.yaml", catalogue=False)
ACCESS_RANK = {"no": 0, "residual": 1, "unknown": 2, "yes": 3}
SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

EVIDENCE = {
    f"ev-{c}": Evidence(source=f"test:{c}", retrieved="2026-01-01", confidence=c)  # type: ignore[arg-type]
    for c in ("verified", "secondary", "asserted", "unverified")
}
COUNTRIES = ["FR", "DE", "IE", "EU", "US", "CA", "ANY", "CH"]
ENTITY_IDS = ["e0", "e1", "e2", "e3"]


# ---- random pipes ------------------------------------------------------------------------
# Built from a seed with `random.Random` rather than with nested strategies: hypothesis
# drives the seeds (and everything the properties choose), and generation stays fast
# enough to run hundreds of cases in a few seconds. A failure prints the seed.


class _Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        # How much is known varies per case: mostly-known pipes reach high levels, so that
        # removing a fact has something to lower.
        self.known = self.r.choice([0.6, 0.85, 0.97])

    def fact(self, value):
        """Mostly a plain value (so checks can pass and fail), sometimes stated with evidence
        at some confidence, sometimes `unknown`."""
        roll = self.r.random()
        v = value() if callable(value) else value
        if roll < self.known:
            return v
        if roll < self.known + (1 - self.known) * 0.6:
            out = {"value": v, "evidence": self.r.sample(sorted(EVIDENCE), self.r.randint(0, 1))}
            confidence = self.r.choice([None, None, "verified", "secondary", "unverified"])
            return {**out, "confidence": confidence} if confidence else out
        return "unknown"

    def pick(self, options):
        return lambda: self.r.choice(options)

    def some(self, options, most: int = 3):
        return lambda: self.r.sample(options, self.r.randint(0, min(most, len(options))))

    def entity(self, index: int) -> dict:
        f, later = self.fact, ENTITY_IDS[index + 1 :]
        return {
            "incorporated_in": f(self.pick(["FR", "DE", "IE", "LU", "US", "CA"])),
            "hq": {
                k: f(self.pick(["FR", "DE", "IE", "US", "EU"]))
                for k in ("registered_office", "central_administration", "principal_establishment")
            },
            "parent_chain": f(self.some(later, 2)),
            "non_eu_shareholding": {
                "max_individual_pct": f(self.pick([0, 10, 24, 30, 60, 100])),
                "collective_pct": f(self.pick([0, 20, 39, 45, 100])),
                "veto_rights": f(self.pick([True, False])),
                "appoints_board_majority": f(self.pick([True, False])),
            },
            "foreign_presence": {
                k: f(self.some(COUNTRIES)) for k in ("subsidiaries_in", "offices_in", "targets_customers_in")
            },
            "service_class": f(self.some(["ECS", "RCS", "ECSP"])),
            "dora_ctpp": f(self.pick([True, False])),
            "dpf_certified": f(self.pick([True, False])),
        }

    def hop(self, index: int, count: int) -> dict:
        f, later = self.fact, [f"h{j}" for j in range(index + 1, count)]
        who = self.pick(["self", *ENTITY_IDS])
        return {
            "role": self.r.choice(["model_inference", "compute", "api_gateway", "logging_sink", "object_storage"]),
            "operator": f(who),
            "runs_on": f(self.pick([None, *later])),
            "subprocessors": f(self.some(later, 2)),
            "data_classes": f(self.some(["prompt", "completion", "content_logs"], 2)),
            "data_state": {
                "in_use": f(self.pick(["plaintext", "tee_attested", "none"])),
                "at_rest": {
                    "stored": f(self.pick([True, False])),
                    "retention_days": f(self.pick([0, 30, 183, 400])),
                    "encryption": f(self.pick(["provider_managed", "cmk_in_provider_kms", "hyok", "client_side"])),
                },
            },
            "keys": {"custodian": f(who), "provider_can_decrypt": f(self.pick([True, False]))},
            "location": {
                "processing_countries": f(self.some(COUNTRIES)),
                "storage_countries": f(self.some(COUNTRIES)),
                "non_eu_fallback": f(self.pick([True, False])),
                "fallback_countries": f(self.some(COUNTRIES)),
                "processing_scope": f(self.pick(["region", "data_zone_eu", "global"])),
            },
            "access": {
                "admin_access_from": f(self.some(COUNTRIES)),
                "support_access_from": f(self.some(COUNTRIES)),
                "support_staff_citizenship": f(self.some(COUNTRIES)),
                "support_operations_documented": f(self.pick([True, False])),
            },
            "contract": {
                "location_change_notice": f(self.pick([True, False])),
                "control_change_notice_days": f(self.pick([0, 30, 90, 120])),
                "dpa_art28": f(self.pick([True, False])),
                "transfer_mechanisms": f(self.some(["scc_2021_914", "dpf", "bcr"], 2)),
            },
            "certified": f(self.pick([[], [], ["SecNumCloud/3.2"]])),
            "telemetry": f(
                lambda: [
                    {
                        "name": "stats",
                        "enabled": self.r.choice([True, False, "unknown"]),
                        "countries": self.r.choice([["FR"], ["US"], "unknown"]),
                        "content": self.r.choice(["none", "metadata", "content"]),
                        "destination": self.r.choice([None, *ENTITY_IDS]),
                    }
                ][: self.r.randint(0, 1)]
            ),
            "model": {"weights_origin": f(self.pick(["FR", "US"]))},
            "hardware_origin": f(self.pick([["US"], ["FR"]])),
        }


def generate(seed: int) -> tuple[Pipes, str]:
    g = _Gen(seed)
    count = g.r.randint(1, 4)
    entities = {"self": flatten(msgspec.convert({"incorporated_in": "FR"}, Entity), EVIDENCE, "gen")}
    for i, eid in enumerate(ENTITY_IDS):
        entities[eid] = flatten(msgspec.convert(g.entity(i), Entity), EVIDENCE, "gen")
    hops, roles = {}, {}
    for i in range(count):
        raw = g.hop(i, count)
        roles[f"h{i}"] = raw["role"]
        hops[f"h{i}"] = flatten(msgspec.convert(raw, Hop), EVIDENCE, "gen")
    _drop_contradictions(entities, hops)
    top = g.r.sample(sorted(hops), g.r.randint(1, count))
    titles: dict[str, str] = {}
    add_recipients(hops, titles, roles)  # as the loader does: flows that carry data have recipients
    route = msgspec.convert(
        {
            "hops": top,
            "purpose": {
                "personal_data": g.r.choice([True, False, "unknown"]),
                "ai_act": {"role": "deployer", "high_risk": g.r.choice([True, False, "unknown"])},
            },
            "regimes": {"dora": g.r.choice([True, False])},
        },
        Route,
    )
    pipes = dataclasses.replace(
        EMPTY,
        entities=entities,
        hops=hops,
        hop_roles=roles,
        evidence=dict(EVIDENCE),
        routes={"r": route},
        entity_names={},
        hop_titles=titles,
    )
    return pipes, "r"


def _drop_contradictions(entities: dict, hops: dict) -> None:
    """The loader refuses custody facts that contradict each other (custody.py); random
    pipes bypass it, so they drop such facts here, as a user would have to."""
    for hop in hops:
        for path in ("keys.provider_can_decrypt", "keys.custodian"):
            if hop_custody(Trace(Lookup(entities, hops, everything=True)), hop).conflicts:
                hops[hop].pop(path, None)


random_pipes = st.integers(min_value=0, max_value=2**32 - 1).map(generate)
example_route = st.sampled_from(sorted(BASE.routes)).map(lambda name: (BASE, name))
any_route = st.one_of(example_route, random_pipes)


# ---- property 1: a US-controlled plaintext hop never raises a level ------------------------

us_hop = st.fixed_dictionaries(
    {
        "incorporated_in": st.sampled_from(["IE", "LU", "DE", "FR", "US", "NL"]),
        "processing": st.lists(st.sampled_from(["FR", "DE", "IE", "EU", "US", "ANY"]), min_size=1, max_size=3),
        "classes": st.lists(
            st.sampled_from(["prompt", "completion", "content_logs", "files"]), min_size=1, max_size=3, unique=True
        ),
        "stored": st.booleans(),
        "service": st.sampled_from([["RCS"], ["ECS", "RCS", "ECSP"], []]),
        "attach": st.sampled_from(["route_end", "route_start", "subprocessor", "runs_on"]),
    }
)


def add_us_hop(pipes: Pipes, route: str, spec: dict, anchor: int) -> Pipes:
    entities = dict(pipes.entities)
    hops = {h: dict(f) for h, f in pipes.hops.items()}
    entities["prop-us-parent"] = flatten(
        msgspec.convert({"incorporated_in": "US", "parent_chain": []}, Entity), {}, "prop"
    )
    operator = {
        "incorporated_in": spec["incorporated_in"],
        "parent_chain": ["prop-us-parent"],
        "service_class": spec["service"],
    }
    entities["prop-us-op"] = flatten(msgspec.convert(operator, Entity), {}, "prop")
    new_hop = {
        "role": "compute",
        "operator": "prop-us-op",
        "runs_on": None,
        "subprocessors": [],
        "data_classes": spec["classes"],
        "data_state": {"in_use": "plaintext", "at_rest": {"stored": spec["stored"], "retention_days": 30}},
        "location": {
            "processing_countries": spec["processing"],
            "storage_countries": spec["processing"],
            "non_eu_fallback": False,
        },
        "telemetry": [],
    }
    hops["prop/us-hop"] = flatten(msgspec.convert(new_hop, Hop), {}, "prop")
    routes = dict(pipes.routes)
    decl = routes[route]
    if spec["attach"] == "route_end":
        routes[route] = msgspec.structs.replace(decl, hops=[*decl.hops, "prop/us-hop"])
    elif spec["attach"] == "route_start":
        routes[route] = msgspec.structs.replace(decl, hops=["prop/us-hop", *decl.hops])
    else:
        # Under a hop the route already reaches, where that hop's edge is known: replacing
        # an unknown edge would add information, not just a hop.
        reached = [n.hop for n in analyse(pipes, routes=[route]).routes[route].nodes]
        facts = hops[reached[anchor % len(reached)]]
        path = "subprocessors" if spec["attach"] == "subprocessor" else "runs_on"
        old = facts.get(path)
        known = old is not None and old.known and old.confidence != "unverified"
        if path == "subprocessors" and known:
            facts[path] = Fact([*old.value, "prop/us-hop"], True, old.confidence, old.evidence)
        elif path == "runs_on" and known and old.value is None:
            facts[path] = Fact("prop/us-hop", True, old.confidence, old.evidence)
        else:
            routes[route] = msgspec.structs.replace(decl, hops=[*decl.hops, "prop/us-hop"])
    return dataclasses.replace(
        pipes, entities=entities, hops=hops, routes=routes, hop_roles={**pipes.hop_roles, "prop/us-hop": "compute"}
    )


@SETTINGS
@given(case=any_route, spec=us_hop, anchor=st.integers(min_value=0, max_value=50))
def test_adding_a_us_controlled_plaintext_hop_never_raises_the_level(case, spec: dict, anchor: int) -> None:
    pipes, route = case
    before = analyse(pipes, routes=[route]).profile(route)
    after = analyse(add_us_hop(pipes, route, spec, anchor), routes=[route]).profile(route)
    assert after.level <= before.level, (route, spec, after.blocked_by)
    assert ACCESS_RANK[after.non_eu_access] >= ACCESS_RANK[before.non_eu_access] or after.non_eu_access == "unknown"
    if spec["service"] and spec["attach"].startswith("route"):
        # A covered service with a US parent seeing plaintext on the route: established reach.
        assert after.level <= 1 and after.non_eu_access == "yes"


# ---- property 2: removing evidence never makes anything pass --------------------------------


def removable(pipes: Pipes, route: str) -> list[tuple[str, str, str]]:
    """The facts this route's analysis reads: its hops', and their operators' and parents'."""
    nodes = analyse(pipes, routes=[route]).routes[route].nodes
    hop_facts = [("hop", n.hop, p) for n in nodes for p in pipes.hops[n.hop]]
    named = {
        f.value
        for n in nodes
        for p, f in pipes.hops[n.hop].items()
        if p in ("operator", "keys.custodian") and isinstance(f.value, str)
    }
    for e in list(named):
        chain = pipes.entities.get(e, {}).get("parent_chain")
        named.update(chain.value if chain is not None and isinstance(chain.value, list) else [])
    entity_facts = [("entity", e, p) for e in named if e in pipes.entities for p in pipes.entities[e]]
    return sorted(set(hop_facts) | set(entity_facts))


def remove(pipes: Pipes, picks: list) -> Pipes:
    entities = {e: dict(f) for e, f in pipes.entities.items()}
    hops = {h: dict(f) for h, f in pipes.hops.items()}
    for (kind, oid, path), how in picks:
        table = (entities if kind == "entity" else hops)[oid]
        fact = table.get(path)
        if fact is None:
            continue
        if how == "strip":  # the source goes; the statement stays, unsourced
            table[path] = Fact(
                fact.value, fact.known, "asserted" if fact.confidence != "unverified" else "unverified", (), fact.note
            )
        elif how == "unknown":
            table[path] = Fact(None, False, fact.confidence, (), fact.note)
        elif how == "unverify":
            table[path] = Fact(fact.value, fact.known, "unverified", fact.evidence, fact.note)
        else:
            del table[path]
    return dataclasses.replace(pipes, entities=entities, hops=hops)


def check_removal(pipes: Pipes, route: str, picks: list, floor: str, before=None) -> None:
    before = before or analyse(pipes, min_confidence=floor, routes=[route]).routes[route]
    after = analyse(remove(pipes, picks), min_confidence=floor, routes=[route]).routes[route]
    old = {c.id: c.verdict for c in before.criteria}
    for crit in after.criteria:
        if old[crit.id] in ("fail", "unknown"):
            assert crit.verdict != "pass", (route, crit.id, old[crit.id], picks)
    assert after.profile.level <= before.profile.level, (route, picks, after.profile.blocked_by)
    if before.profile.non_eu_access != "no":  # losing information never clears a route
        assert after.profile.non_eu_access != "no", (route, picks)


MODES = ["strip", "unknown", "unverify", "drop"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    case=any_route,
    mode=st.sampled_from(MODES),
    floor=st.sampled_from(["asserted", "secondary", "verified"]),
    seed=st.integers(0, 2**16),
)
def test_removing_any_one_fact_never_turns_fail_or_unknown_into_pass(case, mode: str, floor: str, seed: int) -> None:
    """Each fact the route reads (60 of them, drawn at random), removed one at a time."""
    pipes, route = case
    candidates = removable(pipes, route)
    random.Random(seed).shuffle(candidates)
    before = analyse(pipes, min_confidence=floor, routes=[route]).routes[route]
    for candidate in candidates[:60]:
        check_removal(pipes, route, [(candidate, mode)], floor, before)


@SETTINGS
@given(case=any_route, data=st.data(), floor=st.sampled_from(["asserted", "secondary", "verified"]))
def test_removing_several_facts_never_turns_fail_or_unknown_into_pass(case, data, floor: str) -> None:
    pipes, route = case
    candidates = removable(pipes, route)
    picks = data.draw(st.lists(st.tuples(st.sampled_from(candidates), st.sampled_from(MODES)), min_size=2, max_size=10))
    check_removal(pipes, route, picks, floor)


def test_the_generator_produces_every_verdict() -> None:
    """The random pipes are not all unknown: they exercise passes and fails of each check."""
    seen: dict[str, set[str]] = {}
    seals: set[int | None] = set()
    for seed in range(400):
        pipes, route = generate(seed)
        for c in analyse(pipes, routes=[route]).routes[route].criteria:
            seen.setdefault(c.id, set()).add(c.verdict)
            if c.id == "csf-sov-4-q4":
                seals.add(c.seal)
    decided = {cid for cid, verdicts in seen.items() if "pass" in verdicts and verdicts & {"fail", "partial"}}
    # ai-act-19 needs the provider role, which the generator never declares; CSF SOV-4 Q4
    # tops out at SEAL-3 (clearances are not in the schema), so it is partial at best.
    assert set(seen) - decided <= {"ai-act-19", "csf-sov-4-q4"}, {cid: seen[cid] for cid in set(seen) - decided}
    assert {1, 3} <= seals
