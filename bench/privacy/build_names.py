"""Build souverain/privacy/data/names.tsv, the name lists shipped with the scanner.

Run once (and again only to refresh the lists); the output is committed:

    .venv/bin/python -m pip install --require-hashes --no-deps -r requirements/bench-privacy.lock
    .venv/bin/python bench/privacy/build_names.py

Source: the person and lorem providers of Faker (MIT licence), for the European locales
below. Each line of the output is `token<TAB>flags`, lower-cased, where flags is a sum of
1 (a first name), 2 (a surname) and 4 (a common word in one of the languages: the lorem
word lists, months and weekdays), so that a lone "Rose" or "Mark" is not taken for a name.

The benchmark's corpus generator also draws names from Faker, so a name test on that
corpus alone would be circular. `held_out()` marks one name in ten (by a hash of the
name); the benchmark's held-out run removes those from a copy of this table, passes it as
`ScannerConfig.names_table`, and draws its names only from them: that measures the
detector on names it has never seen (context rules only).
"""

from __future__ import annotations

import hashlib
import importlib
import re
import unicodedata
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "souverain" / "privacy" / "data" / "names.tsv"

# EU member states, plus the EEA, Switzerland and the UK (people from there live in the EU too).
PERSON_LOCALES = [
    "bg_BG",
    "cs_CZ",
    "da_DK",
    "de_AT",
    "de_CH",
    "de_DE",
    "de_LU",
    "el_GR",
    "en_GB",
    "en_IE",
    "es_ES",
    "es_CA",
    "et_EE",
    "fi_FI",
    "fr_BE",
    "fr_CH",
    "fr_FR",
    "ga_IE",
    "hr_HR",
    "hu_HU",
    "is_IS",
    "it_IT",
    "lt_LT",
    "lv_LV",
    "nl_BE",
    "nl_NL",
    "no_NO",
    "pl_PL",
    "pt_PT",
    "ro_RO",
    "sk_SK",
    "sl_SI",
    "sv_SE",
]
LOREM_LOCALES = ["cs_CZ", "da_DK", "de_DE", "el_GR", "en_US", "es_ES", "fr_FR", "it_IT", "nl_NL", "pl_PL"]
# Words that are first names somewhere but mostly something else in EU prose.
EXTRA_WORDS = """
monday tuesday wednesday thursday friday saturday sunday montag dienstag mittwoch donnerstag freitag samstag sonntag
lundi mardi mercredi jeudi vendredi samedi dimanche lunedì martedì mercoledì giovedì venerdì sabato domenica
lunes martes miércoles jueves viernes sábado domingo maandag dinsdag woensdag donderdag vrijdag zaterdag zondag
january february march april may june july august september october november december januar februar märz mai juni juli
oktober dezember janvier février mars avril juin juillet août septembre octobre novembre décembre gennaio febbraio marzo
aprile maggio giugno luglio agosto settembre ottobre dicembre enero febrero abril mayo junio julio septiembre octubre
noviembre diciembre januari februari maart mei augustus
hello dear thanks thank best regards kind please note bank street road city paris london berlin rome roma madrid lisbon
lisboa vienna wien brussels bruxelles amsterdam warsaw warszawa prague praha dublin athens sofia bucharest budapest
florence firenze milano milan lyon nice victoria lourdes sierra mercedes porsche ferrari dior chanel christian catholic
europe europa france germany italy spain poland austria belgium ireland portugal sweden denmark finland greece
president minister doctor professor madame monsieur herr frau signora signor señor señora
""".split()

_TOKEN = re.compile(r"[^\W\d_][\w'’\-]*", re.UNICODE)


def held_out(name: str) -> bool:
    """True for the one name in ten kept out of the shipped lists (benchmark hold-out)."""
    return hashlib.sha1(name.casefold().encode()).digest()[0] % 10 == 0


def _names(attr_values) -> list[str]:
    if isinstance(attr_values, dict):
        return list(attr_values)
    return list(attr_values)


def tokens(entry: str) -> list[str]:
    entry = unicodedata.normalize("NFKC", entry).strip()
    out = []
    for tok in _TOKEN.findall(entry):
        if tok[0].isupper():
            out.append(tok.casefold())
            if "-" in tok:
                out.extend(p.casefold() for p in tok.split("-") if p)
    return out


def person_lists() -> tuple[set[str], set[str]]:
    from faker import Faker

    first: set[str] = set()
    last: set[str] = set()
    for loc in PERSON_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{loc}").Provider
        for attr, value in vars(provider).items():
            if not isinstance(value, (list, tuple, dict)):
                continue
            if "first_name" in attr:
                for e in _names(value):
                    first.update(tokens(e))
            elif "last_name" in attr:
                for e in _names(value):
                    last.update(tokens(e))
        # Forms built by methods (Polish -ska, Czech -ová, ...): sample them.
        fake = Faker(loc)
        fake.seed_instance(1)
        for _ in range(3000):
            first.update(tokens(fake.first_name()))
            last.update(tokens(fake.last_name()))
    return first, last


def common_words() -> set[str]:
    words: set[str] = set()
    for loc in LOREM_LOCALES:
        provider = importlib.import_module(f"faker.providers.lorem.{loc}").Provider
        words.update(w.casefold() for w in provider.word_list if len(w) > 1)
    words.update(EXTRA_WORDS)
    return words


def main() -> None:
    first, last = person_lists()
    words = common_words()
    flags: dict[str, int] = {}
    for t in first:
        if len(t) > 1:
            flags[t] = flags.get(t, 0) | 1
    for t in last:
        if len(t) > 1:
            flags[t] = flags.get(t, 0) | 2
    for t in words:
        flags[t] = flags.get(t, 0) | 4
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as f:
        f.write("# Name lists for souverain.privacy (generated by bench/privacy/build_names.py; do not edit).\n")
        f.write("# Source: Faker person and lorem providers (MIT licence), European locales.\n")
        f.write("# token<TAB>flags: 1 first name, 2 surname, 4 common word.\n")
        for t in sorted(flags):
            f.write(f"{t}\t{flags[t]}\n")
    counts = {k: sum(1 for v in flags.values() if v & k) for k in (1, 2, 4)}
    print(f"wrote {OUT} ({len(flags)} tokens: {counts[1]} first names, {counts[2]} surnames, {counts[4]} common words)")


if __name__ == "__main__":
    main()
