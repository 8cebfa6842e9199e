"""Routes a security architect would try, one kind per issue section: key custody read
from the facts, data flows that leave through telemetry or logs, levels that follow who
controls the infrastructure, and residual reach said as residual.

Each route states its facts in full (no catalogue), so the expected verdicts follow from
the legal reasoning in the comments and from nothing else.
"""

from __future__ import annotations

import msgspec
import pytest

from souverain.errors import ConfigError
from souverain.sovereignty import Level, analyse, parse_pipes
from souverain.sovereignty.dora import register
from souverain.sovereignty.report import to_markdown

EU_SEAT = "hq: {registered_office: DE, central_administration: DE, principal_establishment: DE}"
NO_NON_EU = "non_eu_shareholding: {max_individual_pct: 0, collective_pct: 0, veto_rights: false, appoints_board_majority: false}"
ENTITIES = f"""\
entities:
  self: {{name: Bank, incorporated_in: FR}}
  us-parent: {{name: US Cloud Inc, incorporated_in: US, parent_chain: [], service_class: [ECS, RCS]}}
  cloud-eu:
    name: US Cloud Ireland
    incorporated_in: IE
    hq: {{registered_office: IE, central_administration: IE, principal_establishment: IE}}
    parent_chain: [us-parent]
    service_class: [RCS]
    non_eu_shareholding: {{max_individual_pct: 100, collective_pct: 100, veto_rights: true, appoints_board_majority: true}}
    foreign_presence: {{subsidiaries_in: [US], offices_in: [US], targets_customers_in: [US]}}
  eu-host:
    name: EU Host
    incorporated_in: DE
    {EU_SEAT}
    parent_chain: []
    service_class: [RCS]
    {NO_NON_EU}
    foreign_presence: {{subsidiaries_in: [], offices_in: [], targets_customers_in: []}}
  eu-host-abroad:
    name: EU Host with a US subsidiary
    incorporated_in: DE
    {EU_SEAT}
    parent_chain: []
    service_class: [RCS]
    {NO_NON_EU}
    foreign_presence: {{subsidiaries_in: [US], offices_in: [], targets_customers_in: []}}
  logco: {{name: LogCo Inc, incorporated_in: US, parent_chain: [], service_class: [RCS]}}
"""
EU_ACCESS = "access: {admin_access_from: [DE], support_access_from: [DE], support_staff_citizenship: [DE], support_operations_documented: true}"
CONTRACT = "contract: {reference: C-1, governing_law: DE, dpa_art28: true, location_change_notice: true, control_change_notice_days: 90, transfer_mechanisms: []}"


def hop(
    name: str,
    role: str,
    operator: str,
    *,
    runs_on: str = "null",
    classes: str = "",
    state: str,
    keys: str = "",
    where: str = "[DE]",
    access: str = EU_ACCESS,
    telemetry: str = "[]",
    subprocessors: str = "[]",
) -> str:
    lines = [
        f"  {name}:",
        f"    role: {role}",
        f"    operator: {operator}",
        f"    runs_on: {runs_on}",
        f"    subprocessors: {subprocessors}",
        f"    data_state: {state}",
        f"    location: {{processing_countries: {where}, storage_countries: {where}, non_eu_fallback: false}}",
        f"    {access}",
        f"    {CONTRACT}",
        f"    telemetry: {telemetry}",
    ]
    lines += [f"    data_classes: {classes}"] if classes else []
    lines += [f"    keys: {keys}"] if keys else []
    return "\n".join(lines) + "\n"


OWN_ACCESS = "access: {admin_access_from: [FR], support_access_from: []}"


def pipes(*hops: str, routes: str, telemetry: str = "[]") -> str:
    """The bank's own gateway (whose flows are `telemetry`), then the given hops."""
    gateway = hop(
        "gw",
        "api_gateway",
        "self",
        classes="[prompt, completion]",
        state="{in_use: plaintext, at_rest: {stored: false}}",
        where="[FR]",
        access=OWN_ACCESS,
        telemetry=telemetry,
    )
    return ENTITIES + "hops:\n" + gateway + "".join(hops) + "routes:\n" + routes


def analysed(text: str):
    return analyse(parse_pipes(text, catalogue=False))


def law(route, law_id: str) -> dict[str, str]:
    """hop -> status under one law, as the profile states it."""
    reach = next((x for x in route.profile.laws if x.law == law_id), None)
    return {h.hop: h.status for h in reach.hops} if reach else {}


# ---- 1. key custody follows where the key material lives -----------------------------------

PLAINTEXT_STORED = "{in_use: plaintext, at_rest: {stored: true, retention_days: 30, encryption: %s}}"


def custody_route(encryption: str, keys: str) -> str:
    return pipes(
        hop("api", "model_inference", "eu-host", state=PLAINTEXT_STORED % encryption, keys=keys),
        routes="  r: {hops: [gw, api]}\n",
    )


def test_customer_managed_key_in_the_providers_kms_fails_external_key_management() -> None:
    # C3A SOV-3-02 asks for keys created, managed and stored outside the provider. A
    # customer-managed key inside the provider's own KMS is stored (and usable) there, so it
    # fails, however the custodian is labelled; the CSF calls that key control "shared".
    r = analysed(custody_route("cmk_in_provider_kms", "{custodian: self, provider_can_decrypt: true}")).routes["r"]
    crit = {c.id: c for c in r.criteria}
    assert crit["c3a-sov-3-02"].verdict == "fail"
    assert crit["csf-sov-3-q1"].seal == 2
    assert any("key material with the provider" in x for x in crit["c3a-sov-3-02"].reasons)


def test_key_in_an_external_kms_passes_but_the_provider_still_reads_plaintext() -> None:
    # An external KMS keeps the key material outside the provider (SOV-3-02 passes); the
    # provider still sees the prompts in memory, so the CSF caps key control at "customer
    # primary, provider can read" (SEAL-3).
    r = analysed(custody_route("external_kms_byok", "{custodian: self, provider_can_decrypt: true}")).routes["r"]
    crit = {c.id: c for c in r.criteria}
    assert crit["c3a-sov-3-02"].verdict == "pass" and crit["csf-sov-3-q1"].seal == 3


def test_a_custodian_label_alone_passes_nothing() -> None:
    # Only the label says where the key is: where the key material lives is unknown.
    r = analysed(custody_route("unknown", "{custodian: self}")).routes["r"]
    assert r.profile.verdicts["c3a-sov-3-02"] == "unknown"


@pytest.mark.parametrize(
    "encryption, keys, named",
    [
        # HYOK and client-side encryption mean the provider never holds a usable key.
        ("hyok", "{custodian: self, provider_can_decrypt: true}", ("encryption", "provider_can_decrypt")),
        ("client_side", "{custodian: self, provider_can_decrypt: true}", ("encryption", "provider_can_decrypt")),
        # A key in the provider's KMS (or no encryption at all) is one the provider can use.
        (
            "cmk_in_provider_kms",
            "{custodian: self, provider_can_decrypt: false}",
            ("encryption", "provider_can_decrypt"),
        ),
        ("none", "{custodian: self, provider_can_decrypt: false}", ("encryption", "provider_can_decrypt")),
        # A provider-managed key is held by the provider, not by the bank.
        ("provider_managed", "{custodian: self, provider_can_decrypt: true}", ("encryption", "custodian")),
        # Key material outside the provider cannot be in the custody of the provider itself.
        ("external_kms_byok", "{custodian: eu-host, provider_can_decrypt: true}", ("encryption", "custodian")),
        # A provider that holds the key can use it.
        ("unknown", "{custodian: eu-host, provider_can_decrypt: false}", ("custodian", "provider_can_decrypt")),
    ],
)
def test_contradictory_custody_is_an_error_naming_both_facts(
    encryption: str, keys: str, named: tuple[str, str]
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_pipes(custody_route(encryption, keys), "p.yaml", catalogue=False)
    message = str(err.value)
    assert message.startswith("p.yaml:") and "contradicts" in message
    assert all(f".{name}" in message for name in named), message


def test_a_contradiction_across_the_catalogue_and_the_file_names_both_files() -> None:
    # The catalogue says Microsoft holds the Azure keys; a bank that writes "hyok" on top
    # contradicts it, and both places are named.
    text = "hops:\n  azure/foundry-datazone-eu:\n    data_state: {at_rest: {encryption: hyok}}\n"
    with pytest.raises(ConfigError) as err:
        parse_pipes(text, "bank.yaml")
    assert "bank.yaml:" in str(err.value) and "catalogue/azure.yaml:" in str(err.value)


# ---- 2. data flows make their recipients parties of the route -------------------------------

EU_API = hop(
    "api",
    "model_inference",
    "eu-host",
    state="{in_use: plaintext, at_rest: {stored: false}}",
    keys="{custodian: eu-host, provider_can_decrypt: true}",
)


def flow_route(flow: str) -> str:
    return pipes(
        EU_API, routes="  r: {hops: [gw, api], purpose: {personal_data: true}, regimes: {dora: true}}\n", telemetry=flow
    )


def test_error_reports_with_prompts_to_a_us_company_are_a_us_reach_and_a_transfer() -> None:
    # LogCo is a US company offering a remote computing service and receives the prompts in
    # clear: the CLOUD Act reaches it (18 U.S.C. § 2713), and sending personal data to the
    # US is a transfer that needs a basis (GDPR Art. 44-49). Data processed in the US: level 0.
    flow = "[{name: error reports, enabled: true, destination: logco, countries: [US], content: content}]"
    a = analysed(flow_route(flow))
    r, p = a.routes["r"], a.routes["r"].profile
    assert law(r, "us-cloud-act") == {"gw#0": "established"}
    node = next(n for n in r.nodes if n.hop == "gw#0")
    assert node.via == "flow" and node.operator == "logco" and set(node.data_classes or ()) == {"prompt", "completion"}
    transfer = next(e for e in r.exposures if e.law == "gdpr-ch5" and e.hop == "gw#0")
    assert transfer.destinations == ("US",) and p.verdicts["gdpr-ch5"] != "pass"
    assert "US" in p.residency.processing.countries and p.level == Level.NONE and p.non_eu_access == "yes"
    answers = {x.question: " ".join(x.answers) for x in r.answers}
    assert "LogCo" in answers["Which subprocessors?"] and "LogCo" in answers["Where are logs stored?"]
    rows = register(a, parse_pipes(flow_route(flow), catalogue=False), "its-2024-2956").rows
    assert any(row["legal_name"] == "LogCo Inc" or "logco" in row["provider_id"] for row in rows["b_05.01"])
    assert "Nothing leaves the EEA" not in to_markdown(a, parse_pipes(flow_route(flow), catalogue=False))


def test_metadata_is_enough_for_a_reach() -> None:
    # § 2713 covers "any record or other information pertaining to a customer": request
    # metadata sent to a US company is within its possession, custody or control.
    flow = "[{name: usage metrics, enabled: true, destination: logco, countries: [US], content: metadata}]"
    r = analysed(flow_route(flow)).routes["r"]
    exposure = next(e for e in r.exposures if e.law == "us-cloud-act" and e.hop == "gw#0")
    assert exposure.status == "established" and exposure.data_classes == ("metadata_logs",)


def test_a_flow_that_may_be_on_is_a_possible_party() -> None:
    # Not known to be off: the recipient is walked like a hop only an unverified fact claims.
    flow = "[{name: usage metrics, enabled: unknown, destination: logco, countries: [US], content: metadata}]"
    p = analysed(flow_route(flow)).profile("r")
    assert p.level == Level.NONE and p.non_eu_access == "unknown"
    off = analysed(flow_route(flow.replace("enabled: unknown", "enabled: false"))).profile("r")
    assert off.level > p.level and not any(x.law == "us-cloud-act" for x in off.laws)


def test_unstated_flows_leave_the_graph_incomplete() -> None:
    # A provider hop that says nothing of its flows may send the prompts to a party nobody
    # named: the route cannot be judged complete, and stating `[]` closes that gap.
    unstated = flow_route("[]").replace("    telemetry: []\n", "", 2)  # the gateway's and the API's
    r = analysed(unstated).routes["r"]
    assert any("telemetry" in g for g in r.gaps) and r.profile.level == Level.NONE
    assert analysed(flow_route("[]")).profile("r").level > Level.NONE


def test_a_flow_to_a_declared_hop_is_analysed_with_that_hops_facts() -> None:
    # The logs go to an EU company with no non-EU presence, declared as a hop: nothing
    # non-EU reaches them and the route can be sovereign (a third party sees plaintext, so
    # not in-house). The same logs copied to LogCo in the US bring the CLOUD Act back.
    logs = hop(
        "eu-logs",
        "logging_sink",
        "eu-host",
        state="{in_use: plaintext, at_rest: {stored: true, retention_days: 30, encryption: external_kms_byok}}",
        keys="{custodian: self, provider_can_decrypt: true}",
    )

    def text(flows: str) -> str:
        return pipes(EU_API, logs, routes="  r: {hops: [gw, api]}\n", telemetry=flows)

    eu_only = analysed(text("[{name: logs, enabled: true, to: eu-logs, content: content}]")).routes["r"]
    assert eu_only.profile.level == Level.SOVEREIGN, eu_only.profile.blocked_by
    assert next(n for n in eu_only.nodes if n.hop == "eu-logs").via == "flow"
    both = "[{name: logs, enabled: true, to: eu-logs, content: content}, {name: copy, enabled: true, destination: logco, countries: [US], content: content}]"
    assert analysed(text(both)).profile("r").level == Level.NONE


# ---- 3. levels follow who controls the infrastructure ----------------------------------------

VLLM = hop(
    "vllm",
    "model_inference",
    "self",
    runs_on="cvm",
    classes="[prompt, completion]",
    state="{in_use: plaintext, at_rest: {stored: false}}",
    keys="{custodian: self}",
    access=OWN_ACCESS,
)


def cvm(operator: str) -> str:
    # A confidential VM: attested memory encryption, disks under the bank's HSM key.
    return hop(
        "cvm",
        "compute",
        operator,
        state="{in_use: tee_attested, at_rest: {stored: true, retention_days: 0, encryption: hyok}}",
        keys="{custodian: self, hsm_country: FR, provider_can_decrypt: false}",
    )


@pytest.mark.parametrize(
    "operator, level, seal",
    [
        # The EU subsidiary of a US parent: the TEE and the bank's keys remove the access
        # prong (no reach), not the parent's control: SecNumCloud 19.6 b) and C3A SOV-1-03
        # fail, the CSF caps SOV-2 at SEAL-1 ("EU subsidiary"), so the route stays at 2.
        ("cloud-eu", Level.EU_CONTROLLED, 1),
        # An EU host with a US subsidiary: contested jurisdiction over the host (R v OVH);
        # the CSF's SOV-2 cap is 2, so not sovereign either.
        ("eu-host-abroad", Level.EU_CONTROLLED, 2),
        # An EU host with no non-EU presence and no non-EU holders: nothing contradicts
        # level 4, since no third party can reach plaintext.
        ("eu-host", Level.IN_HOUSE, 4),
    ],
)
def test_running_inference_yourself_does_not_erase_the_hosts_control(operator: str, level: Level, seal: int) -> None:
    r = analysed(pipes(VLLM, cvm(operator), routes="  r: {hops: [gw, vllm]}\n")).routes["r"]
    assert r.profile.level == level, r.profile.blocked_by
    assert r.profile.non_eu_access == "no"  # the access prong is removed in every case
    assert next(c for c in r.criteria if c.id == "csf-sov-2-q2").seal == seal
    if level < Level.SOVEREIGN:
        assert any("SOV" in b or "19.6" in b for b in r.profile.blocked_by), r.profile.blocked_by


def test_a_host_that_says_it_carries_nothing_is_still_judged() -> None:
    # The data sits in the host's machines, encrypted or not: SecNumCloud and C3A judge
    # the infrastructure provider (research notes § 8 (a), (e)), whatever its hop claims.
    host = cvm("cloud-eu").replace("    data_state:", "    data_classes: []\n    data_state:", 1)
    r = analysed(pipes(VLLM, host, routes="  r: {hops: [gw, vllm]}\n")).routes["r"]
    assert r.profile.level == Level.EU_CONTROLLED and r.profile.verdicts["snc-19.6-b"] == "fail"


# ---- 4. residual is said as residual, hop by hop ---------------------------------------------

MIXED = pipes(
    hop(
        "front",
        "api_gateway",
        "cloud-eu",
        subprocessors="[back]",
        state="{in_use: plaintext, at_rest: {stored: false}}",
        keys="{custodian: cloud-eu, provider_can_decrypt: true}",
    ),
    hop(
        "back",
        "model_inference",
        "eu-host-abroad",
        state="{in_use: plaintext, at_rest: {stored: false}}",
        keys="{custodian: eu-host-abroad, provider_can_decrypt: true}",
    ),
    routes="  r: {hops: [gw, front]}\n  eu: {hops: [gw, back]}\n",
)


def test_each_hop_keeps_its_own_status_under_one_law() -> None:
    # The US parent reaches `front` directly (established); `back` is reached only through
    # its operator's US subsidiary (residual, contested). The route is "yes", but `back` is
    # never presented as established.
    a = analysed(MIXED)
    r = a.routes["r"]
    assert law(r, "us-cloud-act") == {"front": "established", "back": "residual"}
    assert r.profile.non_eu_access == "yes"
    row = next(
        line for line in to_markdown(a, parse_pipes(MIXED, catalogue=False)).splitlines() if line.startswith("| back")
    )
    assert "residual" in row and "established" not in row
    governs = next(x for x in r.answers if x.question == "Which law governs each provider?").answers
    assert any("EU Host with a US subsidiary" in x and "(residual)" in x and "(established)" not in x for x in governs)


def test_a_residual_route_says_residual_with_its_reason() -> None:
    p = analysed(MIXED).profile("eu")
    assert p.non_eu_access == "residual"
    assert "subsidiary" in p.non_eu_access_reason and "contested" in p.non_eu_access_reason
    decoded = msgspec.json.decode(msgspec.json.encode(p))
    assert decoded["non_eu_access"] == "residual"
