"""Properties about the parties of a route: flow recipients and key custody.

3. Adding a non-EU recipient of a data flow anywhere on a route (on any hop the route
   reaches, whatever the flow carries) never raises its level, never makes non-EU access
   look better, and the recipient is always a party of the route.
4. A custody declaration whose facts contradict each other is always refused by the
   loader, naming both facts, and a consistent one never is. The contradictions are the
   table below, written from the meaning of each encryption mode (docs/pipes.md), not
   from the code.
"""

from __future__ import annotations

import dataclasses

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_pipes_properties import ACCESS_RANK, SETTINGS, any_route

from souverain.errors import ConfigError
from souverain.sovereignty import analyse
from souverain.sovereignty.facts import Fact, flatten
from souverain.sovereignty.flows import RECIPIENT_SEPARATOR, add_recipients
from souverain.sovereignty.loader import Pipes, build
from souverain.sovereignty.rules import load_rules
from souverain.sovereignty.schema import Entity, TelemetryFlow

# ---- property 3: a non-EU flow recipient never raises the level ------------------------------

flow_spec = st.fixed_dictionaries(
    {
        "content": st.sampled_from(["content", "metadata", "unknown"]),
        "enabled": st.sampled_from([True, "unknown"]),
        "countries": st.sampled_from([["US"], ["US", "FR"], ["IN"], "unknown"]),
        "incorporated_in": st.sampled_from(["US", "CA", "IE"]),  # IE: the EU subsidiary of a US parent
    }
)


def add_recipient(pipes: Pipes, route: str, spec: dict, anchor: int) -> tuple[Pipes, str]:
    entities = dict(pipes.entities)
    hops = {h: dict(f) for h, f in pipes.hops.items()}
    entities["prop-flow-parent"] = flatten(
        msgspec.convert({"incorporated_in": "US", "parent_chain": []}, Entity), {}, "prop"
    )
    chain = ["prop-flow-parent"] if spec["incorporated_in"] == "IE" else []
    raw = {"incorporated_in": spec["incorporated_in"], "parent_chain": chain, "service_class": ["RCS"]}
    entities["prop-flow-to"] = flatten(msgspec.convert(raw, Entity), {}, "prop")
    # Any declared hop the route reaches (a generated recipient cannot be given facts).
    reached = [n.hop for n in analyse(pipes, routes=[route]).routes[route].nodes if RECIPIENT_SEPARATOR not in n.hop]
    sender = reached[anchor % len(reached)]
    old = hops[sender].get("telemetry")
    flows = list(old.value) if old is not None and isinstance(old.value, list) else []
    flow = TelemetryFlow(
        name="prop flow",
        enabled=spec["enabled"],
        destination="prop-flow-to",
        countries=spec["countries"],
        content=spec["content"],
    )
    # Appended to what the hop already says; a hop that said nothing now says this one flow.
    known = old is not None and old.known
    hops[sender]["telemetry"] = Fact(
        [*flows, flow], True, old.confidence if known else "asserted", old.evidence if known else ()
    )
    titles, roles = dict(pipes.hop_titles), dict(pipes.hop_roles)
    add_recipients(hops, titles, roles)  # as the loader does after merging
    recipient = f"{sender}#{len(flows)}"
    return dataclasses.replace(pipes, entities=entities, hops=hops, hop_titles=titles, hop_roles=roles), recipient


@settings(SETTINGS, max_examples=80)
@given(case=any_route, spec=flow_spec, anchor=st.integers(min_value=0, max_value=50))
def test_adding_a_non_eu_flow_recipient_never_raises_the_level(case, spec: dict, anchor: int) -> None:
    pipes, route = case
    before = analyse(pipes, routes=[route]).routes[route]
    grown, recipient = add_recipient(pipes, route, spec, anchor)
    after = analyse(grown, routes=[route]).routes[route]
    assert after.profile.level <= before.profile.level, (route, spec, after.profile.blocked_by)
    assert ACCESS_RANK[after.profile.non_eu_access] >= ACCESS_RANK[before.profile.non_eu_access], (route, spec)
    sender = next(n for n in after.nodes if n.hop == recipient.rsplit("#", 1)[0])
    if sender.data_classes != ():
        # From a hop that may carry data the recipient is a party: walked, and named by the
        # laws' analysis (a hop that carries nothing sends nothing of the route).
        assert recipient in {n.hop for n in after.nodes}
        assert any(e.hop == recipient for e in after.exposures)


# ---- property 4: contradictory custody is always an error ------------------------------------

IN_PROVIDER, NEVER_USED, OUTSIDE = (
    {"none", "provider_managed", "cmk_in_provider_kms"},
    {"hyok", "client_side"},
    {"external_kms_byok", "hyok", "client_side"},
)
CUSTODIANS = {"self": "outside", "other": "outside", "host": "group", "host-parent": "group"}


def contradictory(encryption: str | None, can_decrypt: bool | None, custodian: str | None) -> bool:
    group = CUSTODIANS.get(custodian or "") == "group"
    outside = CUSTODIANS.get(custodian or "") == "outside"
    return (
        (encryption in IN_PROVIDER and can_decrypt is False)  # a key the provider holds is one it can use
        or (encryption in NEVER_USED and can_decrypt is True)  # HYOK / client-side: never usable by the provider
        or (encryption in OUTSIDE and group)  # key material outside, yet the provider is custodian
        or (encryption == "provider_managed" and outside)  # provider-managed, yet someone else holds it
        or (can_decrypt is False and group)  # the provider holds the key but cannot use it
    )


BASE = """\
entities:
  self: {incorporated_in: FR}
  host-parent: {incorporated_in: US, parent_chain: []}
  host: {incorporated_in: IE, parent_chain: [host-parent]}
  other: {incorporated_in: DE, parent_chain: []}
hops:
  api: {role: model_inference, operator: host}
"""


def stated(value: object, confidence: str | None) -> str:
    shown = "unknown" if value is None else str(value).lower()
    return f"{{value: {shown}, confidence: {confidence}}}" if confidence else shown


custody = st.fixed_dictionaries(
    {
        "encryption": st.sampled_from([None, *sorted(IN_PROVIDER | OUTSIDE)]),
        "can_decrypt": st.sampled_from([None, True, False]),
        "custodian": st.sampled_from([None, *CUSTODIANS]),
        "split": st.booleans(),  # the keys stated in the user's file, the encryption in the base file
        "confidence": st.sampled_from([None, "verified", "unverified"]),
    }
)


@SETTINGS
@given(spec=custody)
def test_a_contradictory_custody_declaration_is_always_an_error(spec: dict) -> None:
    c = spec["confidence"]
    encryption = f"    data_state: {{at_rest: {{encryption: {stated(spec['encryption'], c)}}}}}\n"
    keys = f"    keys: {{custodian: {stated(spec['custodian'], c)}, provider_can_decrypt: {stated(spec['can_decrypt'], c)}}}\n"
    if spec["split"]:
        texts = [("base.yaml", BASE + "  api:\n" + encryption), ("user.yaml", "hops:\n  api:\n" + keys)]
    else:
        texts = [("user.yaml", BASE + "  api:\n" + encryption + keys)]
    texts[0] = (
        texts[0][0],
        texts[0][1].replace(
            "  api: {role: model_inference, operator: host}\n  api:\n",
            "  api:\n    role: model_inference\n    operator: host\n",
        ),
    )
    expected = contradictory(spec["encryption"], spec["can_decrypt"], spec["custodian"])
    if not expected:
        build(texts, load_rules())
        return
    with pytest.raises(ConfigError) as err:
        build(texts, load_rules())
    message = str(err.value)
    assert "contradicts" in message and message.count("hops.api.") >= 2, message
    if spec["split"] and "encryption" in message:  # one fact from each file: both are named
        assert "base.yaml:" in message and "user.yaml:" in message, message
