"""The one keyword automaton (souverain/privacy/keywords.py) and the context it gives."""

from __future__ import annotations

import pytest

from souverain.privacy import context, detectors, health, names, patterns, scan
from souverain.privacy.keywords import PREFIX, WHOLE, KeywordList, Keywords, fold


def test_fold_keeps_length_and_drops_diacritics() -> None:
    for text in ["Sécurité sociale", "Numéro d’identité: 12", "ŁÓDŹ straße", "İstanbul", "x\u200by"]:
        assert len(fold(text)) == len(text)
    assert fold("Sécurité-Sociale") == "securite sociale"
    assert fold("ZAMÓWIENIE nr.") == "zamowienie nr "


def kw() -> Keywords:
    return Keywords(
        [
            KeywordList(["nir"], "W"),  # 3 characters: a whole word
            KeywordList(["pesel"], "P"),  # 5: starts a word
            KeywordList(["versicherungsnummer"], "A"),  # 19: anywhere
            KeywordList(["diabet"], "H", PREFIX),
            KeywordList(["at"], "X", WHOLE),
            KeywordList(["registre national"], "R"),
        ]
    )


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("NIR: 1", {"W"}),
        ("le nir", {"W"}),
        ("nirvana", set()),
        ("manir", set()),
        ("PESEL 4405", {"P"}),
        ("Peselnummer", {"P"}),
        ("xpesel", set()),
        ("Sozialversicherungsnummer", {"A"}),
        ("Diabète de type 2", {"H"}),
        ("prediabetes", set()),
        ("look at this", {"X"}),
        ("cat", set()),
        ("REGISTRE\u00a0NATIONAL", {"R"}),
        ("Registre-national", {"R"}),
    ],
)
def test_boundary_rules(text: str, labels: set[str]) -> None:
    assert set(kw().find(text).labels) == labels


def test_positions_are_text_offsets() -> None:
    text = "Mon numéro PESEL: 44051401359, NIR à jour"
    found = kw().find(text)
    spans = {text[s:e] for s, e, _ in found.hits}
    assert spans == {"PESEL", "NIR"}
    assert found.between(0, 20) == frozenset({"P"})
    assert found.between(20, len(text)) == frozenset({"W"})
    assert found.between(12, 16) == frozenset()  # a keyword cut by the window does not count


def test_the_scanners_automaton_is_built_from_every_declared_list() -> None:
    """Nothing registers into a shared automaton at import time: the detector modules
    declare their lists, and detectors.KEYWORDS is built from exactly those."""
    declared = [*context.KEYWORD_LISTS, *health.KEYWORD_LISTS, *names.KEYWORD_LISTS, *patterns.KEYWORD_LISTS]
    assert {
        "PASSPORT",
        "GENERIC",
        "NEGATIVE",
        "IDIOM",
        "PHONE",
        "HEALTH",
        "ICD",
        "NAME_TRIGGER",
        "BIC",
        "EMAIL_OBF",
        "DOB",
    } <= {lst.label for lst in declared}
    assert sorted(detectors.KEYWORDS.keys) == sorted(Keywords(declared).keys)
    for lst in declared:
        word = next(iter(lst.words), None)
        if word is not None and word.strip():
            assert lst.label in detectors.KEYWORDS.find(f"x {word} x").labels, (lst.label, word)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("For reference: 850101-1234", True),  # an idiom: "for your information"
        ("For future reference, my number is 850101-1234.", True),
        ("Reference: 850101-1234", False),  # names a reference number
        ("Ref. 850101-1234", False),
        ("Order no. 850101-1234", False),
        ("For reference, order no. 850101-1234", False),  # the order word still counts
    ],
)
def test_negative_words_inside_idioms_do_not_count(text: str, found: bool) -> None:
    assert any(f.type == "BG_EGN" for f in scan(text)) is found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Spectacle passion. Votre commande n° d2006f1b-7d3a", False),  # "passi" inside "passion"
        ("Passi: P1234567", True),
        ("Mein Ausweis: L01X00T47", True),
        ("Ausweisnummer L01X00T47", True),
    ],
)
def test_document_words_are_whole_words(text: str, found: bool) -> None:
    assert any(f.type in ("PASSPORT", "ID_CARD") for f in scan(text)) is found
