"""The detectors, in the order the scanner runs them (this module is their index).

Every detector reads a `Doc` (the normalised text, an upper-cased copy, and optional
outside context such as the JSON key of the value) and yields `Hit`s in normalised
offsets. Nothing fires on shape alone where a checksum or structure exists:

- number-like clusters (digits and capitals, joined by single separators ` .-/_`, so
  `4111 1111-1111.1111` is one cluster) are cut into windows of consecutive groups and
  each window is compacted and tried against: the national identifier schemes
  (`ids.py`), EU VAT numbers (stdnum.eu.vat), payment cards (issuer prefix and Luhn) and
  phone numbers (phonenumbers: valid, not merely possible);
- IBAN: country, registry length and BBAN format (SWIFT registry data shipped with
  python-stdnum), and ISO 7064 mod 97;
- BIC: structure and ISO country, and a context word (an all-caps word like CUSTOMER
  has a BIC's shape);
- e-mail: local part, one `@`, a dotted domain with an alphabetic TLD;
- IPv4/IPv6: `ipaddress` parses it; loopback, unspecified and multicast are dropped;
- dates of birth: a date (numeric, ISO or with a month name in 10 languages) with a
  birth word nearby; a date alone is not personal data;
- passports and identity cards: a 6 to 12 character code with digits right after a
  passport / ID-card word, plus the ICAO 9303 check digit when present; all-digit
  codes of 9 to 12 digits only right after the word and when no identifier check
  passes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from souverain.privacy import context, health, names, numbers, patterns
from souverain.privacy.doc import Doc, Hit
from souverain.privacy.keywords import Keywords

Detector = Callable[[Doc], Iterable[Hit]]

BUILTIN: tuple[tuple[str, Detector], ...] = (
    ("numbers", numbers.number_hits),  # national ids, IBAN, VAT, cards, phones, IPv4
    ("bic", patterns.bic_hits),
    ("email", patterns.email_hits),
    ("ip", patterns.ip_hits),
    ("dob", patterns.dob_hits),
    ("documents", patterns.document_hits),
    ("health", health.health_hits),
)
# Names run after these, with the tenant's name table (scanner.py).

# Every keyword list the detectors declare, in one automaton (keywords.py), built here
# once; every `Doc` the scanner makes reads it.
KEYWORDS = Keywords((*context.KEYWORD_LISTS, *health.KEYWORD_LISTS, *names.KEYWORD_LISTS, *patterns.KEYWORD_LISTS))
