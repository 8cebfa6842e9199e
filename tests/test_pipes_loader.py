"""Loading pipes: the catalogue, user overrides fact by fact, and errors that name file:line:key."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from souverain.errors import ConfigError
from souverain.sovereignty import analyse, load_pipes, parse_pipes
from souverain.sovereignty.facts import Lookup
from souverain.sovereignty.loader import catalogue_sources, templates_as_routes
from souverain.sovereignty.rules import load_rules
from souverain.sovereignty.schema import CONFIDENCE_RANK

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "pipes" / "pipes.yaml"

MINIMAL = """\
entities:
  self: {name: Org, incorporated_in: FR}
hops:
  gw:
    role: api_gateway
    operator: self
    runs_on: null
    subprocessors: []
    data_classes: [prompt, completion]
    location: {processing_countries: [FR], non_eu_fallback: false}
    data_state: {in_use: plaintext, at_rest: {stored: false}}
    access: {admin_access_from: [FR], support_access_from: []}
    telemetry: []
routes:
  r: {hops: [gw]}
"""


def error_of(text: str, catalogue: bool = False) -> str:
    with pytest.raises(ConfigError) as err:
        parse_pipes(text, "p.yaml", catalogue=catalogue)
    return str(err.value)


def test_minimal_file_without_catalogue_is_in_house() -> None:
    pipes = parse_pipes(MINIMAL, catalogue=False)
    profile = analyse(pipes).profile("r")
    assert profile.level_name == "in_house"
    assert profile.residency.processing.countries == ("FR",)


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            MINIMAL.replace("[FR], non_eu_fallback", "[UK], non_eu_fallback"),
            "p.yaml:10: hops.gw.location.processing_countries: 'UK' is not an ISO",
        ),
        (MINIMAL.replace("role: api_gateway", "role: gateway"), "p.yaml:5: hops.gw.role: Invalid enum value 'gateway'"),
        (
            MINIMAL.replace("    telemetry: []", "    telemetry: []\n    colour: red"),
            "p.yaml:14: hops.gw.colour: unknown key",
        ),
        (MINIMAL.replace("operator: self", "operator: acme"), "p.yaml:6: hops.gw.operator: no entity 'acme'"),
        (MINIMAL.replace("runs_on: null", "runs_on: rack"), "p.yaml:7: hops.gw.runs_on: no hop 'rack'"),
        (MINIMAL.replace("  r: {hops: [gw]}", "  r: {hops: [gw, nope]}"), "p.yaml:15: routes.r.hops[1]: no hop 'nope'"),
        (
            MINIMAL.replace("  r: {hops: [gw]}", "  r: {template: nope}"),
            "p.yaml:15: routes.r.template: no template 'nope'",
        ),
        (
            MINIMAL.replace("incorporated_in: FR}", "incorporated_in: FR, ids: {lei: 969500EXAMPLEBANK038}}"),
            "p.yaml:2: entities.self.ids.lei: '969500EXAMPLEBANK038' is not a valid LEI",
        ),
        (
            MINIMAL.replace("name: Org,", "name: Org, incorporated_in: {value: FR, evidence: [ev-x]},").replace(
                ", incorporated_in: FR}", "}"
            ),
            "p.yaml:2: entities.self.incorporated_in: no evidence 'ev-x'",
        ),
        (
            MINIMAL.replace("entities:", "version: 2\nentities:"),
            "p.yaml:1: version: unsupported pipes schema version 2",
        ),
        (
            MINIMAL + "requirements: {criteria: [snc-99]}\n",
            "p.yaml:16: requirements.criteria[0]: no criterion 'snc-99'",
        ),
        ("hops:\n  x: {operator: self}\nentities: {self: {}}\n", "p.yaml:2: hops.x: missing required key `role`"),
        ("hops:\n  Bad Id: {role: compute}\n", "p.yaml:2: hops[Bad Id]: Expected `str` matching regex"),
        ("routes: [1, 2]\n", "p.yaml:1: routes: Expected `object`, got `array`"),
    ],
)
def test_errors_name_file_line_and_key(text: str, expected: str) -> None:
    assert error_of(text).startswith(expected), error_of(text)


def test_cycles_are_refused() -> None:
    text = MINIMAL.replace("runs_on: null", "runs_on: rack") + (
        "  rack: {role: compute, operator: self, runs_on: gw}\n".replace("  rack", "hops2")
    )
    text = MINIMAL.replace("runs_on: null", "runs_on: rack").replace(
        "routes:", "  rack: {role: compute, operator: self, runs_on: gw}\nroutes:"
    )
    assert "cycle: gw → rack → gw" in error_of(text) or "cycle: rack → gw → rack" in error_of(text)


def test_yaml_errors_and_duplicates_point_at_the_line() -> None:
    assert error_of("hops:\n  a: [\n").startswith("p.yaml:3: not valid YAML")
    assert error_of("hops: {}\nhops: {}\n").startswith("p.yaml:2: hops: duplicate key")


def test_catalogue_loads_and_every_fact_has_a_source_or_says_unverified() -> None:
    pipes = load_pipes(None)
    assert len(pipes.templates) >= 13
    for kind, table in (("entity", pipes.entities), ("hop", pipes.hops)):
        for oid, facts in table.items():
            for path, fact in facts.items():
                sourced = bool(fact.evidence) or fact.confidence == "unverified" or not fact.known
                assert sourced, f"{kind} {oid} {path} has neither evidence nor an unverified mark"
                for ev in fact.evidence:
                    assert pipes.evidence[ev].retrieved and pipes.evidence[ev].source


def test_catalogue_ids_do_not_collide_across_files() -> None:
    texts = catalogue_sources()
    doubled = [*texts, ("catalogue/zz-dup.yaml", "hops:\n  aws/bedrock-eu-central-1: {role: compute}\n")]
    from souverain.sovereignty.loader import build

    with pytest.raises(
        ConfigError,
        match=r"catalogue/zz-dup.yaml:2: hops\[aws/bedrock-eu-central-1\]: also defined in catalogue/aws.yaml",
    ):
        build(doubled, load_rules())


def test_user_overrides_one_fact_and_keeps_the_rest() -> None:
    text = (
        "evidence:\n  ev-dpa: {source: 'contract DPA-2026-03', retrieved: '2026-03-01', kind: contract, confidence: verified}\n"
        "hops:\n  mistral/la-plateforme:\n"
        "    location: {non_eu_fallback: {value: false, evidence: [ev-dpa]}}\n"
    )
    pipes = parse_pipes(text)
    facts = pipes.hops["mistral/la-plateforme"]
    assert facts["location.non_eu_fallback"].value is False
    assert facts["location.non_eu_fallback"].evidence == ("ev-dpa",)
    assert facts["location.non_eu_fallback"].origin == "pipes.yaml"
    assert facts["data_state.at_rest.retention_days"].value == 30  # untouched catalogue fact
    assert facts["data_state.at_rest.retention_days"].origin == "catalogue/mistral.yaml"


def test_unverified_and_low_confidence_facts_are_unknown() -> None:
    pipes = load_pipes(None)
    lookup = Lookup(pipes.entities, pipes.hops, "asserted")
    ref = lookup.get("entity", "mistral-ai-sas", "foreign_presence.subsidiaries_in")
    assert ref.state == "unverified" and not ref.usable and ref.value == ["US", "GB"]
    strict = Lookup(pipes.entities, pipes.hops, "verified")
    assert lookup.get("entity", "microsoft-ireland", "dora_ctpp").usable  # secondary source
    assert strict.get("entity", "microsoft-ireland", "dora_ctpp").state == "low_confidence"
    assert lookup.get("hop", "azure/foundry-datazone-eu", "no.such.path").state == "missing"
    assert CONFIDENCE_RANK["unverified"] < CONFIDENCE_RANK["asserted"]


def test_a_stricter_minimum_confidence_never_raises_a_level() -> None:
    pipes = load_pipes(EXAMPLE)
    loose, strict = analyse(pipes), analyse(pipes, min_confidence="verified")
    for name in pipes.routes:
        assert strict.profile(name).level <= loose.profile(name).level
    assert strict.profile("c-azure-eu").level_name == "none"  # the CTPP list and parent chain are secondary sources


def test_route_template_merges_hops_and_purpose() -> None:
    pipes = load_pipes(EXAMPLE)
    route = pipes.routes["c-azure-eu"]
    assert route.hops == ["bank/gateway", "bank/ledger", "azure/foundry-datazone-eu"]
    assert route.purpose.function_id == "F7" and route.title.startswith("(c)")


def test_templates_as_routes_reports_on_the_catalogue() -> None:
    pipes = templates_as_routes(load_pipes(None))
    analysis = analyse(pipes)
    assert set(analysis.routes) == set(pipes.templates)
    assert analysis.profile("azure-foundry-mistral-global").residency.processing.in_eea == "no"


def test_rules_are_data_with_citations() -> None:
    rules = load_rules()
    for law in ("us-cloud-act", "us-fisa-702", "ca-production-order", "gdpr-ch5"):
        assert rules.laws[law].cite
    assert "18 U.S.C. § 2713" in rules.laws["us-cloud-act"].cite
    assert rules.criteria["snc-19.6-b"].params == {"zone": "EU", "max_individual_pct": 24, "max_collective_pct": 39}
    assert {"eu_region", "eu_subsidiary"} <= set(rules.laws["us-cloud-act"].mitigations_that_do_not)
    from souverain.sovereignty.checks import PROVIDER_CHECKS
    from souverain.sovereignty.route_checks import ROUTE_CHECKS

    for cid, crit in rules.criteria.items():
        table = PROVIDER_CHECKS if crit.applies == "providers" else ROUTE_CHECKS
        assert crit.check in table, cid
        assert crit.framework in rules.frameworks
    assert msgspec.json.encode(rules.criteria)  # plain data


def test_example_file_loads() -> None:
    pipes = load_pipes(EXAMPLE)
    assert list(pipes.routes) == ["a-onprem", "b-mistral-direct", "c-azure-eu", "d-bedrock-fra", "e-ovh-snc"]
