"""The other pattern detectors: BIC, e-mail, IP addresses, dates of birth, documents.

- BIC: structure and ISO country, and only near a bank word (an all-caps word like
  CUSTOMER has a BIC's shape);
- e-mail: local part, one `@`, a dotted domain with an alphabetic TLD, and the
  `name [at] domain [dot] tld` spelling;
- IPv4/IPv6: `ipaddress` parses it; loopback, unspecified and multicast are dropped
  (IPv4 candidates come from `numbers.py`, which sees every digit run);
- dates of birth: a date (numeric, ISO or with a month name in 10 languages) with a
  birth word nearby; a date alone is not personal data;
- passports and identity cards: a 6 to 12 character code with letters and digits right
  after a passport / ID-card word, plus the ICAO 9303 check digit when present; all
  digits (the French CNI) only for 9 to 12 digits within 16 characters of the word.

Each is gated: it runs its regex only when the anchor character ("@", ":") or one of
its words is in the text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from souverain.privacy import context, ids
from souverain.privacy.doc import Doc, Hit
from souverain.privacy.keywords import WHOLE, KeywordList

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
# The look-behind sits after the first capital, so that `re` can skip to capitals at C speed.
_BIC = re.compile(r"[A-Z](?<![A-Za-z0-9].)[A-Z]{3}([A-Z]{2})[A-Z0-9]{2}(?:[A-Z0-9]{3})?(?![A-Za-z0-9])")
_BIC_WORDS = KeywordList(["bankverbindung", "bankleitzahl"], "BIC")


_BIC_BEFORE, _BIC_AFTER = 64, 24  # where its bank word may be, before or after it
_BIC_NO_CONTEXT = 0.45  # the most a BIC without a bank word scores


def bic_hits(doc: Doc) -> Iterator[Hit]:
    """BICs near a bank word only: elsewhere an all-caps word can have a BIC's shape."""
    if "BIC" not in doc.found.labels and "BIC" not in doc.extra_labels:
        return
    text = doc.text
    if doc.min_confidence > _BIC_NO_CONTEXT + 1e-9 and "BIC" not in doc.extra_labels:
        # Only a BIC with its bank word nearby can be reported: look around those words
        # (a word up to _BIC_AFTER after the BIC's end, or _BIC_BEFORE before its start;
        # a BIC is at most 11 characters).
        windows = _around(text, doc.found.where("BIC"), before=_BIC_AFTER + 12, after=_BIC_BEFORE + 12)
    else:
        windows = [(0, len(text))]
    for a, b in windows:  # ordered and apart: no BIC is found twice
        for m in _BIC.finditer(text, a, b):  # BICs are written in capitals
            if m.group(1) in _ISO_COUNTRIES:
                yield _bic_hit(doc, m)


def _around(text: str, spans: list[tuple[int, int]], before: int, after: int) -> list[tuple[int, int]]:
    """Merged windows from `before` characters before each span's start to `after` after
    it, widened to whole words (a window must not end inside a word, which the regex
    would take for the word's end)."""
    n = len(text)
    out: list[tuple[int, int]] = []
    for start, _ in spans:
        a, b = max(0, start - before), min(n, start + after)
        while b < n and text[b].isalnum():
            b += 1
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _bic_hit(doc: Doc, m: re.Match[str]) -> Hit:
    has_ctx = "BIC" in context.labels_around(doc, m.start(), m.end(), _BIC_BEFORE, _BIC_AFTER)
    has_digit = any(c.isdigit() for c in m.group(0)[6:])
    conf = 0.9 if has_ctx else (_BIC_NO_CONTEXT if has_digit else 0.25)
    return Hit("BIC", m.start(), m.end(), conf, "bic structure + country")


# ---------------------------------------------------------------------------------------
# E-mail and IP addresses (found from their anchor characters: fast on text without them)

# Found from each "@": the local part is read backwards, the domain forwards.
_LOCAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])")
_EMAIL_OBF = re.compile(
    r"(?<![\w.])([\w.+\-]{1,64})\s*[\[\(\{]\s*(?:at|@)\s*[\]\)\}]\s*([\w\-]+(?:\s*(?:[\[\(\{]\s*(?:dot|\.)\s*[\]\)\}]|\.)\s*[\w\-]+)+)",
    re.IGNORECASE,
)


_EMAIL_OBF_WORDS = KeywordList(["at", "dot"], "EMAIL_OBF", WHOLE)


def email_hits(doc: Doc) -> Iterator[Hit]:
    text = doc.text
    at = text.find("@")
    while at != -1:
        start = at
        while start > 0 and text[start - 1] in _LOCAL and at - start <= 64:
            start -= 1
        local = text[start:at]
        domain = _DOMAIN.match(text, at + 1)
        at = text.find("@", at + 1)
        if (
            domain is None
            or not local
            or (start > 0 and text[start - 1] in _LOCAL)
            or local.startswith(".")
            or local.endswith(".")
            or ".." in local
        ):
            continue
        yield Hit("EMAIL", start, domain.end(), 0.95, "email syntax")
    if "EMAIL_OBF" in doc.found.labels and ("[" in text or "(" in text or "{" in text):
        for m in _EMAIL_OBF.finditer(text):
            yield Hit("EMAIL", m.start(), m.end(), 0.8, "email syntax (obfuscated)")


IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:[0-9]{1,3}\.){3}[0-9]{1,3})?(?![\w:])")
_IP_NEG = context.keyword_regex(["version", "versión", "versione", "build", "release", "v", "ver", "firmware", "oid"])


def ip_hit(doc: Doc, start: int, end: int, value: str) -> Iterator[Hit]:
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
    if _IP_NEG.search(text[max(0, start - 16) : start].lower()):
        conf -= 0.4
    yield Hit("IP_ADDRESS", start, end, conf, f"ipaddress (IPv{addr.version})")


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
    for m in _ipv6_matches(text):
        if m.group(0).count(":") >= 2:
            yield from ip_hit(doc, m.start(), m.end(), m.group(0))


def _ipv6_matches(text: str) -> list[re.Match[str]]:
    """What `_IPV6.finditer(text)` gives, trying the pattern only near colons: a match
    holds two colons at least and starts at most four hex digits before its first one.
    (The pattern starts with a look-behind, so a search tries it at every position.)"""
    out = []
    tried = 0  # every start below this was tried, or lies inside a match
    c = text.find(":")
    while c != -1:
        found = None
        for p in range(max(tried, c - 4), c + 1):
            found = _IPV6.match(text, p)
            if found is not None:
                break
        if found is not None:
            out.append(found)
            tried = found.end()
        else:
            tried = c + 1
        c = text.find(":", max(c + 1, tried))
    return out


# ---------------------------------------------------------------------------------------
# Dates of birth

_DOB_LIST = """
born birth birthday dob d.o.b date-of-birth geboren geb. geburt geburtsdatum geburtstag
né née naissance anniversaire nato nata nascita compleanno nacido nacida nacimiento cumpleaños
geboortedatum verjaardag nací naci nació nacio nacque urodzony urodzona urodzenia urodziny urodziłem urodziłam urodził urodziła narozen narozena narození narodil narodila
født fødsel fødselsdato född födelsedatum syntynyt syntymäaika születés született
rođen rođena rođenja gimęs gimusi gimimo dzimis dzimusi dzimšanas sündinud sünniaeg
nascut născut nașterii nascimento nasceu nascido nascida роден родена рождения γεννήθηκε γέννησης
""".split()
_DOB_WORDS = KeywordList(_DOB_LIST, "DOB")
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


_UNACCENTED = frozenset(("ne", "nee"))


def _birth_word_near(doc: Doc, words: list[tuple[int, int]], start: int, end: int) -> bool:
    """A birth word within the context window of the date (40 before, 24 after)."""
    a, b = context.bounds(doc.text, start, end, 40, 24)
    return any((a <= s and e <= start) or (end <= s and e <= b) for s, e in words)


def dob_hits(doc: Doc) -> Iterator[Hit]:
    """Dates near a birth word: the date regex runs only in the windows around those
    words (before: "born on 3 May 1980"; after: "am 3. Mai 1980 geboren")."""
    text = doc.text
    in_extra = "DOB" in doc.extra_labels
    if "DOB" not in doc.found.labels and not in_extra:
        return
    # "né", "née" fold to "ne", "nee": written without the accent they are the French
    # negation or a code's letters ("NE-5046-226"), not a birth word
    words = [(a, b) for a, b in doc.found.where("DOB") if text[a:b].lower() not in _UNACCENTED]
    if not words and not in_extra:
        return
    windows: list[tuple[int, int]] = []
    for start, end in words:
        a, b = max(0, start - 32), min(len(text), end + 48)
        if windows and a <= windows[-1][1]:
            windows[-1] = (windows[-1][0], b)
        else:
            windows.append((a, b))
    if in_extra:
        windows = [(0, len(text))]
    seen = set()
    for a, b in windows:
        for m in _DATE.finditer(text, a, b):
            if m.start() not in seen and (in_extra or _birth_word_near(doc, words, m.start(), m.end())):
                seen.add(m.start())
                yield Hit("DATE_OF_BIRTH", m.start(), m.end(), 0.85, "date + birth context")


# ---------------------------------------------------------------------------------------
# Passports and identity cards

_DOC_CODE = re.compile(r"(?<![A-Za-z0-9])(?=[A-Za-z0-9]*[0-9][A-Za-z0-9]*[0-9])[A-Za-z0-9]{6,12}(?![A-Za-z0-9])")
_ICAO_W = (7, 3, 1)


def _icao_ok(code: str) -> bool:
    """ICAO 9303 check digit over the first len-1 characters (MRZ document numbers)."""

    def val(c: str) -> int:
        return int(c) if c.isdigit() else ord(c) - 55

    body, check = code[:-1], code[-1]
    return check.isdigit() and sum(val(c) * _ICAO_W[i % 3] for i, c in enumerate(body)) % 10 == int(check)


def document_hits(doc: Doc) -> Iterator[Hit]:
    labels = doc.found.labels
    for type_ in ("PASSPORT", "ID_CARD"):
        if type_ not in labels:
            continue
        for _, kw_end in doc.found.where(type_):
            seg_start = kw_end
            seg = doc.up[seg_start : seg_start + 40]
            m = _DOC_CODE.search(seg)
            if m is None:
                continue
            code = m.group(0)
            if code.isdigit():
                # All digits (the French CNI's 12, Belgian card numbers): only right after
                # the word, 9 to 12 digits, and not a valid national identifier, whose own
                # check and type then decide.
                if not (9 <= len(code) <= 12 and m.start() <= 16) or ids.matches(code, code):
                    continue
                yield Hit(type_, seg_start + m.start(), seg_start + m.end(), 0.7, "digits + context")
                continue
            if any(sc.shape.fullmatch(code) for sc in ids.BY_LENGTH.get(len(code), ())):
                continue  # shaped like a national identifier (whose own check decides)
            conf, validator = 0.8, "pattern + context"
            if len(code) in (9, 10) and _icao_ok(code):
                conf, validator = 0.9, "pattern + context + icao 9303 check digit"
            yield Hit(type_, seg_start + m.start(), seg_start + m.end(), conf, validator)


KEYWORD_LISTS: tuple[KeywordList, ...] = (_BIC_WORDS, _EMAIL_OBF_WORDS, _DOB_WORDS)
