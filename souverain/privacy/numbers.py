"""Number-shaped personal data: national identifiers, IBAN, VAT, cards, phones (and IPv4).

One digit-anchored regex finds every run of digits with its separators; the rest works on
those runs only, so text without digits costs one C-level scan. A run of digits and
capitals joined by single separators (` .-/_`, `(0)`, so `4111 1111-1111.1111` is one
run) is a cluster, with the letter prefix glued before it ("DE", "ATU", the X of a NIE).
Each cluster is cut into windows of consecutive groups (every prefix, every suffix,
every single group) and each window is compacted and tried against:

- the national identifier schemes of `ids.py`, checked only when their score could reach
  the threshold (context words: `context.py`);
- EU VAT numbers (python-stdnum `eu.vat`, offline);
- payment cards: issuer prefix and Luhn;
- telephone numbers, on the whole cluster only: valid (not merely possible) per
  phonenumbers, without its slow parser for the common EU formats.

A cluster whose digits start right after two letters is first tried as an IBAN: country,
registry length and BBAN format (the SWIFT registry file python-stdnum ships), and
ISO 7064 mod 97. Four dot-separated numbers are handed to the IP check.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
import stdnum.eu.vat as eu_vat
import stdnum.iban as _stdnum_iban
from stdnum import luhn

from souverain.privacy import context, ids, phones
from souverain.privacy.doc import Doc, Hit, digit_anchored
from souverain.privacy.patterns import IPV4, ip_hit

# Digit-anchored, so the regex engine skips letters at C speed; the letter prefix
# ("DE", "ATU", "X" of a NIE, the six letters of a codice fiscale) is added after.
_NUM = re.compile(
    r"[0-9][0-9A-Za-z]*"
    r"(?:(?:[ .\-/_]{1,3}| ?\([0-9]{1,4}\) ?|\) ?)[A-Za-z]{0,3}[0-9][0-9A-Za-z]*)*"
    r"(?:(?:-[A-Za-z]{1,3}|[ .][A-Z]{1,3})(?!\w))?"
)
_LEFT = re.compile(r"(?:\+|\(\+?[0-9]{1,3}\) ?)?(?:[A-Za-z]{1,6}|[A-Z]{1,6} )?\Z")
_BOUNDARY = frozenset("@+-./_")
_GROUP = re.compile(r"\+?[A-Z0-9]+|\([0-9+]{1,4}\)")
_MIN_DIGITS = 6
_MAX_COMPACT = 20

_VAT_PREFIXES = frozenset("AT BE BG CY CZ DE DK EE EL ES FI FR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK XI".split())
# Issuer prefixes by length, as the networks issue them today: Amex 15 digits, Diners 14
# (and up to 19), Mastercard 16, Visa 16 and 19, Discover, JCB, UnionPay and Maestro 16 to
# 19. No network issues 13-digit numbers any more (Visa's last ones have long expired),
# and 13 digits are an EAN-13 barcode's length, with a check digit of its own.
_CARD_IIN_BY_LENGTH = {
    14: re.compile(r"3(?:0[0-5]|[68])"),
    15: re.compile(r"3[47]"),
    16: re.compile(r"4|5[0-8]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|6|35|3(?:0[0-5]|[68])"),  # 2221-2720
}
_CARD_IIN_LONG = re.compile(r"4|5[06-8]|6|35|3(?:0[0-5]|[68])")  # 17 to 19 digits


def _card_prefix(body: str) -> bool:
    """Whether an all-digit `body` has an issuer prefix used at its length."""
    n = len(body)
    iin = _CARD_IIN_BY_LENGTH.get(n) or (_CARD_IIN_LONG if 17 <= n <= 19 else None)
    return iin is not None and iin.match(body) is not None


DEFAULT_PHONE_REGIONS = ("FR", "DE", "IT", "ES", "NL", "BE", "AT", "PL", "PT", "SE", "IE", "GB", "CH")
_NO_TRUNK_REGIONS = ("ES", "PL", "PT", "DK", "GR", "IT", "NO", "LU", "MT", "CY", "EE", "LV")


def number_hits(doc: Doc) -> Iterator[Hit]:
    """Every run of digits: IBANs (their check digits follow the country code), IPv4
    addresses, then clusters for the identifier, VAT, card and phone checks."""
    text, up = doc.text, doc.up
    claimed_to = -1
    tables = _Tables(doc)
    for m in digit_anchored(_NUM, doc):
        start, end = m.span()
        if start < claimed_to:
            continue
        if end - start < _MIN_DIGITS and not (start >= 2 and text[start - 2 : start].isalpha()):
            continue  # too short for anything but an IBAN's check digits ("GB82 WEST ...")
        if start >= 2 and text[start - 2 : start].isalpha():
            iban = _iban_at(doc, start - 2)
            if iban is not None:
                claimed_to = iban.end
                yield iban
                continue
        g = m.group(0)
        if "." in g:
            ip = IPV4.match(g)
            if ip is not None and ip.end() < len(g) and g[ip.end()] in " -":
                ip = None if g[ip.end() + 1 : ip.end() + 2].isdigit() else ip
            elif ip is not None and ip.end() != len(g):
                ip = None
            if ip is not None:
                yield from ip_hit(doc, start, start + ip.end(), ip.group(0))
                continue
        if (len(g) if g.isdigit() else sum(map(str.isdigit, g))) < _MIN_DIGITS or (
            end < len(text) and text[end].isalnum()
        ):
            continue
        prev = text[start - 1] if start else ""
        if (
            prev == "+"
            or prev == ")"
            or prev.isalpha()
            or (prev == " " and start > 1 and (text[start - 2].isupper() or text[start - 2] == ")"))
        ):
            # a prefix may be glued on: "+", "(+49) ", "DE ", "ATU", the X of a NIE
            left = _LEFT.search(text, max(0, start - 12), start)
            if left is not None and left.start() < start:
                start = left.start()
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] in _BOUNDARY):
            # glued to a word ("ref-123456789", "abc123456"): try without the letters
            start = m.start()
            if start > 0 and (text[start - 1].isalnum() or text[start - 1] in _BOUNDARY):
                continue
        digits_at = m.start()
        date = _ISO_DATE.match(text, digits_at, end)
        if date is not None:
            # "2025-11-01 09:48" or "2025-11-01T09": a date and what follows it, not one number
            digits_at = start = date.end()
            if end - start < _MIN_DIGITS:
                continue
        yield from _cluster_hits(doc, start, up[start:end], digits_at, tables)


_THOUSANDS = re.compile(r"\d{1,3}([ .,'])\d{3}(?:\1\d{3})+")
_ISO_DATE = re.compile(r"(?:19|20)\d\d-[01]\d-[0-3]\d(?:[ T_]|$)")


# One item of a list before a position: a number or code, then "," or ";" (quotes kept).
_ITEM_BEFORE = re.compile(r"['\"]?[0-9][0-9A-Za-z.\-]*['\"]?\s*[,;]\s*['\"]?\Z")
_LIST_ITEMS = 64  # at most this many items are walked back (a longer list: its last 64)


def _list_start(text: str, pos: int) -> int:
    """Where the list holding the item at `pos` starts (`pos` itself if none)."""
    for _ in range(_LIST_ITEMS):
        m = _ITEM_BEFORE.search(text, max(0, pos - 48), pos)
        if m is None:
            break
        pos = m.start()
    return pos


_TABLE_LINE = 4096  # the longest line read as a table row
_DELIMITERS = ("\t", "|", ";", ",")  # of table cells, in the order they are tried


class _Tables:
    """The header cells of delimited tables (CSV, TSV, `|` tables, and the rows of an SQL
    INSERT under its column list), found on demand: a number in a table is labelled by
    its column's header cell ("order_id", "EAN", "tracking_no") as by a word written
    before it. Each line's header is remembered once found, so a table of any length
    costs linear time."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc
        self._header: dict[int, tuple[int, int, str] | None] = {}  # line start -> header line

    def labels(self, pos: int) -> frozenset[str]:
        text = self.doc.text
        ls = text.rfind("\n", max(0, pos - _TABLE_LINE), pos) + 1
        if ls == 0 and pos > _TABLE_LINE:
            return frozenset()  # a line this long is no table row (and the look back is bounded)
        info = self._header_of(ls)
        if info is None or info[0] == ls:
            return frozenset()
        hs, he, delim = info
        a = hs
        for _ in range(text.count(delim, ls, pos)):
            a = text.find(delim, a, he)
            if a == -1:
                return frozenset()
            a += 1
        b = text.find(delim, a, he)
        return self.doc.found.between(a, he if b == -1 else b)

    def _line(self, ls: int) -> tuple[int, str | None, int]:
        """(line end, its delimiter or None, how many)."""
        text = self.doc.text
        le = text.find("\n", ls)
        le = len(text) if le == -1 else le
        body_end = le
        while body_end > ls and text[body_end - 1] in " \t\r":
            body_end -= 1
        for d in _DELIMITERS:
            n = text.count(d, ls, body_end)
            if n and text[body_end - 1] == d:
                n -= 1  # a trailing one ends a row ("(1, 'a', 2),") and is not a column
            if n >= 2:
                return le, d, n
        return le, None, 0

    def _header_of(self, ls: int) -> tuple[int, int, str] | None:
        if ls in self._header:
            return self._header[ls]
        le, delim, count = self._line(ls)
        visited = [ls]
        found: tuple[int, int, str] | None = None
        if delim is not None:
            head, head_end = ls, le
            while head > 0:  # up through the lines with as many delimiters
                prev = self.doc.text.rfind("\n", 0, head - 1) + 1
                p_end, p_delim, p_count = self._line(prev)
                if p_delim != delim or p_count != count:
                    break
                known = self._header.get(prev)
                if known is not None:  # walked before: its header is this line's
                    head, head_end = known[0], known[1]
                    break
                visited.append(prev)
                head, head_end = prev, p_end
            found = (head, head_end, delim)
        for v in visited:
            self._header[v] = found
        return found


def _cluster_hits(doc: Doc, base: int, s: str, digits_at: int, tables: _Tables | None = None) -> list[Hit]:
    if s.isalnum() or (s[0] == "+" and s[1:].isalnum()):
        groups = [(0, len(s), s)]  # no separator: one group (most numbers)
    else:
        groups = [(g.start(), g.end(), g.group(0).strip("()")) for g in _GROUP.finditer(s)]
    n = len(groups)
    # The "core" (without a leading or trailing group of letters) is where a phone number is.
    lo = 1 if n > 1 and groups[0][2].isalpha() else 0
    hi = n - 2 if n - lo > 1 and groups[-1][2].isalpha() else n - 1
    todo = []
    for i, j in _spans(n, lo, hi):
        core = i == lo and j == hi
        compact = groups[i][2] if i == j else "".join(g[2] for g in groups[i : j + 1])
        body = compact.lstrip("+")
        size = len(body)
        if size > _MAX_COMPACT:
            continue
        # Only windows some check could accept: all-digit ones of an identifier's or a
        # card's length, the others of any checked length; phones on the core only.
        if not core:
            if body.isdigit():
                if size not in _DIGIT_LENGTHS:
                    continue
            elif size not in _LENGTHS or _ANY_SHAPE.fullmatch(body) is None:
                continue  # letters where no identifier or VAT number has them ("ORDER123456789")
        plus = compact[0] == "+"
        if not (_could_match(body, plus) or (core and _PHONE_LIKE.fullmatch(body))):
            continue  # nothing below could fire: save the context lookup
        # A run of six digits or more after the first group ("200 154941": a status and a
        # size) is how two numbers sit side by side, not how one is grouped (groups after
        # the first are short: "59 378 910 647", "160668-18654"; AT's "1234 010180" is
        # its own layout).
        joined = any(len(g[2]) >= 6 for g in groups[i + 1 : j + 1])
        todo.append((groups[i][0], groups[j][1], compact, core, joined))
    if not todo:
        return []
    # Context is read around the digits, so a keyword glued on as a prefix ("PESEL 4405...")
    # still counts; the JSON key, if any, is context too.
    labels, neg = context.labels_and_negative(doc, digits_at, base + len(s))
    # The bound of a range ("WHERE o.id > 204721958", "amount <= 100000"): nobody asks for
    # the people numbered above a citizen number, so it is a key or a quantity.
    neg = neg or _RANGE_BOUND.search(doc.text, max(0, digits_at - 8), digits_at) is not None
    first = _list_start(doc.text, digits_at)
    if first < digits_at:
        # an item of a list ("ORDER_IDS = [263793357, 800428614, ...]"): what is written
        # before the list is its context too
        more, more_neg = context.labels_and_negative(doc, first, first + 1)
        labels, neg = labels | more, neg or more_neg
    if tables is not None:
        head = tables.labels(digits_at)
        if head:
            labels = labels | head
            neg = neg or "NEGATIVE" in head
    # Generic words ("tax number") help, unless they name another identifier or belong to
    # a negative word anywhere nearby ("serial number", "order ids").
    bonus = (
        0.2 if ("GENERIC" in labels and labels.isdisjoint(ids.TYPES) and not neg and "NEGATIVE" not in labels) else 0.0
    )
    malus = 0.35 if neg else 0.0
    hits: list[Hit] = []
    for a, b, compact, core, joined in todo:
        hits.extend(_window_hits(doc, base + a, base + b, compact, s[a:b], labels, neg, core, bonus, malus, joined))
    return hits


def _could_match(body: str, plus: bool) -> bool:
    """Whether an identifier, VAT or card check could accept `body` at all."""
    if plus:
        return False
    n = len(body)
    if n in ids.BY_LENGTH:
        return True
    if n >= 10 and body[:2] in _VAT_PREFIXES:
        return True
    return 14 <= n <= 19 and body.isdigit() and _card_prefix(body)


# An ordering comparison right before a number, spaced as code and queries write it (not
# an HTML tag's ">" glued to a cell's value).
_RANGE_BOUND = re.compile(r"\s(?:>=|<=|>|<)\s+$")

# What `_window_hits` tries as a phone number (digits, an optional extension).
_PHONE_LIKE = re.compile(r"\d{7,15}(?:(?:X|EXT)\d{1,6})?")


@lru_cache(maxsize=256)  # bounded: a message can hold clusters of any size
def _spans(n: int, lo: int, hi: int) -> tuple[tuple[int, int], ...]:
    """Windows of consecutive groups: every prefix, every suffix and every single group
    (a number inside a cluster sits at one of its ends, or alone between separators),
    and the core (lo, hi)."""
    return tuple(
        sorted({(0, j) for j in range(n)} | {(i, n - 1) for i in range(n)} | {(i, i) for i in range(n)} | {(lo, hi)})
    )


# Compacted lengths any check could accept (identifiers, VAT, cards); phones are tried on
# the core window whatever its length.
_LENGTHS = frozenset(ids.BY_LENGTH) | frozenset(range(10, 20))
# The highest confidence a scheme of each length has without its own keyword (written
# its own way included), and the types of each length.
_BEST_BASE = {
    n: max(max(sc.base, ids.MEDIUM + 0.05 if sc.layout else 0.0) for sc in schemes)
    for n, schemes in ids.BY_LENGTH.items()
}
_SCHEME_ROWS = {
    n: tuple((sc.type, sc.base, sc.layout.fullmatch if sc.layout else None, sc) for sc in schemes)
    for n, schemes in ids.BY_LENGTH.items()
}
# ... and the rows a digits-only candidate can pass (no letter in the shape; Finland's
# is checked as written, with its century sign).
_DIGIT_ROWS = {
    n: tuple(
        r for r in rows if r[3].raw or any(r[3].shape.fullmatch(f"{head}".ljust(n, "0")) for head in range(10, 100))
    )
    for n, rows in _SCHEME_ROWS.items()
}
_TYPES_BY_LENGTH = {n: frozenset(sc.type for sc in schemes) for n, schemes in ids.BY_LENGTH.items()}
# Every shape a candidate with letters could pass: the schemes' (the Finnish one also
# without its century sign, which compacting removes) and a VAT number's.
_ANY_SHAPE = re.compile(
    "|".join(
        [f"(?:{sc.shape.pattern})" for sc in ids.SCHEMES]
        + [r"\d{6}[A-FU-Y]?\d{3}[0-9A-Y]", rf"(?:{'|'.join(sorted(_VAT_PREFIXES))})[0-9A-Z]{{2,14}}"]
    )
)
# ... of those, the lengths an all-digit candidate could pass at (no letter in its shape).
_DIGIT_LENGTHS = frozenset(
    n
    for n, schemes in ids.BY_LENGTH.items()
    if any(sc.shape.fullmatch(f"{head}".ljust(n, "0")) for sc in schemes for head in range(10, 100))
) | frozenset(range(13, 20))


def _score(base: float, type_: str, labels: frozenset[str], neg: bool, generic: bool = True) -> float:
    if type_ in labels:
        base += 0.45
    elif generic and "GENERIC" in labels and not any(t in ids.TYPES for t in labels):
        # generic words ("tax number") help, unless they name another identifier
        base += 0.2
    if neg:
        base -= 0.35
    return round(min(base, 0.99), 3)


def _window_hits(
    doc: Doc,
    start: int,
    end: int,
    compact: str,
    written: str,
    labels: frozenset[str],
    neg: bool,
    core: bool,
    bonus: float,
    malus: float,
    joined: bool = False,
) -> list[Hit]:
    out: list[Hit] = []
    plus = compact[0] == "+"
    body = compact[1:] if plus else compact
    digits = body.isdigit()
    # National identifiers, in table order: a scheme is checked only when its score could
    # beat the best so far and reach the lowest threshold (a tie goes to table order).
    if not plus:
        schemes = ids.BY_LENGTH.get(len(body))
        # Skip the loop when no scheme could reach the threshold (an order number).
        if schemes and (
            _BEST_BASE[len(body)] + bonus - malus + 1e-9 >= doc.min_confidence
            or not labels.isdisjoint(_TYPES_BY_LENGTH[len(body)])
        ):
            best = 0.0
            found: ids.IdScheme | None = None
            floor = doc.min_confidence - 1e-9
            # A context word naming another identifier ("Mon numéro fiscal est ...")
            # says what the number is meant to be: one that fails that check and passes
            # another (a typo, or a near-miss) is most likely not the other.
            other = 0.35 if not labels.isdisjoint(ids.TYPES) else 0.0
            # Written in thousands ("267 063 342", "198.201.369") with no word naming a
            # scheme: a quantity, unless a word says otherwise.
            quantity = 0.25 if _THOUSANDS.fullmatch(written) else 0.0
            for type_, base, layout, sc in (_DIGIT_ROWS if digits else _SCHEME_ROWS)[len(body)]:
                score = base
                if layout is not None and layout(written):
                    score = max(score, ids.MEDIUM) + 0.05  # written the scheme's own way
                elif joined and type_ not in labels:
                    continue  # two numbers side by side (see _cluster_hits)
                score += (0.45 if type_ in labels else bonus - other - quantity) - malus
                if score > 0.99:
                    score = 0.99
                if score < floor or (found is not None and score <= best + 1e-9):
                    continue
                if ids.passes(sc, body, written):
                    best, found = score, sc
                    if score >= 0.99 - 1e-9:
                        break  # nothing can beat it
            if found is not None:
                out.append(Hit(found.type, start, end, round(best, 3), found.validator))
    # EU VAT numbers: country prefix + the member state's own check.
    if not plus and len(body) >= 10 and body[:2] in _VAT_PREFIXES and eu_vat.is_valid(body):
        out.append(Hit("VAT", start, end, _score(0.75, "VAT", labels, neg, generic=False), "stdnum.eu.vat"))
    # Payment cards.
    if digits and not plus and 14 <= len(body) <= 19 and _card_prefix(body) and luhn.is_valid(body):
        base = 0.75 if _CARD_LAYOUT.fullmatch(written) else 0.6
        if "CARD" not in labels and not labels.isdisjoint(ids.TYPES):
            base -= 0.35  # the context names an identifier, not a card
        out.append(Hit("CARD", start, end, _score(base, "CARD", labels, neg, generic=False), "luhn+iin"))
    # Telephone numbers: the whole cluster only (phonenumbers is the costly check).
    if core:
        ext = _EXTENSION.fullmatch(body)  # "+1-409-665-6343x129": the extension is not checked
        number = ext.group(1) if ext else body
        if number.isdigit() and 7 <= len(number) <= 15 and not _is_date(written):
            conf = _phone(
                doc, written if not ext else written[: written.upper().rfind("X")], number, plus, "PHONE" in labels
            )
            if conf and "PHONE" not in labels and not labels.isdisjoint(ids.TYPES):
                conf -= 0.35  # the context names an identifier, not a telephone
            if conf:
                out.append(Hit("PHONE", start, end, round(conf - (0.35 if neg else 0.0), 3), "phonenumbers"))
    return out


_EXTENSION = re.compile(r"(\d{7,15})(?:X|EXT)\d{1,6}")
# A date as people write it (13.04.2025, 2025-04-13, 13/04/25) is a date, whatever
# telephone number its digits would also make.
_DATE_LAYOUT = re.compile(r"(\d{1,2})([./-])(\d{1,2})\2(?:\d{2}|\d{4})|(?:19|20)\d\d([./-])(\d{1,2})\4(\d{1,2})")


def _is_date(written: str) -> bool:
    m = _DATE_LAYOUT.fullmatch(written.strip())
    if m is None:
        return False
    day, month = (m.group(1), m.group(3)) if m.group(1) else (m.group(6), m.group(5))
    return 1 <= int(day) <= 31 and 1 <= int(month) <= 12


_CARD_LAYOUT = re.compile(r"\d{4}(?:[ -]\d{4}){3}|\d{4}[ -]\d{6}[ -]\d{5}")


def _phone(doc: Doc, written: str, body: str, plus: bool, has_ctx: bool) -> float:
    if plus or body.startswith("00"):
        digits = body[2:] if body.startswith("00") and not plus else body
        if _valid_international(digits, "(0)" in written):
            # without a telephone word, "00" and the digits in one unbroken run are more
            # often a tracking or reference number than a telephone number written by hand
            return 0.95 if has_ctx else (0.85 if plus else (0.65 if not written.strip().isdigit() else 0.45))
        return 0.0
    if body.startswith("0") and 9 <= len(body) <= 12:
        for region in doc.phone_regions or DEFAULT_PHONE_REGIONS:
            if _valid_national(body, region):
                # without a telephone word, only a number written as one ("06 12 34 56 78")
                return 0.9 if has_ctx else (0.6 if not written.strip().isdigit() else 0.45)
        return 0.0
    if has_ctx and 8 <= len(body) <= 11:
        for region in _NO_TRUNK_REGIONS:
            if _valid_national(body, region):
                return 0.8
    return 0.0


@dataclass(frozen=True, slots=True)
class _Region:
    code: int
    trunk: str | None
    pattern: re.Pattern[str]


def _region_table() -> dict[str, _Region]:
    out = {}
    for region in set(DEFAULT_PHONE_REGIONS) | set(_NO_TRUNK_REGIONS) | set(_EU_REGIONS):
        md = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if (
            md is None
            or md.country_code is None
            or md.general_desc is None
            or md.general_desc.national_number_pattern is None
        ):
            continue
        out[region] = _Region(md.country_code, md.national_prefix, re.compile(md.general_desc.national_number_pattern))
    return out


_EU_REGIONS = (
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK GB CH NO IS LI MC AD SM VA"
).split()
_REGIONS = _region_table()


def _valid_national(body: str, region: str) -> bool:
    """phonenumbers' is_valid_number for `body` written in `region`'s national format,
    without its (slow) parser: strip the trunk prefix, pre-check the region's pattern."""
    r = _REGIONS.get(region)
    if r is None:
        try:
            return phonenumbers.is_valid_number(phonenumbers.parse(body, region))
        except phonenumbers.NumberParseException:
            return False
    national = body[len(r.trunk) :] if r.trunk and body.startswith(r.trunk) else body
    if not national or not r.pattern.fullmatch(national):
        return False
    return phones.valid(r.code, national)


def _valid_international(digits: str, trunk_in_parens: bool) -> bool:
    """Country calling codes are prefix-free: the first 1, 2 or 3 digits that are one
    decide the country."""
    for k in (1, 2, 3):
        code = int(digits[:k])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = digits[k:]
            if trunk_in_parens and national.startswith("0"):
                national = national[1:]  # "+49 (0)30 ..."
            if not national or not national.isdigit():
                return False
            return phones.valid(code, national)
    return False


# ---------------------------------------------------------------------------------------
# IBAN


def _iban_registry() -> dict[str, tuple[int, re.Pattern[str], re.Pattern[str]]]:
    """cc -> (IBAN length, BBAN regex, regex for the IBAN as written), from the SWIFT
    registry file that python-stdnum ships."""
    conv = {"n": "[0-9]", "a": "[A-Z]", "c": "[A-Z0-9]", "e": " "}
    written: dict[int, re.Pattern[str]] = {}
    out = {}
    path = os.path.join(os.path.dirname(_stdnum_iban.__file__), "iban.dat")
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r'([A-Z]{2}) .*bban="([^"]+)"', line)
            if not m:
                continue
            parts = re.findall(r"(\d+)(!?)([nace])", m.group(2))
            regex = "".join(f"{conv[t]}{{{n}}}" if bang else f"{conv[t]}{{1,{n}}}" for n, bang, t in parts)
            length = 4 + sum(int(n) for n, _, _ in parts)
            if length not in written:
                written[length] = re.compile(rf"[A-Z]{{2}}[0-9]{{2}}(?:[ \-]?[A-Z0-9]){{{length - 4}}}(?![A-Z0-9])")
            out[m.group(1)] = (length, re.compile(regex), written[length])
    return out


_IBAN = _iban_registry()
_SEPARATORS = str.maketrans("", "", " -")
_MOD97 = str.maketrans({chr(c): str(c - 55) for c in range(ord("A"), ord("Z") + 1)})  # ISO 7064: A=10 ... Z=35


def _iban_at(doc: Doc, start: int) -> Hit | None:
    """An IBAN starting at `start` (its country code), checked for the country's length
    and BBAN format and for ISO 7064 mod 97."""
    up = doc.up
    entry = _IBAN.get(up[start : start + 2])
    if entry is None or (start > 0 and up[start - 1].isalnum()):
        return None
    length, bban, written = entry
    m = written.match(up, start)
    if m is None:
        return None
    compact = m.group(0).translate(_SEPARATORS)
    if not bban.fullmatch(compact, 4):
        return None
    if int((compact[4:] + compact[:4]).translate(_MOD97)) % 97 != 1:
        return None
    return Hit("IBAN", start, m.end(), 0.99, "iban mod 97 + registry format")


def iban_hits(doc: Doc) -> Iterator[Hit]:
    """IBANs alone (number_hits finds them too, in the same pass as other numbers)."""
    for h in number_hits(doc):
        if h.type == "IBAN":
            yield h
