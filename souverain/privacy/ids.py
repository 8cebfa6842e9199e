"""National person identifiers of the 27 member states, validated with python-stdnum.

Each `IdScheme` says what a candidate must look like once compacted (separators removed,
upper case) and which check confirms it. python-stdnum does the checking wherever it has
a module for a person identifier; for the four states where it has none, a small check of
our own is used (Hungary: adóazonosító jel, mod 11; Luxembourg: matricule, date + Luhn +
Verhoeff built on stdnum's generic modules) or, for Malta, the shape and a context word
only, since the identity card number carries no check digit.

`base` is the confidence without any context word. It was set from how often a random
number of the scheme's length passes its shape and check, i.e. how often an order number
would be taken for it (`bench/privacy/false_pass.py` measures it):

- STRONG (0.9): at most ~1 in 500 random strings of the shape pass (CNP, HETU, LU, FR NIF);
- MEDIUM (0.7): at most ~1 in 50 (date plus check digit: NIR, PESEL, EGN, AMKA, EMŠO, the
  Hungarian tax id whose leading 8 and date leave one random 10-digit number in 220, ...),
  and the schemes whose shape mixes letters into digits (ES DNI/NIE, IE PPS, CY, PT CC):
  a digits-only order number cannot take that shape at all;
- WEAK (0.5): more than that, with a check digit (BSN's 11-test, OIB, PT NIF, AT SVNR,
  ten-digit Czech numbers): exactly the default threshold, so a bare number that passes
  one is reported (the product's choice: a number that passes an identifier's check
  counts as personal data, the safe side), and a negative word ("Order no.") or a word
  naming another identifier puts it under;
- DATE_ONLY (0.45): no check digit at all, only a date (the Danish CPR since 2007, the
  nine-digit Czech numbers issued before 1954): under the default threshold, so these need
  a context word ("CPR", "rodné číslo", a JSON key named like them, or a generic "tax
  number") or the scheme's own written layout (`layout`, e.g. "850730/0335").

Several schemes share a shape (eleven digits: DE IdNr, BE NN, EE/LT, LV, PL PESEL, GR AMKA,
HR OIB) and a number can pass more than one check; the scanner then takes the scheme whose
own keyword is nearby, else the strongest check, else the first in `SCHEMES` order.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

from stdnum import exceptions as stdnum_exceptions
from stdnum import luhn, verhoeff
from stdnum.at import vnr as at_vnr
from stdnum.be import bis as be_bis
from stdnum.be import nn as be_nn
from stdnum.bg import egn as bg_egn
from stdnum.cy import vat as cy_vat
from stdnum.cz import rc as cz_rc
from stdnum.de import idnr as de_idnr
from stdnum.dk import cpr as dk_cpr
from stdnum.ee import ik as ee_ik
from stdnum.es import dni as es_dni
from stdnum.es import nie as es_nie
from stdnum.fi import hetu as fi_hetu
from stdnum.fr import nif as fr_nif
from stdnum.fr import nir as fr_nir
from stdnum.gr import amka as gr_amka
from stdnum.hr import oib as hr_oib
from stdnum.ie import pps as ie_pps
from stdnum.it import codicefiscale as it_cf
from stdnum.lv import pvn as lv_pvn
from stdnum.nl import bsn as nl_bsn
from stdnum.pl import pesel as pl_pesel
from stdnum.pt import cc as pt_cc
from stdnum.pt import nif as pt_nif
from stdnum.ro import cnp as ro_cnp
from stdnum.se import personnummer as se_pnr
from stdnum.si import emso as si_emso

STRONG, MEDIUM, WEAK, DATE_ONLY, SHAPE_ONLY = 0.9, 0.7, 0.5, 0.45, 0.2


def _hu_tax_id(number: str) -> bool:
    """Hungarian adóazonosító jel: 8, days since 1867-01-01 (5 digits), 3 digits, check."""
    if len(number) != 10 or not number.isdigit() or number[0] != "8":
        return False
    days = int(number[1:6])
    if days == 0 or datetime.date(1867, 1, 1) + datetime.timedelta(days=days) > datetime.date.today():
        return False
    return sum(int(d) * (i + 1) for i, d in enumerate(number[:9])) % 11 == int(number[9])


def _lu_nin(number: str) -> bool:
    """Luxembourg matricule: YYYYMMDD XXX, then a Luhn and a Verhoeff check digit over
    the first 11 digits."""
    if len(number) != 13 or not number.isdigit():
        return False
    try:
        _lu_born(number)
    except ValueError:
        return False
    body = number[:11]
    return luhn.calc_check_digit(body) == number[11] and verhoeff.calc_check_digit(body) == number[12]


def _lu_born(number: str) -> datetime.date:
    return datetime.date(int(number[:4]), int(number[4:6]), int(number[6:8]))


def _lv_pk(number: str) -> bool:
    """Latvian personas kods (not a company VAT number): DDMMYY... or the new 32... form."""
    return len(number) == 11 and number[0] in "0123" and lv_pvn.is_valid(number)


def _be(number: str) -> bool:
    return be_nn.is_valid(number) or be_bis.is_valid(number)


def _be_born(number: str) -> datetime.date | None:
    return be_nn.get_birth_date(number) if be_nn.is_valid(number) else be_bis.get_birth_date(number)


def _ee_lt(number: str) -> bool:
    """Estonian or Lithuanian personal code: within the shape [1-6] + 10 digits, stdnum's
    ee.ik and lt.asmens accept the same numbers (the Lithuanian 9..., with no birth date,
    is outside the shape); either says yes for both."""
    return ee_ik.is_valid(number)


def _always(number: str) -> bool:
    return True


# -- prechecks ----------------------------------------------------------------------
# Necessary conditions, cheaper than `check`: the scheme's check-digit formula as
# python-stdnum computes it, in compiled integer arithmetic on the ASCII digits the
# shape has already let through, without stdnum's input cleaning and generator
# expressions (most of the cost of a call). A lookalike is turned down here; `check`
# (python-stdnum) still decides for the rest. tests/test_privacy_detectors.py checks
# that none turns down a number its check accepts.


def _digit(number: str, i: int) -> int:
    return ord(number[i]) - 48


def _wsum(number: str, weights: tuple[int, ...]) -> int:
    """The sum of digit times weight over the first len(weights) digits."""
    total = 0
    for i in range(len(weights)):
        total += (ord(number[i]) - 48) * weights[i]
    return total


def _luhn(number: str) -> int:
    """stdnum.luhn.checksum of a string of digits (0 when valid)."""
    total = 0
    double = False
    for i in range(len(number) - 1, -1, -1):
        d = ord(number[i]) - 48
        if double:
            d *= 2
            if d > 9:
                d -= 9
        total += d
        double = not double
    return total % 10


def _mod_11_10(number: str) -> int:
    """stdnum.iso7064.mod_11_10.checksum (1 when valid)."""
    check = 5
    for i in range(len(number)):
        check = ((check or 10) * 2 % 11 + ord(number[i]) - 48) % 10
    return check


def _pre_ro(n: str) -> bool:  # stdnum.ro.cnp.calc_check_digit
    c = _wsum(n, (2, 7, 9, 1, 4, 6, 3, 5, 8, 2, 7, 9)) % 11
    return (1 if c == 10 else c) == _digit(n, 12)


def _pre_si(n: str) -> bool:  # stdnum.si.emso.calc_check_digit
    return -_wsum(n, (7, 6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)) % 11 % 10 == _digit(n, 12)


def _pre_fr_nif(n: str) -> bool:  # stdnum.fr.nif.calc_check_digits
    return int(n[:10]) % 511 == int(n[10:])


def _pre_fr_nir(n: str) -> bool:  # stdnum.fr.nir.calc_check_digits (Corsica: 2A, 2B)
    if n[6] == "A" or n[6] == "B":
        n = n[:5] + ("19" if n[6] == "A" else "18") + n[7:]
    return 97 - int(n[:13]) % 97 == int(n[13:])


def _pre_lu(n: str) -> bool:  # the Luhn digit of the matricule (the Verhoeff one is left to _lu_nin)
    return _luhn(n[:12]) == 0


def _pre_pesel(n: str) -> bool:  # stdnum.pl.pesel.calc_check_digit
    return (10 - _wsum(n, (1, 3, 7, 9, 1, 3, 7, 9, 1, 3))) % 10 == _digit(n, 10)


def _pre_be(n: str) -> bool:  # stdnum.be.nn._checksum: born in the 1900s, or in the 2000s
    body, check = int(n[:9]), int(n[9:])
    return 97 - body % 97 == check or 97 - (2_000_000_000 + body) % 97 == check


def _pre_ee(n: str) -> bool:  # stdnum.ee.ik.calc_check_digit (and lt.asmens's, the same)
    c = _wsum(n, (1, 2, 3, 4, 5, 6, 7, 8, 9, 1)) % 11
    if c == 10:
        c = _wsum(n, (3, 4, 5, 6, 7, 8, 9, 1, 2, 3)) % 11
    return c % 10 == _digit(n, 10)


def _pre_lv(n: str) -> bool:  # stdnum.lv.pvn.calc_check_digit_pers
    return (1 + _wsum(n, (10, 5, 8, 4, 2, 1, 6, 3, 7, 9))) % 11 % 10 == _digit(n, 10)


def _pre_bg(n: str) -> bool:  # stdnum.bg.egn.calc_check_digit
    return _wsum(n, (2, 4, 8, 5, 10, 9, 7, 3, 6)) % 11 % 10 == _digit(n, 9)


def _pre_at(n: str) -> bool:  # stdnum.at.vnr.calc_check_digit (the fourth digit)
    return _wsum(n, (3, 7, 9, 0, 5, 8, 4, 2, 1, 6)) % 11 == _digit(n, 3)


def _pre_cz(n: str) -> bool:  # stdnum.cz.rc: ten digits carry a mod 11 check (nine none)
    return int(n[:9]) % 11 % 10 == _digit(n, 9)


def _pre_dk(n: str) -> bool:  # stdnum.dk.cpr: no check digit since 2007, a date (DDMMYY)
    return 1 <= int(n[2:4]) <= 12 and 1 <= int(n[:2]) <= 31


def _pre_se(n: str) -> bool:  # stdnum.se.personnummer: Luhn over the last ten digits
    return _luhn(n[-10:]) == 0


def _pre_nl(n: str) -> bool:  # stdnum.nl.bsn.checksum (the 11-test)
    return (_wsum(n, (9, 8, 7, 6, 5, 4, 3, 2)) - _digit(n, 8)) % 11 == 0


def _pre_pt(n: str) -> bool:  # stdnum.pt.nif.calc_check_digit
    return (11 - _wsum(n, (9, 8, 7, 6, 5, 4, 3, 2))) % 11 % 10 == _digit(n, 8)


def _pre_gr(n: str) -> bool:  # stdnum.gr.amka: Luhn
    return _luhn(n) == 0


def _pre_mod_11_10(n: str) -> bool:  # DE IdNr, HR OIB
    return _mod_11_10(n) == 1


MAX_AGE = 130  # years: anyone with a record in a system today was born after this


def plausible_birth(born: Callable[[str], datetime.date | None], number: str) -> bool:
    """Whether the birth date `number` encodes could be a living person's (or a recent
    record's): not in the future, at most MAX_AGE years ago. A number whose date stdnum
    cannot give (a newer format without one) is left to the check."""
    try:
        date = born(number)
    except (ValueError, KeyError, stdnum_exceptions.ValidationError):
        return True
    if date is None:
        return True
    today = datetime.date.today()
    return today.year - MAX_AGE <= date.year and date <= today


@dataclass(frozen=True, slots=True)
class IdScheme:
    type: str
    shape: re.Pattern[str]  # fullmatch on the compacted candidate
    check: Callable[[str], bool]
    base: float
    validator: str
    # A stricter regex on the candidate as written: when it matches, the layout is the
    # scheme's own (e.g. "811228-9874"), which is worth MEDIUM even for a weak check.
    layout: re.Pattern[str] | None = None
    raw: bool = False  # the check needs the separators kept (FI century sign)
    # A necessary condition, cheaper than `check` (the `_pre_*` functions above: the
    # scheme's check-digit formula in compiled arithmetic), so most lookalikes are turned
    # down without a call into python-stdnum. `check` still decides.
    precheck: Callable[[str], bool] | None = None
    # The birth date the number encodes (python-stdnum's get_birth_date): a number that
    # passes its check but encodes a date in the future or more than `MAX_AGE` years ago
    # belongs to no one alive (stdnum accepts PESELs of 2279 and EGNs of 1852).
    born: Callable[[str], datetime.date | None] | None = None
    # The compacted lengths, when a type is split into schemes by length (CZ_RC: ten
    # digits carry a check digit, nine do not); else `_LENGTHS` below.
    lengths: tuple[int, ...] = ()


def _s(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


SCHEMES: tuple[IdScheme, ...] = (
    IdScheme(
        "FR_NIR", _s(r"[1-478]\d{4}(?:\d\d|2A|2B)\d{8}"), fr_nir.is_valid, MEDIUM, "stdnum.fr.nir", precheck=_pre_fr_nir
    ),
    # Before the CNP: a matricule passes the CNP's weaker check far more often than
    # a CNP passes the matricule's Luhn and Verhoeff digits.
    IdScheme(
        "LU_NIN", _s(r"\d{13}"), _lu_nin, STRONG, "stdnum.luhn+verhoeff (lu matricule)", born=_lu_born, precheck=_pre_lu
    ),
    IdScheme(
        "RO_CNP",
        _s(r"[1-9]\d{12}"),
        ro_cnp.is_valid,
        STRONG,
        "stdnum.ro.cnp",
        born=ro_cnp.get_birth_date,
        precheck=_pre_ro,
    ),
    IdScheme(
        "SI_EMSO",
        _s(r"\d{13}"),
        si_emso.is_valid,
        MEDIUM,
        "stdnum.si.emso",
        born=si_emso.get_birth_date,
        precheck=_pre_si,
    ),
    IdScheme("FR_NIF", _s(r"[0-3]\d{12}"), fr_nif.is_valid, STRONG, "stdnum.fr.nif", precheck=_pre_fr_nif),
    IdScheme(
        "IT_CF",
        _s(r"[A-Z]{6}[0-9LMNP-V]{2}[A-EHLMPR-T][0-9LMNP-V]{2}[A-Z][0-9LMNP-V]{3}[A-Z]"),
        it_cf.is_valid,
        STRONG,
        "stdnum.it.codicefiscale",
    ),
    IdScheme("PT_CC", _s(r"\d{9}[A-Z]{2}\d"), pt_cc.is_valid, MEDIUM, "stdnum.pt.cc"),
    IdScheme("ES_NIE", _s(r"[XYZ]\d{7}[A-Z]"), es_nie.is_valid, MEDIUM, "stdnum.es.nie"),
    IdScheme("ES_DNI", _s(r"\d{8}[A-Z]"), es_dni.is_valid, MEDIUM, "stdnum.es.dni"),
    IdScheme("CY_TIC", _s(r"[0-9]\d{7}[A-Z]"), cy_vat.is_valid, MEDIUM, "stdnum.cy.vat"),
    IdScheme("IE_PPS", _s(r"\d{7}[A-W][ABHW]?"), ie_pps.is_valid, MEDIUM, "stdnum.ie.pps"),
    IdScheme("FI_HETU", _s(r"\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]"), fi_hetu.is_valid, STRONG, "stdnum.fi.hetu", raw=True),
    IdScheme(
        "PL_PESEL",
        _s(r"\d{11}"),
        pl_pesel.is_valid,
        MEDIUM,
        "stdnum.pl.pesel",
        born=pl_pesel.get_birth_date,
        precheck=_pre_pesel,
    ),
    IdScheme(
        "BE_NN",
        _s(r"\d{11}"),
        _be,
        MEDIUM,
        "stdnum.be.nn",
        born=_be_born,
        precheck=_pre_be,
        layout=_s(r"\d\d\.\d\d\.\d\d-\d{3}\.\d\d"),
    ),
    # Estonia's isikukood and Lithuania's asmens kodas: one layout, one check (stdnum's
    # lt.asmens calls ee.ik's), so one scheme: every valid code is valid as both.
    IdScheme(
        "EE_LT_ID",
        _s(r"[1-6]\d{10}"),
        _ee_lt,
        MEDIUM,
        "stdnum.ee.ik = lt.asmens",
        born=ee_ik.get_birth_date,
        precheck=_pre_ee,
    ),
    IdScheme(
        "GR_AMKA",
        _s(r"\d{11}"),
        gr_amka.is_valid,
        MEDIUM,
        "stdnum.gr.amka",
        born=gr_amka.get_birth_date,
        precheck=_pre_gr,
    ),
    IdScheme("LV_PK", _s(r"[0-3]\d{10}"), _lv_pk, MEDIUM, "stdnum.lv.pvn", precheck=_pre_lv, layout=_s(r"\d{6}-\d{5}")),
    IdScheme(
        "DE_IDNR",
        _s(r"[1-9]\d{10}"),
        de_idnr.is_valid,
        MEDIUM,
        "stdnum.de.idnr",
        precheck=_pre_mod_11_10,
        layout=_s(r"\d\d \d{3} \d{3} \d{3}"),
    ),
    IdScheme("HR_OIB", _s(r"\d{11}"), hr_oib.is_valid, WEAK, "stdnum.hr.oib", precheck=_pre_mod_11_10),
    IdScheme(
        "BG_EGN", _s(r"\d{10}"), bg_egn.is_valid, MEDIUM, "stdnum.bg.egn", born=bg_egn.get_birth_date, precheck=_pre_bg
    ),
    IdScheme(
        "AT_SVNR", _s(r"\d{10}"), at_vnr.is_valid, WEAK, "stdnum.at.vnr", precheck=_pre_at, layout=_s(r"\d{4} \d{6}")
    ),
    IdScheme(
        "CZ_RC",
        _s(r"\d{10}"),
        cz_rc.is_valid,
        WEAK,
        "stdnum.cz.rc",
        lengths=(10,),
        born=cz_rc.get_birth_date,
        precheck=_pre_cz,
        layout=_s(r"\d{6}/\d{4}"),
    ),
    # Nine digits: the numbers issued before 1954, a date and a serial, no check digit.
    IdScheme(
        "CZ_RC",
        _s(r"\d{9}"),
        cz_rc.is_valid,
        DATE_ONLY,
        "stdnum.cz.rc",
        lengths=(9,),
        born=cz_rc.get_birth_date,
        layout=_s(r"\d{6}/\d{3}"),
    ),
    IdScheme(
        "SE_PNR",
        _s(r"(?:19|20)?\d{10}"),
        se_pnr.is_valid,
        MEDIUM,
        "stdnum.se.personnummer",
        precheck=_pre_se,
        layout=_s(r"(?:19|20)?\d{6}[-+]\d{4}"),
    ),
    # One random 10-digit number in 220 passes (leading 8, a date, mod 11): medium.
    IdScheme("HU_TAX_ID", _s(r"8\d{9}"), _hu_tax_id, MEDIUM, "mod 11 (hu adóazonosító jel)"),
    IdScheme(
        "DK_CPR",
        _s(r"\d{10}"),
        dk_cpr.is_valid,
        DATE_ONLY,
        "stdnum.dk.cpr",
        precheck=_pre_dk,
        layout=_s(r"\d{6}-\d{4}"),
    ),
    IdScheme("NL_BSN", _s(r"\d{9}"), nl_bsn.is_valid, WEAK, "stdnum.nl.bsn", precheck=_pre_nl),
    IdScheme("PT_NIF", _s(r"[1-3]\d{8}"), pt_nif.is_valid, WEAK, "stdnum.pt.nif", precheck=_pre_pt),
    IdScheme("MT_ID", _s(r"\d{3,7}[MGAPLHBZ]"), _always, SHAPE_ONLY, "shape (mt identity card)"),
)

TYPES = frozenset(s.type for s in SCHEMES)
SCHEMES_BY_TYPE = {s.type: s for s in SCHEMES}

# Schemes by compacted length, so a candidate tries only the schemes it could be.
BY_LENGTH: dict[int, tuple[IdScheme, ...]] = {}
_LENGTHS = {
    "FR_NIR": (15,),
    "RO_CNP": (13,),
    "SI_EMSO": (13,),
    "LU_NIN": (13,),
    "FR_NIF": (13,),
    "IT_CF": (16,),
    "PT_CC": (12,),
    "ES_NIE": (9,),
    "ES_DNI": (9,),
    "CY_TIC": (9,),
    "IE_PPS": (8, 9),
    "FI_HETU": (11, 10),
    "PL_PESEL": (11,),
    "BE_NN": (11,),
    "EE_LT_ID": (11,),
    "GR_AMKA": (11,),
    "LV_PK": (11,),
    "DE_IDNR": (11,),
    "HR_OIB": (11,),
    "BG_EGN": (10,),
    "AT_SVNR": (10,),
    "CZ_RC": (9, 10),
    "SE_PNR": (10, 12),
    "HU_TAX_ID": (10,),
    "DK_CPR": (10,),
    "NL_BSN": (9,),
    "PT_NIF": (9,),
    "MT_ID": (4, 5, 6, 7, 8),
}
for _scheme in SCHEMES:
    for _n in _scheme.lengths or _LENGTHS[_scheme.type]:
        BY_LENGTH.setdefault(_n, ())
        BY_LENGTH[_n] = (*BY_LENGTH[_n], _scheme)
del _scheme, _n


def passes(scheme: IdScheme, compact: str, written: str) -> bool:
    if scheme.raw:
        # FI: the century sign is part of the number; the dash was compacted away.
        number = written.replace(" ", "")
        return scheme.shape.fullmatch(number) is not None and scheme.check(number)
    if scheme.shape.fullmatch(compact) is None:
        return False
    if scheme.precheck is not None and not scheme.precheck(compact):
        return False
    return scheme.check(compact) and (scheme.born is None or plausible_birth(scheme.born, compact))


def matches(compact: str, written: str) -> list[IdScheme]:
    """The schemes whose shape and check `compact` passes. `written` is the candidate as
    it appears (separators kept), for the schemes that need it."""
    return [scheme for scheme in BY_LENGTH.get(len(compact), ()) if passes(scheme, compact, written)]
