"""Valid (and near-miss) national identifiers for the corpus, checked with python-stdnum.

`generate(type_, rng)` returns (compact, written): a random identifier that the scheme's
validator accepts, and the way people write it (with the country's usual separators, or
compact). Generation is by structure where there is one (a date of birth, a county code)
and by trying every check digit (or pair, or letter) until the validator accepts it, so
the numbers are valid by python-stdnum's own definition. `near_miss()` changes the check
character so that the validator rejects it: the hard negatives of the corpus.
"""

from __future__ import annotations

import datetime
import random
import string
from collections.abc import Callable

from stdnum import luhn, verhoeff

from souverain.privacy import ids

DIGITS = string.digits
UPPER = string.ascii_uppercase


def _date(rng: random.Random, start: int = 1940, end: int = 2005) -> datetime.date:
    return datetime.date(start, 1, 1) + datetime.timedelta(days=rng.randrange((end - start) * 365))


def _d(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(DIGITS) for _ in range(n))


def _complete(body: str, suffixes, check: Callable[[str], bool], rng: random.Random) -> str | None:
    cands = list(suffixes)
    rng.shuffle(cands)
    for s in cands:
        if check(body + s):
            return body + s
    return None


def _two_digits() -> list[str]:
    return [f"{i:02d}" for i in range(100)]


def _gen(type_: str, rng: random.Random) -> tuple[str, str] | None:
    check = ids.SCHEMES_BY_TYPE[type_].check
    d = _date(rng)
    yy, mm, dd = f"{d.year % 100:02d}", f"{d.month:02d}", f"{d.day:02d}"
    if type_ == "FR_NIR":
        dept = rng.choice([f"{i:02d}" for i in range(1, 96) if i != 20])
        n = _complete(rng.choice("12") + yy + mm + dept + _d(rng, 3) + _d(rng, 3), _two_digits(), check, rng)
        return n and (n, f"{n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:10]} {n[10:13]} {n[13:]}")
    if type_ == "RO_CNP":
        s = "12"[rng.randrange(2)] if d.year < 2000 else "56"[rng.randrange(2)]
        county = f"{rng.randrange(1, 47):02d}"
        n = _complete(s + yy + mm + dd + county + _d(rng, 3), DIGITS, check, rng)
        return n and (n, n)
    if type_ == "SI_EMSO":
        n = _complete(dd + mm + f"{d.year % 1000:03d}" + "50" + _d(rng, 3), DIGITS, check, rng)
        return n and (n, n)
    if type_ == "LU_NIN":
        body = f"{d.year}{mm}{dd}" + _d(rng, 3)
        n = body + luhn.calc_check_digit(body) + verhoeff.calc_check_digit(body)
        return (n, n) if check(n) else None
    if type_ == "FR_NIF":
        n = _complete(rng.choice("0123") + _d(rng, 9), [f"{i:03d}" for i in range(1000)], check, rng)
        return n and (n, f"{n[:2]} {n[2:4]} {n[4:7]} {n[7:10]} {n[10:]}")
    if type_ == "IT_CF":
        month = "ABCDEHLMPRST"[d.month - 1]
        day = f"{d.day + rng.choice((0, 40)):02d}"
        body = (
            "".join(rng.choice("BCDFGHLMNPRSTVZ") for _ in range(6))
            + yy
            + month
            + day
            + rng.choice("ABCDEFGHLMZ")
            + _d(rng, 3)
        )
        n = _complete(body, UPPER, check, rng)
        return n and (n, n)
    if type_ == "PT_CC":
        n = _complete(
            _d(rng, 8), [c + v + k for c in DIGITS for v in ("ZZ", "ZY", "ZX", "AB") for k in DIGITS][:400], check, rng
        )
        return n and (n, f"{n[:8]} {n[8]} {n[9:]}")
    if type_ == "ES_NIE":
        n = _complete(rng.choice("XYZ") + _d(rng, 7), UPPER, check, rng)
        return n and (n, n)
    if type_ == "ES_DNI":
        n = _complete(_d(rng, 8), UPPER, check, rng)
        return n and (n, rng.choice([n, f"{n[:8]}-{n[8]}"]))
    if type_ == "CY_TIC":
        n = _complete(rng.choice("013459") + _d(rng, 7), UPPER, check, rng)
        return n and (n, n)
    if type_ == "IE_PPS":
        n = _complete(_d(rng, 7), [c + w for c in UPPER[:23] for w in ("", "W", "A", "H")], check, rng)
        return n and (n, n)
    if type_ == "FI_HETU":
        sign = "-" if d.year < 2000 else "A"
        n = _complete(
            dd + mm + yy + sign + f"{rng.randrange(2, 900):03d}", DIGITS + "ABCDEFHJKLMNPRSTUVWXY", check, rng
        )
        return n and (n.replace("-", ""), n)
    if type_ == "PL_PESEL":
        m = d.month + (20 if d.year >= 2000 else 0)
        n = _complete(yy + f"{m:02d}" + dd + _d(rng, 4), DIGITS, check, rng)
        return n and (n, n)
    if type_ == "BE_NN":
        n = _complete(yy + mm + dd + f"{rng.randrange(1, 998):03d}", _two_digits(), check, rng)
        return n and (n, rng.choice([n, f"{n[:2]}.{n[2:4]}.{n[4:6]}-{n[6:9]}.{n[9:]}"]))
    if type_ == "EE_LT_ID":
        first = "34"[rng.randrange(2)] if d.year < 2000 else "56"[rng.randrange(2)]
        n = _complete(first + yy + mm + dd + _d(rng, 3), DIGITS, check, rng)
        return n and (n, n)
    if type_ == "GR_AMKA":
        n = _complete(dd + mm + yy + _d(rng, 4), DIGITS, check, rng)
        return n and (n, n)
    if type_ == "LV_PK":
        century = "1" if d.year < 2000 else "2"
        n = _complete(dd + mm + yy + century + _d(rng, 3), DIGITS, check, rng)
        return n and (n, f"{n[:6]}-{n[6:]}")
    if type_ == "DE_IDNR":
        for _ in range(2000):
            digits = list(DIGITS)
            rng.shuffle(digits)
            body = digits[:9]
            body.insert(rng.randrange(10), rng.choice(body))
            if body[0] == "0":
                continue
            n = _complete("".join(body), DIGITS, check, rng)
            if n:
                return n, rng.choice([n, f"{n[:2]} {n[2:5]} {n[5:8]} {n[8:]}"])
        return None
    if type_ == "HR_OIB":
        n = _complete(_d(rng, 10), DIGITS, check, rng)
        return n and (n, n)
    if type_ == "BG_EGN":
        m = d.month + (40 if d.year >= 2000 else 0)
        n = _complete(yy + f"{m:02d}" + dd + _d(rng, 3), DIGITS, check, rng)
        return n and (n, n)
    if type_ == "AT_SVNR":
        body = f"{rng.randrange(100, 1000)}"
        for c in DIGITS:
            n = body + c + dd + mm + yy
            if check(n):
                return n, f"{n[:4]} {n[4:]}"
        return None
    if type_ == "CZ_RC":
        m = d.month + rng.choice((0, 50))
        yy2 = f"{max(d.year, 1954) % 100:02d}"
        n = _complete(yy2 + f"{m:02d}" + dd + _d(rng, 3), DIGITS, check, rng)
        return n and (n, f"{n[:6]}/{n[6:]}")
    if type_ == "SE_PNR":
        n = _complete(yy + mm + dd + _d(rng, 3), DIGITS, check, rng)
        return n and (n, f"{n[:6]}-{n[6:]}")
    if type_ == "DK_CPR":
        n = _complete(dd + mm + yy, [f"{i:04d}" for i in rng.sample(range(10000), 200)], check, rng)
        return n and (n, f"{n[:6]}-{n[6:]}")
    if type_ == "NL_BSN":
        n = _complete(rng.choice("123456") + _d(rng, 7), DIGITS, check, rng)
        return n and (n, n)
    if type_ == "PT_NIF":
        n = _complete(rng.choice("123") + _d(rng, 7), DIGITS, check, rng)
        return n and (n, n)
    if type_ == "HU_TAX_ID":
        days = (d - datetime.date(1867, 1, 1)).days
        n = _complete("8" + f"{days:05d}" + _d(rng, 3), DIGITS, check, rng)
        return n and (n, n)
    raise KeyError(type_)


def generate(type_: str, rng: random.Random) -> tuple[str, str]:
    for _ in range(200):
        out = _gen(type_, rng)
        if out:
            return out
    raise RuntimeError(f"could not generate {type_}")


def near_miss(type_: str, written: str, rng: random.Random) -> str | None:
    """`written` with one character changed so that the scheme's check fails (and no
    other scheme of the same length accepts it)."""
    for _ in range(50):
        pos = max(i for i, c in enumerate(written) if c.isalnum())
        if rng.random() < 0.3:
            pos = rng.choice([i for i, c in enumerate(written) if c.isdigit()])
        alphabet = DIGITS if written[pos].isdigit() else UPPER
        new = written[:pos] + rng.choice([c for c in alphabet if c != written[pos]]) + written[pos + 1 :]
        compact = "".join(c for c in new if c.isalnum()).upper()
        if not ids.matches(compact, new):
            return new
    return None


GENERATED_TYPES = tuple(s.type for s in ids.SCHEMES if s.type != "MT_ID")
