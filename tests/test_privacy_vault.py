"""Requests: every string scanned with its location; pseudonymise and restore, streaming too."""

from __future__ import annotations

import json
import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from souverain.chat import ChatRequest
from souverain.privacy import DataClass, Vault, classify, pseudonymise, scan, scan_request
from souverain.privacy.vault import Restorer

IBAN = "FR76 3000 6000 0112 3456 7890 189"


def request(**extra) -> ChatRequest:
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "You are a bank assistant."},
            {"role": "user", "content": f"Je suis Marie Dupont, IBAN {IBAN}, mail marie@example.fr"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {
                            "name": "pay",
                            "arguments": json.dumps(
                                {
                                    "iban": "FR7630006000011234567890189",
                                    "beneficiary": {"name": "Marie Dupont"},
                                    "bsn": "395297709",
                                    "amount": 12,
                                }
                            ),
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "Rappelez-moi au 06 12 34 56 78, Marie Dupont"}]},
        ],
        **extra,
    }
    return msgspec.convert(body, ChatRequest)


def test_scan_request_reports_where_each_finding_is() -> None:
    found = {(f.location, f.type, f.value) for f in scan_request(request())}
    assert found == {
        ("messages[1].content", "PERSON", "Marie Dupont"),
        ("messages[1].content", "IBAN", IBAN),
        ("messages[1].content", "EMAIL", "marie@example.fr"),
        ("messages[2].tool_calls[0].function.arguments.iban", "IBAN", "FR7630006000011234567890189"),
        ("messages[2].tool_calls[0].function.arguments.beneficiary.name", "PERSON", "Marie Dupont"),
        # a weak 11-test number, found because its JSON key says what it is
        ("messages[2].tool_calls[0].function.arguments.bsn", "NL_BSN", "395297709"),
        ("messages[4].content[0].text", "PHONE", "06 12 34 56 78"),
        ("messages[4].content[0].text", "PERSON", "Marie Dupont"),
    }
    for f in scan_request(request()):
        assert f.path[0] == "messages" and isinstance(f.path[1], int)


def test_dict_arguments_and_tools_and_name_are_scanned() -> None:
    req = msgspec.convert(
        {
            "model": "m",
            "messages": [
                {"role": "user", "name": "x", "content": "hi"},
                {
                    "role": "assistant",
                    "tool_calls": [{"function": {"name": "f", "arguments": {"phone": "+33 6 12 34 56 78"}}}],
                },
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "lookup", "description": "Look up customers like hans@example.de"},
                }
            ],
            "user": "marie.dupont@example.fr",
        },
        ChatRequest,
    )
    found = {(f.location, f.type) for f in scan_request(req)}
    assert ("messages[1].tool_calls[0].function.arguments.phone", "PHONE") in found
    assert ("tools[0].function.description", "EMAIL") in found
    assert ("user", "EMAIL") in found


def test_media_parts_are_left_alone() -> None:
    body = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Who is on this photo? Call +33 6 12 34 56 78."},
                    {"type": "image_url", "image_url": {"url": "https://cdn.example.com/u/0612345678/p.jpg"}},
                ],
            }
        ],
    }
    assert [f.location for f in scan_request(body)] == ["messages[0].content[0].text"]
    new, _ = pseudonymise(body)
    assert new["messages"][0]["content"][1] == body["messages"][0]["content"][1]


def test_classification_has_types_and_counts_never_values() -> None:
    findings = scan_request(request())
    c = classify(findings)
    assert c.data_class == DataClass.PERSONAL
    assert c.counts == {"PERSON": 3, "IBAN": 2, "EMAIL": 1, "NL_BSN": 1, "PHONE": 1}
    assert "Marie" not in json.dumps(c.to_dict())
    assert c.to_dict()["data_class"] == "personal"


def test_special_needs_health_and_a_person() -> None:
    assert classify(scan("Diabetes is on the rise in Europe.")).data_class == DataClass.PUBLIC
    assert classify(scan("Marie Dupont a du diabète.")).data_class == DataClass.SPECIAL
    assert classify(scan("BIC: COBADEFFXXX")).data_class == DataClass.CONFIDENTIAL
    assert classify([]).data_class == DataClass.PUBLIC


def test_pseudonymise_is_consistent_and_reversible() -> None:
    req = request()
    new, vault = pseudonymise(req)
    assert isinstance(new, ChatRequest)
    user = new.messages[1].content
    assert user == "Je suis [PERSON_1], IBAN [IBAN_1], mail [EMAIL_1]"
    # Same value, same placeholder, across messages and inside tool arguments (which stay JSON).
    args = json.loads(new.messages[2].tool_calls[0].function.arguments)
    assert args == {"iban": "[IBAN_1]", "beneficiary": {"name": "[PERSON_1]"}, "bsn": "[NL_BSN_1]", "amount": 12}
    assert new.messages[4].content == [{"type": "text", "text": "Rappelez-moi au [PHONE_1], [PERSON_1]"}]
    # Nothing personal is left in what would be sent.
    sent = msgspec.json.encode(new).decode()
    for secret in ("Marie", "Dupont", "3000 6000", "FR76300060", "marie@", "395297709", "06 12 34"):
        assert secret not in sent
    assert scan_request(new) == []
    # The original request is untouched, and the answer is restored.
    assert req.messages[1].content.startswith("Je suis Marie Dupont")
    answer = "Bonjour [PERSON_1], le virement vers [IBAN_1] est prêt; je vous appelle au [PHONE_1]."
    assert (
        vault.restore(answer)
        == f"Bonjour Marie Dupont, le virement vers {IBAN} est prêt; je vous appelle au 06 12 34 56 78."
    )
    assert "Marie" not in repr(vault)


def test_placeholders_already_in_the_request_are_not_reused() -> None:
    req = msgspec.convert(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "Template: Dear [PERSON_1]. Now write to Hans Müller."}],
        },
        ChatRequest,
    )
    new, vault = pseudonymise(req)
    assert new.messages[0].content == "Template: Dear [PERSON_1]. Now write to [PERSON_2]."
    assert vault.restore("[PERSON_1] and [PERSON_2]") == "[PERSON_1] and Hans Müller"


def test_pseudonymise_a_plain_dict_body() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "BSN: 395297709"}]}
    new, vault = pseudonymise(body)
    assert new["messages"][0]["content"] == "BSN: [NL_BSN_1]"
    assert body["messages"][0]["content"] == "BSN: 395297709"


def test_canonical_forms_share_a_placeholder() -> None:
    v = Vault()
    assert v.placeholder("IBAN", "DE89 3704 0044 0532 0130 00") == v.placeholder("IBAN", "de89370400440532013000")
    assert v.placeholder("PERSON", "Marie  Dupont") == v.placeholder("PERSON", "marie dupont")
    assert v.placeholder("PERSON", "Jean Martin") == "[PERSON_2]"


# -- streaming restore ------------------------------------------------------------------
def _vault() -> Vault:
    v = Vault()
    v.placeholder("PERSON", "Marie Dupont")
    v.placeholder("IBAN", IBAN)
    v.placeholder("FR_NIR", "1 52 01 74 417 776 79")
    return v


ANSWER = "[PERSON_1], votre IBAN [IBAN_1] et NIR [FR_NIR_1]. [PERSON_1]"
RESTORED = f"Marie Dupont, votre IBAN {IBAN} et NIR 1 52 01 74 417 776 79. Marie Dupont"


def _stream(v: Vault, chunks: list[str]) -> str:
    r = v.restorer()
    out = [r.feed(c) for c in chunks]
    return "".join(out) + r.flush()


def test_restore_at_every_single_split_point() -> None:
    v = _vault()
    for i in range(len(ANSWER) + 1):
        assert _stream(v, [ANSWER[:i], ANSWER[i:]]) == RESTORED, i


def test_restore_at_every_pair_of_split_points() -> None:
    v = _vault()
    text = "a [IBAN_1] b"
    want = f"a {IBAN} b"
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            assert _stream(v, [text[:i], text[i:j], text[j:]]) == want, (i, j)


def test_restore_one_character_at_a_time() -> None:
    assert _stream(_vault(), list(ANSWER)) == RESTORED


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(ANSWER)), max_size=8))
def test_restore_any_chunking(cuts: list[int]) -> None:
    cuts = sorted(set(cuts))
    chunks = [ANSWER[a:b] for a, b in zip([0, *cuts], [*cuts, len(ANSWER)], strict=True)]
    assert _stream(_vault(), chunks) == RESTORED


def test_holds_back_only_what_could_be_a_placeholder() -> None:
    r = _vault().restorer()
    assert r.feed("Total [x] and [") == "Total [x] and "
    assert r.feed("IB") == ""
    assert r.feed("AN_9] ok [P") == "[IBAN_9] ok "  # unknown placeholder: left as it is
    assert r.feed("aris]") == "[Paris]"  # not a prefix of any placeholder: released at once
    assert r.feed("[PERSON_") == ""
    assert r.flush() == "[PERSON_"  # the stream ended: what was held is emitted as is


def test_restore_json_escapes_for_streamed_tool_arguments() -> None:
    v = Vault()
    v.placeholder("PERSON", 'Jean "JJ" Martin')
    chunks = ['{"name": "[PERS', 'ON_1]"}']
    r = Restorer(v, json_escape=True)
    out = "".join(r.feed(c) for c in chunks) + r.flush()
    assert json.loads(out) == {"name": 'Jean "JJ" Martin'}


def test_restore_stream_helpers() -> None:
    v = _vault()
    rng = random.Random(3)
    cuts = sorted(rng.sample(range(1, len(ANSWER)), 10))
    chunks = [ANSWER[a:b] for a, b in zip([0, *cuts], [*cuts, len(ANSWER)], strict=True)]
    assert "".join(v.restore_stream(chunks)) == RESTORED
    assert v.restore_json({"a": ["[PERSON_1]", 3], "[IBAN_1]": None}) == {"a": ["Marie Dupont", 3], IBAN: None}


@pytest.mark.parametrize("text", ["", "no placeholders here", "[", "[]", "[PERSON_1"])
def test_restore_passes_other_text_through(text: str) -> None:
    assert _vault().restore(text) == text


PIECES = [
    "Marie Dupont",
    "IBAN DE89 3704 0044 0532 0130 00",
    "marie@example.fr",
    "Tel. +49 30 12345678",
    "BSN 395297709",
    "le 12 mars",
    "[PERSON_1]",
    "[x]",
    "Bonjour",
    "et",
    "42",
    "Herr Müller",
    ", ",
    "\n",
]


@settings(max_examples=120, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(PIECES), max_size=8).map(" ".join), min_size=1, max_size=4),
    st.integers(min_value=1, max_value=7),
)
def test_pseudonymise_then_restore_gives_back_every_message(contents: list[str], step: int) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": c} for c in contents]}
    new, vault = pseudonymise(body)
    for old, msg in zip(contents, new["messages"], strict=True):
        sent = msg["content"]
        assert vault.restore(sent) == old
        # streamed back in chunks of `step` characters, too
        chunks = [sent[i : i + step] for i in range(0, len(sent), step)]
        assert "".join(vault.restore_stream(chunks)) == old
