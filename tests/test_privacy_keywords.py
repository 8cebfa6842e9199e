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


# -- context windows: sentence ends found once per text ------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from souverain.privacy.context import bounds  # noqa: E402
from souverain.privacy.doc import sentence_cuts  # noqa: E402


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab1 .!?;\n\tÉ", max_size=60), st.data())
def test_bounds_from_precomputed_cuts_equal_the_windowed_search(text: str, data: st.DataObject) -> None:
    """A Doc finds the sentence ends once; every context window read from them must be
    the one the regex finds inside the window itself (a line break inside a longer
    match, cut by the window, included)."""
    cuts = sentence_cuts(text)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    before, after = data.draw(st.sampled_from([(48, 24), (5, 3), (0, 0), (64, 24), (2, 9)]))
    assert bounds(text, start, end, before, after, cuts) == bounds(text, start, end, before, after)


def test_bounds_stop_at_the_sentence_end_and_at_a_line_break() -> None:
    text = "Mon BSN est 111222333. Commande 123456782 livrée.\nSuite"
    cuts = sentence_cuts(text)
    first = text.index("111")
    a, b = bounds(text, first, first + 9, cuts=cuts)
    assert (a, text[a:b]) == (0, "Mon BSN est 111222333.")
    second = text.index("1234")
    a, b = bounds(text, second, second + 9, cuts=cuts)
    assert text[a:b] == "Commande 123456782 livrée."
    text = "Tel 0612345678\nBSN volgt"
    a, b = bounds(text, 4, 14, cuts=sentence_cuts(text))
    assert text[a:b] == "Tel 0612345678\n"
