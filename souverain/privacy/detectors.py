"""The pattern detectors: numbers, identifiers, contact details, dates of birth.

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
  passport / ID-card word, plus the ICAO 9303 check digit when present.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import phonenumbers
import stdnum.eu.vat as eu_vat
import stdnum.iban as _stdnum_iban
from stdnum import luhn

from souverain.privacy import context, ids


class Hit(NamedTuple):
    type: str
    start: int  # normalised offsets
    end: int
    confidence: float
    validator: str


@dataclass(slots=True)
class Doc:
    """What the detectors read: the normalised text and an ASCII-upper-cased twin of the
    same length (so offsets agree), plus words from outside the text (a JSON key)."""

    text: str
    up: str
    extra: str = ""
    phone_regions: tuple[str, ...] = ()
    # Candidates that could not reach this confidence are not even checked.
    min_confidence: float = 0.0
    _words: frozenset[bytes] | None = None

    @classmethod
    def of(cls, text: str, extra: str = "", phone_regions: tuple[str, ...] = (), min_confidence: float = 0.0) -> Doc:
        up = text.upper()
        if len(up) != len(text):  # "ß" -> "SS": upper-case ASCII only
            up = text.translate(_ASCII_UPPER)
        return cls(text, up, extra, phone_regions, min_confidence)

    @property
    def words(self) -> frozenset[bytes]:
        """The set of lower-cased words (UTF-8 bytes), for the keyword gates: building it
        is a few C calls, where a keyword regex would walk every character."""
        if self._words is None:
            raw = (self.text + " " + self.extra).lower().encode("utf-8", "surrogatepass")
            self._words = frozenset(raw.translate(_PUNCT_TO_SPACE).split())
        return self._words


def gate(words: frozenset[bytes], keys: frozenset[bytes]) -> bool:
    return not keys.isdisjoint(words)


def keyset(words: str) -> frozenset[bytes]:
    return frozenset(w.encode() for w in words.split())


_ASCII_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}
_PUNCT_TO_SPACE = bytes(
    b if (chr(b).isalnum() or b >= 0x80) else 0x20 for b in range(256)
)

# ---------------------------------------------------------------------------------------
# Number-like clusters

# Digit-anchored, so the regex engine skips letters at C speed; the letter prefix
# ("DE", "ATU", "X" of a NIE, the six letters of a codice fiscale) is added after.
_NUM = re.compile(
    r"[0-9][0-9A-Za-z]*"
    r"(?:(?:[ .\-/_]{1,3}| ?\([0-9]{1,4}\) ?|\) ?)[A-Za-z]{0,3}[0-9][0-9A-Za-z]*)*"
    r"(?:[ .\-][A-Za-z]{1,3}(?!\w))?"
)
_LEFT = re.compile(r"(?:\+|\(\+?[0-9]{1,3}\) ?)?(?:[A-Za-z]{1,6} ?)?\Z")
_BOUNDARY = frozenset("@+-./_") 
_GROUP = re.compile(r"\+?[A-Z0-9]+|\([0-9+]{1,4}\)")
_MIN_DIGITS = 6
_MAX_COMPACT = 20

_VAT_PREFIXES = frozenset("AT BE BG CY CZ DE DK EE EL ES FI FR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK XI".split())
_CARD_IIN = re.compile(r"4|5[1-5]|2(?:2[2-9][1-9]|[3-6]\d\d|7[01]\d|720)|3[47]|3(?:0[0-5]|[68])|6(?:011|5|4[4-9]|2)|35|50|5[6-8]|6[0-9]")

DEFAULT_PHONE_REGIONS = ("FR", "DE", "IT", "ES", "NL", "BE", "AT", "PL", "PT", "SE", "IE", "GB", "CH")
_NO_TRUNK_REGIONS = ("ES", "PL", "PT", "DK", "GR", "IT", "NO", "LU", "MT", "CY", "EE", "LV")


def number_hits(doc: Doc) -> Iterator[Hit]:
    """Every run of digits: IBANs (their check digits follow the country code), IPv4
    addresses, then clusters for the identifier, VAT, card and phone checks."""
    text, up = doc.text, doc.up
    claimed_to = -1
    for m in _NUM.finditer(text):
        start, end = m.span()
        if start < claimed_to:
            continue
        if start >= 2 and text[start - 2:start].isalpha():
            iban = _iban_at(doc, start - 2)
            if iban is not None:
                claimed_to = iban.end
                yield iban
                continue
        ip = _IPV4.match(m.group(0))
        if ip is not None and ip.end() < len(m.group(0)) and m.group(0)[ip.end()] in " -":
            ip = None if m.group(0)[ip.end() + 1:ip.end() + 2].isdigit() else ip
        elif ip is not None and ip.end() != len(m.group(0)):
            ip = None
        if ip is not None:
            yield from _ip(doc, start, start + ip.end(), ip.group(0))
            continue
        if sum(map(str.isdigit, m.group(0))) < _MIN_DIGITS or (end < len(text) and text[end].isalnum()):
            continue
        left = _LEFT.search(text, max(0, start - 12), start)
        if left is not None and left.start() < start:
            start = left.start()
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] in _BOUNDARY):
            # glued to a word ("ref-123456789", "abc123456"): try without the letters
            start = m.start()
            if start > 0 and (text[start - 1].isalnum() or text[start - 1] in _BOUNDARY):
                continue
        yield from _cluster_hits(doc, start, up[start:end], m.start())


def _cluster_hits(doc: Doc, base: int, s: str, digits_at: int) -> list[Hit]:
    groups = [(g.start(), g.end(), g.group(0).strip("()")) for g in _GROUP.finditer(s)]
    text = doc.text
    # Context is read around the digits, so a keyword glued on as a prefix ("PESEL 4405...")
    # still counts; the JSON key, if any, is context too.
    labels = context.LABELS(context.window(text, digits_at, base + len(s)))
    if doc.extra:
        labels = labels | context.LABELS(doc.extra.lower())
    neg = context.negative(text, digits_at, doc.extra)
    n = len(groups)
    # Windows of consecutive groups: every prefix, every suffix and every single group
    # (a number inside a cluster sits at one of its ends, or alone between separators).
    spans = {(0, j) for j in range(n)} | {(i, n - 1) for i in range(n)} | {(i, i) for i in range(n)}
    # The "core" (without a leading or trailing group of letters) is where a phone number is.
    lo = 1 if n > 1 and groups[0][2].isalpha() else 0
    hi = n - 2 if n - lo > 1 and groups[-1][2].isalpha() else n - 1
    spans.add((lo, hi))
    hits: list[Hit] = []
    for i, j in sorted(spans):
        compact = "".join(g[2] for g in groups[i:j + 1])
        size = len(compact.lstrip("+"))
        if size > _MAX_COMPACT or (size not in _LENGTHS and (i, j) != (lo, hi)):
            continue
        a, b = groups[i][0], groups[j][1]
        hits.extend(_window_hits(doc, base + a, base + b, compact, s[a:b], labels, neg, (i, j) == (lo, hi)))
    return hits


# Compacted lengths any check could accept (identifiers, VAT, cards); phones are tried on
# the core window whatever its length.
_LENGTHS = frozenset(ids.BY_LENGTH) | frozenset(range(10, 20))


def _score(base: float, type_: str, labels: frozenset[str], neg: bool, generic: bool = True) -> float:
    if type_ in labels:
        base += 0.45
    elif generic and "GENERIC" in labels and not any(t in ids.TYPES for t in labels):
        # generic words ("tax number") help, unless they name another identifier
        base += 0.2
    if neg:
        base -= 0.35
    return round(min(base, 0.99), 3)


def _window_hits(doc: Doc, start: int, end: int, compact: str, written: str, labels: frozenset[str], neg: bool,
                 core: bool) -> list[Hit]:
    out: list[Hit] = []
    plus = compact.startswith("+")
    body = compact.lstrip("+")
    digits = body.isdigit()
    # National identifiers, in table order: a scheme is checked only when its score could
    # beat the best so far and reach the lowest threshold (a tie goes to table order).
    if not plus:
        schemes = ids.BY_LENGTH.get(len(body))
        if schemes:
            best: tuple[float, ids.IdScheme] | None = None
            bonus = 0.2 if "GENERIC" in labels and labels.isdisjoint(ids.TYPES) and not neg else 0.0
            malus = 0.35 if neg else 0.0
            for sc in schemes:
                if not sc.raw and sc.shape.fullmatch(body) is None:
                    continue
                base = sc.base
                if sc.layout is not None and sc.layout.fullmatch(written):
                    base = max(base, ids.MEDIUM) + 0.05  # written the scheme's own way
                score = round(min(base + (0.45 if sc.type in labels else bonus) - malus, 0.99), 3)
                if score < doc.min_confidence or (best is not None and score <= best[0]):
                    continue
                if ids.passes(sc, body, written):
                    best = (score, sc)
            if best is not None:
                out.append(Hit(best[1].type, start, end, best[0], best[1].validator))
    # EU VAT numbers: country prefix + the member state's own check.
    if not plus and len(body) >= 10 and body[:2] in _VAT_PREFIXES and eu_vat.is_valid(body):
        out.append(Hit("VAT", start, end, _score(0.75, "VAT", labels, neg, generic=False), "stdnum.eu.vat"))
    # Payment cards.
    if digits and not plus and 13 <= len(body) <= 19 and _CARD_IIN.match(body) and luhn.is_valid(body):
        base = 0.75 if _CARD_LAYOUT.fullmatch(written) else 0.6
        if "CARD" not in labels and not labels.isdisjoint(ids.TYPES):
            base -= 0.35  # the context names an identifier, not a card
        out.append(Hit("CARD", start, end, _score(base, "CARD", labels, neg, generic=False), "luhn+iin"))
    # Telephone numbers: the whole cluster only (phonenumbers is the costly check).
    if core:
        ext = _EXTENSION.fullmatch(body)  # "+1-409-665-6343x129": the extension is not checked
        number = ext.group(1) if ext else body
        if number.isdigit() and 7 <= len(number) <= 15:
            conf = _phone(doc, written if not ext else written[:written.upper().rfind("X")], number, plus,
                          "PHONE" in labels)
            if conf and "PHONE" not in labels and not labels.isdisjoint(ids.TYPES):
                conf -= 0.35  # the context names an identifier, not a telephone
            if conf:
                out.append(Hit("PHONE", start, end, round(conf - (0.35 if neg else 0.0), 3), "phonenumbers"))
    return out


_EXTENSION = re.compile(r"(\d{7,15})(?:X|EXT)\d{1,6}")
_CARD_LAYOUT = re.compile(r"\d{4}(?:[ -]\d{4}){3}|\d{4}[ -]\d{6}[ -]\d{5}")


def _phone(doc: Doc, written: str, body: str, plus: bool, has_ctx: bool) -> float:
    if plus or body.startswith("00"):
        digits = body[2:] if body.startswith("00") and not plus else body
        if _valid_international(digits, "(0)" in written):
            return 0.95 if has_ctx else (0.85 if plus else 0.65)
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
        if md is None or md.general_desc is None or md.general_desc.national_number_pattern is None:
            continue
        out[region] = _Region(md.country_code, md.national_prefix, re.compile(md.general_desc.national_number_pattern))
    return out


_EU_REGIONS = ("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK "
               "GB CH NO IS LI MC AD SM VA").split()
_REGIONS = _region_table()


def _number(code: int, national: str) -> phonenumbers.PhoneNumber:
    n = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    if national.startswith("0"):
        zeros = len(national) - len(national.lstrip("0"))
        n.italian_leading_zero = True
        if zeros > 1:
            n.number_of_leading_zeros = zeros
    return n


def _valid_national(body: str, region: str) -> bool:
    """phonenumbers' is_valid_number for `body` written in `region`'s national format,
    without its (slow) parser: strip the trunk prefix, pre-check the region's pattern."""
    r = _REGIONS.get(region)
    if r is None:
        try:
            return phonenumbers.is_valid_number(phonenumbers.parse(body, region))
        except phonenumbers.NumberParseException:
            return False
    national = body[len(r.trunk):] if r.trunk and body.startswith(r.trunk) else body
    if not national or not r.pattern.fullmatch(national):
        return False
    return phonenumbers.is_valid_number(_number(r.code, national))


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
            return phonenumbers.is_valid_number(_number(code, national))
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


def _iban_at(doc: Doc, start: int) -> Hit | None:
    """An IBAN starting at `start` (its country code), checked for the country's length
    and BBAN format and for ISO 7064 mod 97."""
    up = doc.up
    entry = _IBAN.get(up[start:start + 2])
    if entry is None or (start > 0 and up[start - 1].isalnum()):
        return None
    length, bban, written = entry
    m = written.match(up, start)
    if m is None:
        return None
    compact = m.group(0).translate(_SEPARATORS)
    if not bban.fullmatch(compact, 4):
        return None
    if int("".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])) % 97 != 1:
        return None
    return Hit("IBAN", start, m.end(), 0.99, "iban mod 97 + registry format")


def iban_hits(doc: Doc) -> Iterator[Hit]:
    """IBANs alone (number_hits finds them too, in the same pass as other numbers)."""
    for h in number_hits(doc):
        if h.type == "IBAN":
            yield h


# ---------------------------------------------------------------------------------------
# BIC

_ISO_COUNTRIES = frozenset(
    "AD AE AF AG AI AL AM AO AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BW BY BZ "
    "CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG ER ES ET FI FJ FK FM FO "
    "FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GT GU GW GY HK HN HR HT HU ID IE IL IM IN IQ IR IS IT JE JM JO "
    "JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP "
    "MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW "
    "PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TG TH TJ TK TL TM TN "
    "TO TR TT TV TW TZ UA UG US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW".split()
)
_BIC = re.compile(r"(?<![A-Za-z0-9])[A-Z]{4}([A-Z]{2})[A-Z0-9]{2}(?:[A-Z0-9]{3})?(?![A-Za-z0-9])")


_BIC_WORDS = keyset("bic swift iban bank banque banca banco bankverbindung bankleitzahl")


def bic_hits(doc: Doc) -> Iterator[Hit]:
    """BICs near a bank word only: elsewhere an all-caps word can have a BIC's shape."""
    if not gate(doc.words, _BIC_WORDS):
        return
    for m in _BIC.finditer(doc.text):  # BICs are written in capitals
        if m.group(1) not in _ISO_COUNTRIES:
            continue
        ctx = context.window(doc.text, m.start(), m.end(), 64, 24) + " " + doc.extra.lower()
        has_ctx = context.SPECIFIC_RE["BIC"].search(ctx) is not None
        has_digit = any(c.isdigit() for c in m.group(0)[6:])
        conf = 0.9 if has_ctx else (0.45 if has_digit else 0.25)
        yield Hit("BIC", m.start(), m.end(), conf, "bic structure + country")


# ---------------------------------------------------------------------------------------
# E-mail and IP addresses (found from their anchor characters: fast on text without them)

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)
_EMAIL_OBF = re.compile(
    r"(?<![\w.])([\w.+\-]{1,64})\s*[\[\(\{]\s*(?:at|@)\s*[\]\)\}]\s*([\w\-]+(?:\s*(?:[\[\(\{]\s*(?:dot|\.)\s*[\]\)\}]|\.)\s*[\w\-]+)+)",
    re.IGNORECASE,
)


_OBF_WORDS = keyset("at dot")


def email_hits(doc: Doc) -> Iterator[Hit]:
    text = doc.text
    if "@" in text:
        for m in _EMAIL.finditer(text):
            local = m.group(0).split("@", 1)[0]
            if local.startswith(".") or local.endswith(".") or ".." in local:
                continue
            yield Hit("EMAIL", m.start(), m.end(), 0.95, "email syntax")
    if gate(doc.words, _OBF_WORDS) and ("[" in text or "(" in text or "{" in text):
        for m in _EMAIL_OBF.finditer(text):
            yield Hit("EMAIL", m.start(), m.end(), 0.8, "email syntax (obfuscated)")


_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:[0-9]{1,3}\.){3}[0-9]{1,3})?(?![\w:])")
_IP_NEG = context.keyword_regex(["version", "versión", "versione", "build", "release", "v", "ver", "firmware", "oid"])


def _ip(doc: Doc, start: int, end: int, value: str) -> Iterator[Hit]:
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return
    if addr.is_loopback or addr.is_unspecified or addr.is_multicast:
        return
    text = doc.text
    if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "._-:"):
        return
    conf = 0.7 if (addr.is_private or addr.is_link_local or addr.is_reserved) else 0.85
    if _IP_NEG.search(text[max(0, start - 16):start].lower()):
        conf -= 0.4
    yield Hit("IP_ADDRESS", start, end, conf, f"ipaddress (IPv{addr.version})")


def _ipv4(doc: Doc, start: int, end: int) -> Iterator[Hit]:
    yield from _ip(doc, start, end, doc.text[start:end])


_HEX = frozenset("0123456789abcdefABCDEF:")


def _hex_colon(text: str) -> bool:
    """A colon with a hex digit (or another colon) on both sides: IPv6 may be there."""
    i = text.find(":")
    while i != -1:
        if 0 < i < len(text) - 1 and text[i - 1] in _HEX and text[i + 1] in _HEX:
            return True
        i = text.find(":", i + 1)
    return False


def ip_hits(doc: Doc) -> Iterator[Hit]:
    """IPv6 (IPv4 addresses are found by `number_hits`, which sees every digit run)."""
    text = doc.text
    if text.count(":") < 2 or not _hex_colon(text):
        return
    for m in _IPV6.finditer(text):
        if m.group(0).count(":") >= 2:
            yield from _ip(doc, m.start(), m.end(), m.group(0))


# ---------------------------------------------------------------------------------------
# Dates of birth

_DOB_LIST = ("""
born birth birthday dob d.o.b date-of-birth geboren geb. geburt geburtsdatum geburtstag
né née naissance anniversaire nato nata nascita compleanno nacido nacida nacimiento cumpleaños
geboortedatum verjaardag nací naci nació nacio nacque urodzony urodzona urodzenia urodziny urodziłem urodziłam urodził urodziła narozen narozena narození narodil narodila
født fødsel fødselsdato född födelsedatum syntynyt syntymäaika születés született
rođen rođena rođenja gimęs gimusi gimimo dzimis dzimusi dzimšanas sündinud sünniaeg
nascut născut nașterii nascimento nasceu nascido nascida роден родена рождения γεννήθηκε γέννησης
""".split())
_DOB_WORDS = context.keyword_regex(_DOB_LIST)
_DOB_GATE = keyset(" ".join(w for w in _DOB_LIST if "." not in w and "-" not in w) + " dob geb birth")
_MONTHS = (
    "january february march april may june july august september october november december jan feb mar apr jun jul aug sep sept oct nov dec "
    "januar februar märz maerz april mai juni juli august september oktober november dezember jänner "
    "janvier février fevrier mars avril mai juin juillet août aout septembre octobre novembre décembre decembre "
    "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre "
    "enero febrero marzo abril mayo junio julio agosto septiembre setiembre octubre noviembre diciembre "
    "januari februari maart april mei juni juli augustus september oktober november december "
    "stycznia lutego marca kwietnia maja czerwca lipca sierpnia września października listopada grudnia "
    "janeiro fevereiro março maio junho julho setembro outubro novembro dezembro "
    "januari februari mars april maj juni juli augusti september oktober november december "
    "ianuarie februarie martie aprilie mai iunie iulie august septembrie octombrie noiembrie decembrie"
).split()
_MONTH_RE = "|".join(sorted({re.escape(m) for m in _MONTHS}, key=len, reverse=True))
_DATE = re.compile(
    r"(?<![\w.])(?:"
    r"(?:0?[1-9]|[12][0-9]|3[01])[./\-](?:0?[1-9]|1[0-2])[./\-](?:1[89]|20)?[0-9]{2}"
    r"|(?:1[89]|20)[0-9]{2}[\-/.](?:0?[1-9]|1[0-2])[\-/.](?:0?[1-9]|[12][0-9]|3[01])"
    rf"|(?:0?[1-9]|[12][0-9]|3[01])(?:\.|er|st|nd|rd|th)?\s(?:de\s)?(?:{_MONTH_RE})\.?,?\s(?:de\s)?(?:1[89]|20)[0-9]{{2}}"
    rf"|(?:{_MONTH_RE})\.?\s(?:0?[1-9]|[12][0-9]|3[01])(?:st|nd|rd|th)?,?\s(?:1[89]|20)[0-9]{{2}}"
    r")(?![\w])",
    re.IGNORECASE,
)


def dob_hits(doc: Doc) -> Iterator[Hit]:
    """Dates near a birth word: the date regex runs only in the windows around those
    words (before: "born on 3 May 1980"; after: "am 3. Mai 1980 geboren")."""
    text = doc.text
    if not gate(doc.words, _DOB_GATE):
        return
    low = text.lower()
    if len(low) != len(text):
        low = text
    windows: list[tuple[int, int]] = []
    for kw in _DOB_WORDS.finditer(low):
        a, b = max(0, kw.start() - 32), min(len(text), kw.end() + 48)
        if windows and a <= windows[-1][1]:
            windows[-1] = (windows[-1][0], b)
        else:
            windows.append((a, b))
    if doc.extra and _DOB_WORDS.search(doc.extra.lower()):
        windows = [(0, len(text))]
    seen = set()
    for a, b in windows:
        for m in _DATE.finditer(text, a, b):
            if m.start() not in seen and context.near(_DOB_WORDS, text, m.start(), m.end(), doc.extra, before=40, after=24):
                seen.add(m.start())
                yield Hit("DATE_OF_BIRTH", m.start(), m.end(), 0.85, "date + birth context")


# ---------------------------------------------------------------------------------------
# Passports and identity cards

_DOC_WORDS = {t: context.SPECIFIC_RE[t] for t in ("PASSPORT", "ID_CARD")}
_DOC_CODE = re.compile(r"(?<![A-Za-z0-9])(?=[A-Za-z0-9]*[0-9][A-Za-z0-9]*[0-9])[A-Za-z0-9]{6,12}(?![A-Za-z0-9])")
_ICAO_W = (7, 3, 1)


def _icao_ok(code: str) -> bool:
    """ICAO 9303 check digit over the first len-1 characters (MRZ document numbers)."""
    def val(c: str) -> int:
        return int(c) if c.isdigit() else ord(c) - 55
    body, check = code[:-1], code[-1]
    return check.isdigit() and sum(val(c) * _ICAO_W[i % 3] for i, c in enumerate(body)) % 10 == int(check)


_DOC_GATE = keyset(
    "passport reisepass passnummer passnr passeport passaporto pasaporte paspoort paszport paszportu passi pas pass "
    "pasaport паспорт διαβατήριο útlevél cestovní pašport personalausweis personalausweisnummer ausweis ausweisnr "
    "ausweisnummer identité identità identidad identiteitskaart dowód dowodu průkaz henkilökortti legitimation cni "
    "dni cidadão identity reisepassnummer"
)


def document_hits(doc: Doc) -> Iterator[Hit]:
    if not gate(doc.words, _DOC_GATE):
        return
    low = doc.text.lower()
    for type_, regex in _DOC_WORDS.items():
        for kw in regex.finditer(low):
            seg_start = kw.end()
            seg = doc.up[seg_start:seg_start + 40]
            m = _DOC_CODE.search(seg)
            if m is None:
                continue
            code = m.group(0)
            if code.isdigit() or any(sc.shape.fullmatch(code) for sc in ids.BY_LENGTH.get(len(code), ())):
                # digits only, or shaped like a national identifier (whose own check decides)
                continue
            conf, validator = 0.8, "pattern + context"
            if len(code) in (9, 10) and _icao_ok(code):
                conf, validator = 0.9, "pattern + context + icao 9303 check digit"
            yield Hit(type_, seg_start + m.start(), seg_start + m.end(), conf, validator)
