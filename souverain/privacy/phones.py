"""Telephone-number validity from phonenumbers' own metadata, in one regex call.

`phonenumbers.is_valid_number` answers from the metadata (libphonenumber's per-region
number patterns), but walks it in Python: a region lookup, then up to eleven pattern
descriptions one after the other: the single most costly call of the scanner
(bench/HISTORY.md). `valid(code, nsn)` gives the same answer from the same metadata:
for each region of a calling code, the type descriptions (fixed line, mobile, toll free,
premium, shared cost, VoIP, personal, pager, UAN, voicemail) that allow a number of that
length are joined into one compiled pattern, built on first use and kept.

The rules followed are phonenumbers' (`_number_type_helper`, `_is_number_matching_desc`,
`_region_code_for_number_from_list`): a number is valid when it matches the region's
general description and one type description, each with its possible lengths; when a
calling code is shared by several regions, the first region whose leading-digits pattern
matches decides, else the first region where the number has a type.
`tests/test_privacy_phones.py` checks the two agree on many numbers per EU region.
"""

from __future__ import annotations

import re
from functools import cache

import phonenumbers
from phonenumbers import PhoneMetadata

_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


class _Region:
    __slots__ = ("leading", "general_lengths", "general", "_by_length", "_md")

    def __init__(self, md: PhoneMetadata) -> None:
        self._md = md
        self.leading = re.compile(md.leading_digits) if md.leading_digits else None
        g = md.general_desc
        self.general_lengths = frozenset(g.possible_length or ()) if g is not None else frozenset()
        self.general = re.compile(g.national_number_pattern) if g is not None and g.national_number_pattern else None
        self._by_length: dict[int, re.Pattern[str] | None] = {}

    def _pattern(self, length: int) -> re.Pattern[str] | None:
        if length not in self._by_length:
            alts = []
            for name in _TYPES:
                desc = getattr(self._md, name)
                if desc is None or desc.national_number_pattern is None:
                    continue
                if desc.possible_length and length not in desc.possible_length:
                    continue
                alts.append(f"(?:{desc.national_number_pattern})")
            self._by_length[length] = re.compile("|".join(alts)) if alts else None
        return self._by_length[length]

    def has_type(self, nsn: str) -> bool:
        if self.general is None:
            return False
        if self.general_lengths and len(nsn) not in self.general_lengths:
            return False
        if self.general.fullmatch(nsn) is None:
            return False
        pattern = self._pattern(len(nsn))
        return pattern is not None and pattern.fullmatch(nsn) is not None


@cache
def _regions(code: int) -> tuple[_Region, ...]:
    out = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ()):
        md = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
        if md is not None:
            out.append(_Region(md))
    return tuple(out)


def valid(code: int, nsn: str) -> bool:
    """Whether +`code` `nsn` (the national significant number, leading zeros kept as
    written) is a valid number: the answer of `phonenumbers.is_valid_number`."""
    regions = _regions(code)
    if len(regions) == 1:
        return regions[0].has_type(nsn)
    for r in regions:
        if r.leading is not None:
            if r.leading.match(nsn):
                return r.has_type(nsn)
        elif r.has_type(nsn):
            return True
    return False
