"""Shortcuts taken for speed give what the plain way gives (property tests)."""

from __future__ import annotations

import random
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from souverain.privacy import Scanner, ScannerConfig, context, keywords, patterns
from souverain.privacy.detectors import KEYWORDS
from souverain.privacy.doc import Doc, digit_anchored
from souverain.privacy.normalise import normalise, runs_above
from souverain.privacy.numbers import _NUM

ALPHABET = st.sampled_from(list("0123456789 .-/_()+aZxé٣４\u200b\n") + ["DE", "PESEL ", "12 34"])


@given(st.lists(ALPHABET, max_size=40).map("".join))
@settings(max_examples=400, deadline=None)
def test_digit_anchored_search_is_finditer(text: str) -> None:
    doc = Doc.of(text, keywords=KEYWORDS)
    assert [m.span() for m in digit_anchored(_NUM, doc)] == [m.span() for m in _NUM.finditer(text)]


@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=60))
@settings(max_examples=400, deadline=None)
def test_ascii_fold_is_the_general_fold(text: str) -> None:
    assert keywords.fold(text) == text.lower().translate(keywords._FOLD)


WORDS = [
    "BIC",
    "bank",
    "IBAN",
    "swift",
    "COBADEFFXXX",
    "DEUTDEFF",
    "BNPAFRPPXXX",
    "CUSTOMER",
    "DEUTDEFF500",
    "the",
    "account",
    "is",
    "at",
    "and",
    "XDEUTDEFF",
    "RABONL2U",
    "ING",
    ".",
    ",",
    "\n",
]


def test_bic_search_near_bank_words_finds_what_a_whole_text_search_finds() -> None:
    """Above the confidence a BIC without a bank word has, only the windows around bank
    words are searched: the same BICs must come out as from the whole text."""
    rng = random.Random(5)
    checked = 0
    for _ in range(3000):
        text = " ".join(
            rng.choice(WORDS) + rng.choice(["", " " * rng.randint(1, 40)]) for _ in range(rng.randint(1, 25))
        )
        windowed = list(patterns.bic_hits(Doc.of(text, min_confidence=0.5, keywords=KEYWORDS)))
        whole = [
            h for h in patterns.bic_hits(Doc.of(text, min_confidence=0.0, keywords=KEYWORDS)) if h.confidence >= 0.5
        ]
        assert [h for h in windowed if h.confidence >= 0.5] == whole, text
        checked += bool(whole)
    assert checked > 300  # the sample holds BICs with a bank word near them


def test_a_bic_without_a_bank_word_still_counts_under_a_low_threshold() -> None:
    text = "Bank details follow. " + "x" * 120 + " DEUTDEFF500"
    assert [f.type for f in Scanner(ScannerConfig(threshold=0.4)).scan(text)] == ["BIC"]
    assert Scanner(ScannerConfig(threshold=0.5)).scan(text) == []


@given(
    st.text(alphabet=st.characters(max_codepoint=0x3100), max_size=60)
    | st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=60)
)
@settings(max_examples=600, deadline=None)
def test_fold_of_any_text_is_the_table_fold(text: str) -> None:
    """Latin-1 text goes through a byte table and wider text through two regex passes;
    both must give what the per-character table gives."""
    low = text.lower()
    if len(low) != len(text):
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    assert keywords.fold(text) == low.translate(keywords._FOLD)


def test_fold_of_text_with_many_runs_of_wider_characters() -> None:
    """Past a number of runs of characters wider than Latin-1 the whole text is folded
    by `re` at once; both ways give the table's fold."""
    rng = random.Random(5)
    words = ["Καλημέρα", "łódź", "Žluťoučký", "Привет,", "été", "ΑΘΗΝΑ", "x7", "İstanbul", "—", "ﬁn"]
    texts = [" ".join(rng.choice(words) for _ in range(n)) for n in (3, 60, 200)]
    texts += ["ł " * n + "Żółw, Ötzi" for n in (62, 63, 64, 65)]  # 64, 65, 66, 67 runs
    for text in texts:
        low = text.lower()
        if len(low) != len(text):
            low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
        assert keywords.fold(text) == low.translate(keywords._FOLD)


# (written, normalised): what each piece becomes; the map must send every normalised
# character back to the piece it came from.
PIECES = [
    ("a", "a"),
    ("7", "7"),
    (" ", " "),
    ("é", "é"),
    ("\u200b", ""),
    ("\u00ad", ""),
    ("４", "4"),
    ("٣", "3"),
    ("e\u0301", "é"),
    ("ﬁ", "fi"),
    ("\u00a0", " "),
    ("\u2013", "-"),
    ("ł", "ł"),
    ("Ａ", "A"),
]


@given(st.lists(st.sampled_from(PIECES), max_size=30))
@settings(max_examples=600, deadline=None)
def test_normalised_offsets_lead_back_to_the_piece_each_character_came_from(pieces: list[tuple[str, str]]) -> None:
    original = "".join(w for w, _ in pieces)
    n = normalise(original)
    expected_text, expected_spans, pos = [], [], 0
    for written, norm in pieces:
        for ch in norm:
            expected_text.append(ch)
            # a character copied as it is maps to itself; one that changed, to its piece
            expected_spans.append((pos, pos + 1) if written == norm else (pos, pos + len(written)))
        pos += len(written)
    assert n.text == "".join(expected_text)
    assert [n.span(i, i + 1) for i in range(len(n.text))] == expected_spans
    for i in range(len(n.text) + 1):  # an empty span sits where the next character starts
        assert n.span(i, i) == ((expected_spans[i][0],) * 2 if i < len(n.text) else (len(original),) * 2)


@given(st.text(max_size=40))
@settings(max_examples=400, deadline=None)
def test_digit_marks_have_one_byte_per_character(text: str) -> None:
    marks = Doc.of(text, keywords=KEYWORDS).marks
    assert len(marks) == len(text)
    assert [i for i, b in enumerate(marks) if b == 0x30] == [i for i, c in enumerate(text) if "0" <= c <= "9"]


# -- regexes rewritten so that `re` can skip ahead: the same matches as before ---------------
_IP_ALPHABET = "0123456789abcdefABCDEFxz:::..  _\n-"


@given(st.text(alphabet=_IP_ALPHABET, max_size=80))
@settings(max_examples=800, deadline=None)
def test_ipv6_tried_near_colons_finds_what_finditer_finds(text: str) -> None:
    expected = [m.span() for m in patterns._IPV6.finditer(text)]
    assert [m.span() for m in patterns._ipv6_matches(text)] == expected


def test_ipv6_near_colons_on_real_addresses() -> None:
    text = "ssh to 2001:db8::8a2e:370:7334, then fe80::1%eth0, or ::ffff:192.0.2.1 (v6: 1:2:3:4:5:6:7:8)."
    expected = [m.span() for m in patterns._IPV6.finditer(text)]
    assert len(expected) >= 4
    assert [m.span() for m in patterns._ipv6_matches(text)] == expected


_OLD_SENTENCE_END = re.compile(r"[.!?;]\s+(?=[^\W\d_])|\n")


@given(st.text(alphabet=".!?; \n\taB1é_-", max_size=60), st.integers(0, 60), st.integers(0, 60))
@settings(max_examples=800, deadline=None)
def test_sentence_end_matches_as_the_alternation_did(text: str, a: int, b: int) -> None:
    new = context._SENTENCE_END
    assert [m.span() for m in new.finditer(text, a, b)] == [m.span() for m in _OLD_SENTENCE_END.finditer(text, a, b)]
    old_cut, new_cut = _OLD_SENTENCE_END.search(text, a, b), new.search(text, a, b)
    assert (old_cut and old_cut.span()) == (new_cut and new_cut.span())


@given(st.text(alphabet=st.characters(max_codepoint=0x400), max_size=60))
@settings(max_examples=600, deadline=None)
def test_runs_above_are_the_maximal_runs(text: str) -> None:
    assert runs_above(text, 0x7F) == [m.span() for m in re.finditer(r"[^\x00-\x7f]+", text)]
    assert runs_above(text, 0xFF) == [m.span() for m in re.finditer(r"[^\x00-\xff]+", text)]


@given(st.text(alphabet=st.characters(max_codepoint=0x17F) | st.sampled_from("ßŉǰ"), max_size=60))
@settings(max_examples=600, deadline=None)
def test_upper_twin_keeps_offsets_and_upper_cases_ascii_only_when_upper_would_not(text: str) -> None:
    up = Doc.of(text, keywords=KEYWORDS).up
    assert len(up) == len(text)
    if len(text.upper()) == len(text):
        assert up == text.upper()
    else:  # "ß" -> "SS" would shift offsets: ASCII letters only
        assert up == "".join(c.upper() if "a" <= c <= "z" else c for c in text)


def test_upper_twin_of_german_and_polish_text_with_sharp_s() -> None:
    # Latin-1 text, then text wider than Latin-1 (the two ways Doc.of takes)
    assert Doc.of("Grüße aus der Hauptstraße 5", keywords=KEYWORDS).up == "GRüßE AUS DER HAUPTSTRAßE 5"
    assert Doc.of("Straße: Łódź, ul. Piotrkowska 12", keywords=KEYWORDS).up == "STRAßE: ŁóDź, UL. PIOTRKOWSKA 12"
