"""Shortcuts taken for speed give what the plain way gives (property tests)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from souverain.privacy import Scanner, ScannerConfig, keywords, patterns
from souverain.privacy.doc import Doc, digit_anchored
from souverain.privacy.numbers import _NUM

ALPHABET = st.sampled_from(list("0123456789 .-/_()+aZxé٣４\u200b\n") + ["DE", "PESEL ", "12 34"])


@given(st.lists(ALPHABET, max_size=40).map("".join))
@settings(max_examples=400, deadline=None)
def test_digit_anchored_search_is_finditer(text: str) -> None:
    doc = Doc.of(text)
    assert [m.span() for m in digit_anchored(_NUM, doc)] == [m.span() for m in _NUM.finditer(text)]


@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=60))
@settings(max_examples=400, deadline=None)
def test_ascii_fold_is_the_general_fold(text: str) -> None:
    assert keywords.fold(text) == text.lower().translate(keywords._FOLD)


WORDS = ["BIC", "bank", "IBAN", "swift", "COBADEFFXXX", "DEUTDEFF", "BNPAFRPPXXX", "CUSTOMER", "DEUTDEFF500",
         "the", "account", "is", "at", "and", "XDEUTDEFF", "RABONL2U", "ING", ".", ",", "\n"]


def test_bic_search_near_bank_words_finds_what_a_whole_text_search_finds() -> None:
    """Above the confidence a BIC without a bank word has, only the windows around bank
    words are searched: the same BICs must come out as from the whole text."""
    rng = random.Random(5)
    checked = 0
    for _ in range(3000):
        text = " ".join(rng.choice(WORDS) + rng.choice(["", " " * rng.randint(1, 40)]) for _ in range(rng.randint(1, 25)))
        windowed = list(patterns.bic_hits(Doc.of(text, min_confidence=0.5)))
        whole = [h for h in patterns.bic_hits(Doc.of(text, min_confidence=0.0)) if h.confidence >= 0.5]
        assert [h for h in windowed if h.confidence >= 0.5] == whole, text
        checked += bool(whole)
    assert checked > 300  # the sample holds BICs with a bank word near them


def test_a_bic_without_a_bank_word_still_counts_under_a_low_threshold() -> None:
    text = "Bank details follow. " + "x" * 120 + " DEUTDEFF500"
    assert [f.type for f in Scanner(ScannerConfig(threshold=0.4)).scan(text)] == ["BIC"]
    assert Scanner(ScannerConfig(threshold=0.5)).scan(text) == []
