"""The one keyword automaton (souverain/privacy/keywords.py) and the context it gives."""

from __future__ import annotations

import pytest

from souverain.privacy import scan
from souverain.privacy.keywords import ANYWHERE, PREFIX, WHOLE, Keywords, fold


def test_fold_keeps_length_and_drops_diacritics() -> None:
    for text in ["Sécurité sociale", "Numéro d’identité: 12", "ŁÓDŹ straße", "İstanbul", "x\u200by"]:
        assert len(fold(text)) == len(text)
    assert fold("Sécurité-Sociale") == "securite sociale"
    assert fold("ZAMÓWIENIE nr.") == "zamowienie nr "


def kw() -> Keywords:
    k = Keywords()
    k.add(["nir"], "W")  # 3 characters: a whole word
    k.add(["pesel"], "P")  # 5: starts a word
    k.add(["versicherungsnummer"], "A")  # 19: anywhere
    k.add(["diabet"], "H", PREFIX)
    k.add(["at"], "X", WHOLE)
    k.add(["registre national"], "R")
    return k


@pytest.mark.parametrize(("text", "labels"), [
    ("NIR: 1", {"W"}), ("le nir", {"W"}), ("nirvana", set()), ("manir", set()),
    ("PESEL 4405", {"P"}), ("Peselnummer", {"P"}), ("xpesel", set()),
    ("Sozialversicherungsnummer", {"A"}), ("Diabète de type 2", {"H"}), ("prediabetes", set()),
    ("look at this", {"X"}), ("cat", set()), ("REGISTRE\u00a0NATIONAL", {"R"}), ("Registre-national", {"R"}),
])
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


def test_late_registration_is_an_error() -> None:
    k = kw()
    k.find("x")
    with pytest.raises(RuntimeError):
        k.add(["late"], "L")
    assert ANYWHERE != PREFIX


@pytest.mark.parametrize(("text", "found"), [
    ("For reference: 850101-1234", True),  # an idiom: "for your information"
    ("For future reference, my number is 850101-1234.", True),
    ("Reference: 850101-1234", False),  # names a reference number
    ("Ref. 850101-1234", False),
    ("Order no. 850101-1234", False),
    ("For reference, order no. 850101-1234", False),  # the order word still counts
])
def test_negative_words_inside_idioms_do_not_count(text: str, found: bool) -> None:
    assert any(f.type == "BG_EGN" for f in scan(text)) is found


@pytest.mark.parametrize(("text", "found"), [
    ("Spectacle passion. Votre commande n° d2006f1b-7d3a", False),  # "passi" inside "passion"
    ("Passi: P1234567", True),
    ("Mein Ausweis: L01X00T47", True),
    ("Ausweisnummer L01X00T47", True),
])
def test_document_words_are_whole_words(text: str, found: bool) -> None:
    assert any(f.type in ("PASSPORT", "ID_CARD") for f in scan(text)) is found
