"""Per request: does a request with personal data reach `personal`, and does business text
without any stay below it? The product's rules (docs/privacy.md, "What counts"), and a
fixed-seed slice of the benchmark's corpora (bench/privacy/requests.py)."""

from __future__ import annotations

import random

import pytest

from bench.privacy import business, identifiers
from souverain.privacy import TYPES, DataClass, ScannerConfig, classify, ids, scan
from souverain.privacy.config import SettingError


def data_class(text: str) -> DataClass:
    return classify(scan(text)).data_class


def types(text: str) -> set[str]:
    return {f.type for f in scan(text)}


# -- Estonian and Lithuanian personal codes: one scheme ---------------------------------
@pytest.mark.parametrize("template", ["Minu isikukood on {}.", "Mano asmens kodas {}.", "Here it is: {}."])
def test_estonian_and_lithuanian_codes_are_one_type(template: str) -> None:
    assert types(template.format("48907160641")) == {"EE_LT_ID"}
    assert types(template.format("34202130980")) == {"EE_LT_ID"}


def test_ee_lt_type_replaces_the_two_national_ones() -> None:
    assert "EE_LT_ID" in TYPES and "EE_LT_ID" in ids.TYPES
    assert "EE_IK" not in TYPES and "LT_AK" not in TYPES
    # a tenant setting that still names one is refused, not silently ignored
    with pytest.raises(SettingError, match="EE_IK"):
        ScannerConfig.from_mapping({"thresholds": {"EE_IK": 0.8}}, ".")
    ScannerConfig.from_mapping({"thresholds": {"EE_LT_ID": 0.8}}, ".")


# -- a bare number that passes an identifier's check digit is personal data -------------
WITH_CHECK_DIGIT = [sc.type for sc in ids.SCHEMES if sc.base == ids.WEAK]


@pytest.mark.parametrize("type_", WITH_CHECK_DIGIT)
def test_bare_valid_identifier_makes_the_request_personal(type_: str) -> None:
    rng = random.Random(type_)
    for _ in range(5):
        compact, _written = identifiers.generate(type_, rng)
        text = f"Hello, please update the record before Friday.\nHere it is: {compact}\nThanks, the team"
        assert data_class(text) == DataClass.PERSONAL, compact
        # and the same number with its check digit wrong is not
        miss = identifiers.near_miss(type_, compact, rng)
        if miss is not None and miss.isdigit():
            assert data_class(text.replace(compact, miss)) == DataClass.PUBLIC, miss


def test_weak_checks_are_at_the_default_threshold_and_date_only_ones_under_it() -> None:
    assert ids.WEAK == ScannerConfig().threshold
    assert set(WITH_CHECK_DIGIT) == {"AT_SVNR", "CZ_RC", "HR_OIB", "NL_BSN", "PT_NIF"}
    assert {sc.type for sc in ids.SCHEMES if sc.base == ids.DATE_ONLY} == {"CZ_RC", "DK_CPR"}  # CZ: nine digits
    assert ids.DATE_ONLY < ScannerConfig().threshold


# -- business text: each case with its control (the same number alone is found) ---------
AT_SVNR_A, AT_SVNR_B, BSN = "5051686260", "6353989544", "209494177"
EAN_PASSING_LUHN, SSCC_PASSING_LUHN = "4022453832362", "340110561670113917"


def test_controls_fire_alone() -> None:
    assert types(f"Here it is: {AT_SVNR_A}.") == {"AT_SVNR"}
    assert types(f"Here it is: {BSN}.") == {"NL_BSN"}


NEGATIVES = {
    "serial range": f"Serial numbers from {AT_SVNR_A} to {AT_SVNR_B}, batch 2510-656.",
    "csv column": f"order_id;order_date;qty\n100234;2025-01-02;4\n{BSN};2025-01-03;7\n{AT_SVNR_A};2025-01-04;1",
    "pipe table": f"Pos | Article | EAN | Qty\n1 | 100234 | {EAN_PASSING_LUHN} | 20",
    "list": f"export const FIXTURE_ORDER_IDS = [209342510, 135913515, 177405929, 160230121, {BSN}];",
    "purchase order": f"Your PO: {AT_SVNR_A}\nDelivery note: {AT_SVNR_B}",
    "quantity": "We processed 209,494,177 events per day with a p99 latency of 45 ms.",
    "iso time": "2025-11-01 09:48:37.627 INFO [shipping] Slow query /healthz in 2384 ms",
    "date": "Projekt P-2025-703 liegt im Plan: Meilenstein M7 am 08.08.2025 erreicht.",
    "sscc": f"Pallet SSCC {SSCC_PASSING_LUHN}, 20 cartons",
    "firm": "Manufacturer: Van Dijk Logistiek B.V.\nModel: HL-5765",
    "negation": "Le contrat ne sera pas renouvelé après le 12/03/2025.",
    "code letters": "2025-06-07,S235,NE-5046-226,771,23194.53",
}


@pytest.mark.parametrize("name", NEGATIVES)
def test_business_text_stays_below_personal(name: str) -> None:
    assert data_class(NEGATIVES[name]) < DataClass.PERSONAL, scan(NEGATIVES[name])


@pytest.mark.parametrize("number", ["2221 0000 0000 0009", "2240 1110 0054 2226", "2720 9999 9999 9996"])
def test_mastercard_two_series_from_2221_to_2720(number: str) -> None:
    from stdnum import luhn

    assert luhn.is_valid(number.replace(" ", ""))
    assert types(f"Bezahlt mit der Karte {number}.") == {"CARD"}


def test_born_with_its_accent_is_still_a_birth_word() -> None:
    assert types("Je suis né le 12/03/1980 à Lyon.") == {"DATE_OF_BIRTH"}
    assert types("Née le 3 mai 1975.") == {"DATE_OF_BIRTH"}


def test_table_header_labels_only_its_own_column() -> None:
    # the BSN sits under "note", not under "order_id": it still counts
    text = f"order_id;note\n100234;x\n200345;{BSN}"
    assert types(text) == {"NL_BSN"}


def test_naming_word_beats_the_quantity_layout() -> None:
    assert types("Mijn BSN is 209.494.177.") == {"NL_BSN"}


def test_a_range_bound_is_not_an_identifier() -> None:
    # 123456782 passes the BSN check: compared with "=" it may be a person, as a bound of
    # a range it is a key or a quantity.
    assert types("SELECT * FROM customers c WHERE c.id = 123456782") == {"NL_BSN"}
    assert types("SELECT * FROM customers c WHERE c.id > 123456782") == set()
    assert types("WHERE amount = 123456782") == {"NL_BSN"}
    assert types("WHERE amount <= 123456782") == set()
    assert types("<td>123456782</td>") == {"NL_BSN"}  # an HTML tag's ">" is no comparison


# -- a fixed-seed slice of the benchmark's corpora --------------------------------------
def test_negative_slice_meets_the_false_positive_target() -> None:
    # Every kind of business text (invoices, shipping notices, logs, code, SQL, CSV,
    # product sheets, reports): ≤ 3% classed personal.
    docs = business.negatives(320, seed=11)
    fp = sum(data_class(d.text) >= DataClass.PERSONAL for d in docs)
    assert fp / len(docs) <= 0.03, fp


def test_positive_slice_meets_the_recall_target() -> None:
    from bench.privacy.requests import positives

    reqs = positives(200, seed=11)
    missed = [r.values for r in reqs if data_class(r.text) < DataClass.PERSONAL]
    assert len(missed) / len(reqs) <= 0.01, missed
