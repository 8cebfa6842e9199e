"""What the scanner reports: `Finding`, the data classes, and the type registry.

A `Finding` is one span of personal data in one string. Its offsets always index the
*original* string (never the normalised copy the detectors read), so that masking and
pseudonymisation cut exactly what the user sent. The matched text is kept in `value` for
the transforms, but it is left out of `repr()` and of `Finding.to_dict()` unless asked
for: findings go into logs and ledger entries, values must not.

Types are short upper-case strings (`EMAIL`, `IBAN`, `FR_NIR`, ...). Each type belongs to
a category (`contact`, `financial`, `national_id`, `person`, ...) and maps to a data
class; `TYPES` is the registry, and a tenant may add types of its own (dictionary and
deny-list entries) whose class defaults to `confidential`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from souverain.classes import DataClass


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """What a finding type is: its category, data class and a one-line description."""

    category: str
    data_class: DataClass
    description: str


P, C, S = DataClass.PERSONAL, DataClass.CONFIDENTIAL, DataClass.SPECIAL

# The built-in types. National identifiers are named <country>_<scheme>.
TYPES: dict[str, TypeInfo] = {
    "EMAIL": TypeInfo("contact", P, "e-mail address"),
    "PHONE": TypeInfo("contact", P, "telephone number (phonenumbers: valid for its region)"),
    "IP_ADDRESS": TypeInfo("online", P, "IPv4 or IPv6 address (not loopback/unspecified)"),
    "IBAN": TypeInfo("financial", P, "IBAN (country format and ISO 7064 mod 97)"),
    "BIC": TypeInfo("financial", C, "BIC / SWIFT code (structure and country; needs context)"),
    "CARD": TypeInfo("financial", P, "payment card number (issuer prefix and Luhn)"),
    "VAT": TypeInfo("business_id", C, "EU VAT number (python-stdnum, per member state)"),
    "DATE_OF_BIRTH": TypeInfo("person", P, "a date introduced as a date of birth"),
    "PERSON": TypeInfo("person", P, "a person's name"),
    "PASSPORT": TypeInfo("document", P, "passport number (pattern and context)"),
    "ID_CARD": TypeInfo("document", P, "identity card number (pattern and context)"),
    "HEALTH": TypeInfo("special", S, "health-related term (GDPR Art. 9), by word list"),
    "AT_SVNR": TypeInfo("national_id", P, "Austria: social insurance number (stdnum.at.vnr)"),
    "BE_NN": TypeInfo("national_id", P, "Belgium: national register number (stdnum.be.nn / be.bis)"),
    "BG_EGN": TypeInfo("national_id", P, "Bulgaria: EGN (stdnum.bg.egn)"),
    "CY_TIC": TypeInfo("national_id", P, "Cyprus: tax identification code (stdnum.cy.vat)"),
    "CZ_RC": TypeInfo("national_id", P, "Czechia and Slovakia: birth number, rodné číslo (stdnum.cz.rc = sk.rc)"),
    "DE_IDNR": TypeInfo("national_id", P, "Germany: tax identification number (stdnum.de.idnr)"),
    "DK_CPR": TypeInfo("national_id", P, "Denmark: CPR number (stdnum.dk.cpr)"),
    "EE_LT_ID": TypeInfo(
        "national_id",
        P,
        "Estonia or Lithuania: personal code, isikukood / asmens kodas (one check: stdnum.ee.ik = lt.asmens)",
    ),
    "ES_DNI": TypeInfo("national_id", P, "Spain: DNI (stdnum.es.dni)"),
    "ES_NIE": TypeInfo("national_id", P, "Spain: NIE (stdnum.es.nie)"),
    "FI_HETU": TypeInfo("national_id", P, "Finland: henkilötunnus (stdnum.fi.hetu)"),
    "FR_NIR": TypeInfo("national_id", P, "France: NIR / social security number (stdnum.fr.nir)"),
    "FR_NIF": TypeInfo("national_id", P, "France: numéro fiscal (stdnum.fr.nif)"),
    "GR_AMKA": TypeInfo("national_id", P, "Greece: AMKA (stdnum.gr.amka)"),
    "HR_OIB": TypeInfo("national_id", P, "Croatia: OIB (stdnum.hr.oib)"),
    "HU_TAX_ID": TypeInfo("national_id", P, "Hungary: adóazonosító jel (own check, mod 11)"),
    "IE_PPS": TypeInfo("national_id", P, "Ireland: PPS number (stdnum.ie.pps)"),
    "IT_CF": TypeInfo("national_id", P, "Italy: codice fiscale (stdnum.it.codicefiscale)"),
    "LU_NIN": TypeInfo("national_id", P, "Luxembourg: national identification number (stdnum luhn + verhoeff)"),
    "LV_PK": TypeInfo("national_id", P, "Latvia: personas kods (stdnum.lv.pvn)"),
    "MT_ID": TypeInfo("national_id", P, "Malta: identity card number (pattern and context only)"),
    "NL_BSN": TypeInfo("national_id", P, "Netherlands: BSN (stdnum.nl.bsn)"),
    "PL_PESEL": TypeInfo("national_id", P, "Poland: PESEL (stdnum.pl.pesel)"),
    "PT_NIF": TypeInfo("national_id", P, "Portugal: NIF (stdnum.pt.nif)"),
    "PT_CC": TypeInfo("national_id", P, "Portugal: Cartão de Cidadão (stdnum.pt.cc)"),
    "RO_CNP": TypeInfo("national_id", P, "Romania: CNP (stdnum.ro.cnp)"),
    "SE_PNR": TypeInfo("national_id", P, "Sweden: personnummer (stdnum.se.personnummer)"),
    "SI_EMSO": TypeInfo("national_id", P, "Slovenia: EMŠO (stdnum.si.emso)"),
}
del P, C, S

CUSTOM = TypeInfo("custom", DataClass.CONFIDENTIAL, "tenant dictionary or deny-list entry")


def type_info(type_: str) -> TypeInfo:
    return TYPES.get(type_, CUSTOM)


@dataclass(frozen=True, slots=True)
class Finding:
    """One span of personal data.

    `start`/`end` index the original string (`text[start:end] == value`). `path` says
    which string of a request the span is in, as keys and indexes from the request's
    root, e.g. `("messages", 2, "content", 0, "text")`; it is `()` for plain text.
    `validator` names what confirmed the match (`"stdnum.fr.nir"`, `"luhn"`,
    `"list+context"`, ...). `confidence` is in [0, 1]; the scanner drops findings below
    the tenant's threshold for the type.
    """

    type: str
    start: int
    end: int
    confidence: float
    validator: str
    value: str = field(repr=False)
    path: tuple[str | int, ...] = ()

    @property
    def category(self) -> str:
        return type_info(self.type).category

    @property
    def location(self) -> str:
        """`path` as text: `messages[2].content[0].text`; empty for plain text."""
        return path_str(self.path)

    def with_path(self, path: tuple[str | int, ...]) -> Finding:
        return Finding(self.type, self.start, self.end, self.confidence, self.validator, self.value, path)

    def to_dict(self, include_value: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "category": self.category,
            "start": self.start,
            "end": self.end,
            "validator": self.validator,
            "confidence": round(self.confidence, 3),
        }
        if self.path:
            out["location"] = self.location
        if include_value:
            out["value"] = self.value
        return out


# A path element: the step from a string into the JSON text it holds (payload.py).
INTO_JSON = "\x00json"


def path_str(path: tuple[str | int, ...]) -> str:
    out = []
    for key in path:
        if key == INTO_JSON:
            continue
        if isinstance(key, int):
            out.append(f"[{key}]")
        else:
            out.append(f".{key}" if out else key)
    return "".join(out)
