"""Normalisation: evasion variants are still found, and offsets point into the original."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from souverain.privacy import scan
from souverain.privacy.normalise import normalise

ZW = "\u200b"  # zero-width space
SHY = "\u00ad"  # soft hyphen
NBSP = "\u00a0"


def fullwidth(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


EVASIONS = [
    # (type, text containing the evasive spelling, the evasive spelling itself)
    ("IBAN", f"IBAN DE89{ZW}3704{ZW}0044{ZW}0532{ZW}0130{ZW}00 bitte", f"DE89{ZW}3704{ZW}0044{ZW}0532{ZW}0130{ZW}00"),
    ("IBAN", f"IBAN {fullwidth('DE89370400440532013000')} bitte", fullwidth("DE89370400440532013000")),
    (
        "IBAN",
        f"IBAN DE89{NBSP}3704{NBSP}0044{NBSP}0532{NBSP}0130{NBSP}00 bitte",
        f"DE89{NBSP}3704{NBSP}0044{NBSP}0532{NBSP}0130{NBSP}00",
    ),
    ("CARD", f"carte 4111{SHY}1111{SHY}1111{SHY}1111 merci", f"4111{SHY}1111{SHY}1111{SHY}1111"),
    ("CARD", "card 4111 1111\u20131111\u20141111 ok", "4111 1111\u20131111\u20141111"),  # en and em dashes
    ("CARD", "card 4-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1 ok", "4-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1"),
    (
        "PL_PESEL",
        "PESEL \u0668\u0664\u0660\u0662\u0662\u0664\u0668\u0664\u0661\u0668\u0661 .",
        "\u0668\u0664\u0660\u0662\u0662\u0664\u0668\u0664\u0661\u0668\u0661",
    ),  # Arabic-Indic digits
    ("PL_PESEL", f"PESEL {fullwidth('84022484181')} .", fullwidth("84022484181")),
    ("EMAIL", "mail: m\u0430rie.dupont@ex\u0430mple.fr", "m\u0430rie.dupont@ex\u0430mple.fr"),  # Cyrillic а
    ("EMAIL", f"mail: marie{ZW}.dupont@example{SHY}.fr", f"marie{ZW}.dupont@example{SHY}.fr"),
    ("EMAIL", f"mail: {fullwidth('marie@example.fr')}", fullwidth("marie@example.fr")),
    ("IT_CF", "codice fiscale V\u0421TVFR97L05\u0421860U", "V\u0421TVFR97L05\u0421860U"),  # Cyrillic С for C
    ("NL_BSN", f"BSN 395{ZW}297{ZW}709", f"395{ZW}297{ZW}709"),
    ("PHONE", f"Tel. +49{NBSP}30{NBSP}12345678", f"+49{NBSP}30{NBSP}12345678"),
    ("PERSON", f"je m'appelle Marie Dupon{ZW}t", f"Marie Dupon{ZW}t"),
]


@pytest.mark.parametrize(("type_", "text", "spelling"), EVASIONS)
def test_evasion_is_undone_and_offsets_cover_the_original(type_: str, text: str, spelling: str) -> None:
    hits = [f for f in scan(text) if f.type == type_]
    assert len(hits) == 1, scan(text)
    f = hits[0]
    assert text[f.start : f.end] == f.value == spelling


def test_plain_text_is_not_copied() -> None:
    n = normalise("plain ascii text 123")
    assert not n.changed and n.text == n.original
    n = normalise("déjà vu, Müller, Łódź")  # already NFKC, nothing suspicious
    assert not n.changed


def test_greek_and_cyrillic_prose_is_left_alone() -> None:
    for text in ("Ο ΑΜΚΑ μου είναι", "Моето ЕГН е"):
        assert normalise(text).text == text


def test_homoglyphs_in_a_mixed_word_are_mapped() -> None:
    assert normalise("p\u0430yp\u0430l").text == "paypal"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab1 -.\u200b\u00ad\uff11\u0430\u00a0\u2013\u0301é")), max_size=40))
def test_span_map_is_monotonic_and_in_bounds(text: str) -> None:
    n = normalise(text)
    assert len(n.text) <= len(text) * 3
    prev = 0
    for i in range(len(n.text)):
        start, end = n.span(i, i + 1)
        assert 0 <= start < end <= len(text)
        assert start >= prev
        prev = start


@settings(max_examples=150, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("DE89 3704 0044 0532 0130 00 Marie Dupont@x.fr+49\u200b\u00ad")), max_size=80)
)
def test_findings_are_ordered_disjoint_slices_of_the_input(text: str) -> None:
    findings = scan(text)
    end = 0
    for f in findings:
        assert f.start >= end
        assert text[f.start : f.end] == f.value
        end = f.end
