"""The scanner's one-regex phone validity agrees with phonenumbers.is_valid_number.

`souverain.privacy.phones.valid` re-reads phonenumbers' metadata instead of calling its
validator (which was the scanner's costliest call). This checks the two answers are the
same, number by number: each EU/EEA region's example numbers of every type, those
numbers with their last digits changed, their length changed, and random digit strings
of every length a region allows, for the calling codes shared by several regions too
(+1, +7, +44, +47, +262, +590).
"""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import PhoneMetadata, PhoneNumber, PhoneNumberType

# The validator's own map from a number type to its descriptor: every type it knows is sampled.
from phonenumbers.phonenumberutil import _number_desc_by_type

from souverain.privacy import phones

REGIONS = (
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK "
    "GB CH NO IS LI MC AD SM VA GG JE IM US CA RU KZ RE YT GP BL MF SJ"
).split()


def reference(code: int, nsn: str) -> bool:
    n = PhoneNumber(country_code=code, national_number=int(nsn))
    if nsn.startswith("0"):
        n.italian_leading_zero = True
        zeros = len(nsn) - len(nsn.lstrip("0"))
        if zeros > 1:
            n.number_of_leading_zeros = zeros
    return phonenumbers.is_valid_number(n)


def candidates(region: str, rng: random.Random) -> list[str]:
    md = PhoneMetadata.metadata_for_region(region)
    out = []
    for kind in PhoneNumberType.values():
        desc = _number_desc_by_type(md, kind)
        if desc is None or not desc.example_number:
            continue
        ex = desc.example_number
        out.append(ex)
        for _ in range(20):
            k = rng.randrange(1, min(4, len(ex)) + 1)
            out.append(ex[:-k] + "".join(rng.choice("0123456789") for _ in range(k)))
        out += [ex[:-1], ex + rng.choice("0123456789"), "0" + ex, ex[1:]]
    for length in md.general_desc.possible_length or range(6, 13):
        for _ in range(60):
            out.append(rng.choice("123456789") + "".join(rng.choice("0123456789") for _ in range(length - 1)))
    return [c for c in out if c and c.isdigit()]


@pytest.mark.parametrize("region", REGIONS)
def test_agrees_with_phonenumbers(region: str) -> None:
    rng = random.Random(region)
    code = PhoneMetadata.metadata_for_region(region).country_code
    numbers = candidates(region, rng)
    disagree = [n for n in numbers if phones.valid(code, n) != reference(code, n)]
    assert not disagree, f"{region}: {disagree[:5]}"
    # the sample holds valid and invalid numbers alike, so the check can fail both ways
    assert any(reference(code, n) for n in numbers) and not all(reference(code, n) for n in numbers)
