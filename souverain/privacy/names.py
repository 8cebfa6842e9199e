"""Person names: first-name and surname lists, context rules, operator dictionaries.

The lists (`data/names.tsv`, ~40k tokens, built from Faker's European locales: see
bench/privacy/build_names.py) say for each lower-cased token whether it is a first name,
a surname and/or a common word. A run of capitalised words (joined by spaces and name
particles such as "van der", "de la", "von") is a name when:

1. it follows a trigger: an honorific (Herr, Mme, Sig.ra, Dr., Pan, ...), a greeting
   (Dear, Bonjour, Liebe, Hola, ...), or a phrase ("my name is", "je m'appelle",
   "ich heiße", "mi chiamo", "me llamo", "nazywam się", "Name:", "patient", ...):
   confidence 0.85, whether or not the words are in the lists;
2. it has a known first name followed by a surname (0.9 when the surname is known,
   0.7 when it is just capitalised, 0.6 for two first names), or a known surname
   followed by a first name ("DUPONT Marie", "Rossi Mario"): 0.85;
3. a lone known first name scores 0.45 and a lone surname 0.3: below the default
   threshold, because "Rose", "Florence" or "Bauer" alone are more often something else.

Tokens that are common words in one of the languages never start a name without a
trigger. Operator dictionaries (a bank's customer list) are matched exactly, ignoring
case, token by token, at confidence 1.0; they work at any size since each word costs
one set lookup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path

from souverain.privacy.doc import Doc, Hit
from souverain.privacy.keywords import WHOLE, KeywordList

FIRST, LAST, WORD = 1, 2, 4


@cache
def name_flags(path: str | None = None) -> Mapping[str, int]:
    """token -> flags, loaded once per file (immutable after load): the shipped
    data/names.tsv, or a table of the same format at `path`."""
    out: dict[str, int] = {}
    source = resources.files("souverain.privacy").joinpath("data/names.tsv") if path is None else Path(path)
    with source.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            token, _, flags = line.rstrip("\n").partition("\t")
            out[token] = int(flags)
    return out


# The look-behind sits after the first capital, so that `re` can skip to capitals at C speed.
_CAP = re.compile(r"[A-Z\u00C0-\u00DE\u0100-\u024F\u0386-\u03AB\u0400-\u042F](?<![\w'’\-].)[\w'’]*(?:-[\w'’]+)*")
_PARTICLES = (
    "van|von|der|den|de|del|della|delle|dei|di|da|das|do|dos|du|le|la|los|las|ter|ten|zu|zum|zur|y|i|e|af|av|"
    "bin|ben|al|el|op|'t|van't"
)
_DOT_GAP = re.compile(r"\.?[ \t]{1,2}")
_GAP = re.compile(rf"[ \t]{{1,2}}(?:(?:{_PARTICLES})[ \t]{{1,2}}){{0,3}}")
_HONORIFICS = frozenset(
    """
herr herrn frau hr fr dr drs prof professor mr mrs ms miss mx sir dame lord lady m mme mlle monsieur madame mademoiselle
me maître sig sigg sig.ra signor signora signorina dott dott.ssa avv ing geom arch sr sra srta señor señora señorita
don doña dña dhr mevr mevrouw meneer heer pan pani pana panu panem panią panna panie państwo fru herra rouva neiti hr. pn
kyrios kyria κ κος κα г-н г-жа mag mgr ing bc judr mudr phdr
""".split()
)
# Honorifics written with a dot ("M. Dupont", "Dr. Weber"); after the others a dot ends
# the sentence ("... sagte der Herr. Nummer ...").
_ABBREVIATED = frozenset(
    "m dr hr fr mr mrs ms prof sig sigg sr sra srta dott avv ing dhr mevr mme mlle pn mgr mag bc".split()
)
_SALUTATIONS = frozenset(
    """
dear hi hello hey bonjour bonsoir salut cher chère chers hallo liebe lieber liebes sehr geehrte geehrter
ciao caro cara gentile egregio gentilissima gentilissimo hola querido querida estimado estimada
beste geachte hoi dag drogi droga szanowny szanowna witaj cześć hej ahoj dobrý vážený vážená
kedves tere labas sveiki zdravo bok olá caríssimo exmo exma prezado prezada
""".split()
)
# Phrases after which a capitalised word is a name ("Name: Weber", "je m'appelle Dupont").
_TRIGGERS = frozenset(
    t.strip()
    for t in """
my name is|name is|i am|i'm|this is|called|je m'appelle|je suis|mon nom est|nom|prénom|
ich heiße|ich heisse|ich bin|mein name ist|name|vorname|nachname|mi chiamo|sono|il mio nome è|nome|cognome|
me llamo|soy|mi nombre es|nombre|apellido|apellidos|mijn naam is|ik ben|ik heet|naam|achternaam|voornaam|
nazywam się|mam na imię|jestem|imię|nazwisko|jmenuji se|jméno|příjmení|jag heter|mitt namn är|namn|
jeg hedder|mit navn er|navn|minun nimeni on|nimeni on|nimi|chamo-me|o meu nome é|sou|numele meu este|
mă numesc|ma numesc|numele|nevem|a nevem|vardas|mano vardas|vārds|mans vārds|nimi on|ime|zovem se|
patient|patiente|patientin|paziente|paciente|pacjent|pacjentka|client|cliente|klient|klientka|kunde|kundin|
klant|customer|employee|mitarbeiter|mitarbeiterin|salarié|salariée|dipendente|empleado|empleada|werknemer|
pracownik|pracownica|titulaire|kontoinhaber|intestatario|titular|rekeninghouder|właściciel|account holder|
signed|signé|gez.|unterschrift|firmato|firmado|getekend|podpisano|contact person|ansprechpartner|
interlocuteur|referente|persona de contacto|contactpersoon|osoba kontaktowa|
from|od|with|mit|avec|con|met|z|for|für|pour|per|para|voor|dla|by|par
""".replace("\n", "").split("|")
)
_KEEP = _HONORIFICS | _SALUTATIONS  # common words that do not end a run of name words
_TRIGGER_LEN = max(len(t.split()) for t in _TRIGGERS)
_TRIGGER_LAST = frozenset(t.split()[-1] for t in _TRIGGERS)
_WEAK_TRIGGERS = frozenset(
    "i am|i'm|this is|je suis|ich bin|sono|soy|ik ben|jestem|sou|from|od|with|mit|avec|con|met|z|"
    "for|für|pour|per|para|voor|dla|by|par".split("|")
)
_TRIM = " \t:,"


# A token: (start, end, lower-cased key, flags). Tuples, not objects: this loop is hot.
_Tok = tuple[int, int, str, int]
_BREAK = -1  # a common word that is no name: it ends a run


def _flags(token: str, table: Mapping[str, int]) -> tuple[str, int]:
    key = token.casefold()
    if "’" in key:
        key = key.replace("’", "'")
    f = table.get(key, 0)
    if not f and "-" in key:
        parts = [table.get(p, 0) for p in key.split("-") if p]
        if parts and all(p & (FIRST | LAST) for p in parts):
            f = FIRST if all(p & FIRST for p in parts) else LAST
    return key, f


# Gate: without one of these words (a strong trigger's longest word, an honorific, a
# greeting) only the name lists can fire.
KEYWORD_LISTS: tuple[KeywordList, ...] = (
    KeywordList(
        {max(t.split(), key=len) for t in _TRIGGERS if t not in _WEAK_TRIGGERS} | _HONORIFICS | _SALUTATIONS,
        "NAME_TRIGGER",
        WHOLE,
    ),
)


# A name followed by a company form or a place word, or after a company word, is an
# organisation or a place ("Dupont et Fils SA", "Jacob GmbH", "David Ville").
_ORG_AFTER = frozenset(
    """
gmbh gbr mbh ek e.k ev e.v ag kg ohg se ug sa sas sarl sàrl sa. spa s.p.a srl s.r.l sl slu s.l s.a s.a.s bv b.v nv n.v ltd llc inc plc
oy oyj ab as aps a/s kft zrt sro s.r.o spółka sp co cie fils oü uab sia d.o.o doo a.s figli hermanos asociados partner partners
group groep gruppe groupe gruppo grupo grupa holding bank banque banca banco ville town city stadt platz strasse straße
street road rue avenue via calle straat ulica institute institut instituto istituto university universität
université università universidad foundation stiftung fondation fondazione fundación
""".split()
)
_ORG_BEFORE = frozenset(
    """
firma société societe company empresa bedrijf società societa firmy firmą firmie spółka compagnie entreprise
unternehmen gesellschaft hotel restaurant café cafe rue via calle straße strasse avenue boulevard platz
""".split()
)
_NEXT_WORD = re.compile(r"[\s,&]*([^\W\d_][\w.'/]*)")
_ORG_WORDS_AHEAD = 4  # the next word, and up to three more of the firm's name before its form
_ORG_JOINERS = frozenset(("und", "and", "et", "e", "y", "en", "i", "&"))


def _organisation(text: str, start: int, end: int) -> bool:
    last = text[start:end].split()[-1].lower()
    if last in _ORG_AFTER:
        return True
    # The form may come after more words of the firm's name ("Van Dijk Logistiek B.V.",
    # "Müller Transport & Logistik GmbH"): up to three capitalised words (or joiners).
    pos = end
    for _ in range(_ORG_WORDS_AHEAD):
        m = _NEXT_WORD.match(text, pos)
        if m is None:
            break
        word = m.group(1).lower()
        if word in _ORG_AFTER or word.rstrip(".") in _ORG_AFTER:
            return True
        if not (m.group(1)[0].isupper() or word in _ORG_JOINERS) or "\n" in text[pos : m.start(1)]:
            break
        pos = m.end()
    before = text[max(0, start - 24) : start].lower().split()
    return bool(before) and before[-1].strip(".,:;") in _ORG_BEFORE


def name_hits(doc: Doc, table: Mapping[str, int] | None = None) -> Iterator[Hit]:
    for hit in _name_hits(doc, table):
        if not _organisation(doc.text, hit.start, hit.end):
            yield hit


def _name_hits(doc: Doc, table: Mapping[str, int] | None = None) -> Iterator[Hit]:
    if table is None:
        table = name_flags()
    text = doc.text
    # One pass over the capitalised words; without a known name among them or a trigger
    # word somewhere, nothing below could fire.
    runs: list[list[_Tok]] = []
    run: list[_Tok] = []
    known = 0
    get = table.get
    prev_end = -1
    for m in _CAP.finditer(text):
        tok = m.group(0)
        if not tok[0].isupper():
            continue
        key = tok.casefold()
        f = get(key)
        if f is None:
            key, f = _flags(tok, table)  # not in the table as written: "d’Arc", "Marie-Claire"
        known |= f
        if (
            f == WORD
            or (f & WORD and not f & (FIRST | LAST))
            or (len(tok) > 1 and tok.isupper() and not f & (FIRST | LAST))
        ):
            # a common word (all-caps text says nothing about names: "THE CUSTOMER IS
            # RIGHT") ends a run, unless it is an honorific or a greeting
            if key not in _KEEP:
                if run:
                    runs.append(run)
                    run = []
                prev_end = -1
                continue
            f = WORD
        start, end = m.span()
        if run and (
            (start == prev_end + 1 and text[prev_end] == " ")
            or _GAP.fullmatch(text, prev_end, start)
            or (run[-1][2] in _ABBREVIATED and _DOT_GAP.fullmatch(text, prev_end, start))
        ):
            run.append((start, end, key, f))
        else:
            if run:
                runs.append(run)
            run = [(start, end, key, f)]
        prev_end = end
    if run:
        runs.append(run)
    # Without a known name or a trigger word somewhere, nothing could fire.
    if not known & (FIRST | LAST) and "NAME_TRIGGER" not in doc.found.labels and "NAME_TRIGGER" not in doc.extra_labels:
        return
    for run in runs:
        yield from _run_hits(text, run)


def _run_hits(text: str, run: list[_Tok]) -> Iterator[Hit]:
    # Split at honorifics and greetings: what follows them is a name.
    triggered = False
    seg: list[_Tok] = []
    for tok in run:
        if tok[2] in _HONORIFICS or tok[2] in _SALUTATIONS:
            if seg:
                yield from _segment_hits(text, seg, triggered)
            seg, triggered = [], True
            continue
        seg.append(tok)
    if seg:
        yield from _segment_hits(text, seg, triggered)


def _sentence_start(text: str, start: int) -> bool:
    """True when nothing but spaces and quotes sits between the previous sentence end
    (or the start of the text) and `start`."""
    k = start - 1
    while k >= 0 and text[k] in " \t\"'«“„(":
        k -= 1
    return k < 0 or text[k] in ".!?:\n"


def _trigger_before(text: str, start: int) -> str | None:
    """The trigger phrase that ends right before `start`, if any: the last one, two or
    three words looked up in a set (no regex)."""
    if start == 0 or text[start - 1] not in " \t:,":
        return None
    # The word right before first (most capitalised words have none of the triggers'
    # last words before them); the whole phrase only then.
    head = text[max(0, start - 24) : start].rstrip(_TRIM)
    last = head[max(head.rfind(" "), head.rfind("\t")) + 1 :].lower().replace("’", "'")
    if last not in _TRIGGER_LAST:
        return None
    words = text[max(0, start - 40) : start].lower().replace("’", "'").rstrip(_TRIM).split()
    for k in range(min(_TRIGGER_LEN, len(words)), 0, -1):
        phrase = " ".join(words[-k:])
        if phrase in _TRIGGERS:
            return phrase
    return None


def _segment_hits(text: str, seg: list[_Tok], triggered: bool) -> Iterator[Hit]:
    if not triggered:
        trig = _trigger_before(text, seg[0][0])
        if trig is not None:
            # A weak trigger ("from", "ich bin") needs a known name in the segment.
            if trig not in _WEAK_TRIGGERS or any(t[3] & (FIRST | LAST) for t in seg[:3]):
                triggered = True
    if triggered:
        # Up to four tokens, stopping at a common word that is no name.
        names = [seg[0]]
        for t in seg[1:4]:
            if t[3] & WORD and not t[3] & (FIRST | LAST):
                break
            names.append(t)
        if len(names) == 1 and names[0][3] & WORD and not names[0][3] & (FIRST | LAST):
            return  # "Dear Customer", "Bonjour Madame"
        known = any(t[3] & (FIRST | LAST) for t in names)
        yield Hit(
            "PERSON", names[0][0], names[-1][1], 0.9 if known else 0.85, "name list + context" if known else "context"
        )
        rest = seg[len(names) :]
        if rest:
            yield from _segment_hits(text, rest, False)
        return
    i, n = 0, len(seg)
    while i < n:
        f = seg[i][3]
        j = i + 1
        if f & FIRST and j < n and not (seg[j][3] & WORD and not seg[j][3] & (FIRST | LAST)):
            # first name(s), then a surname (known or not)
            while j < n and j - i < 4 and seg[j][3] & FIRST and j + 1 < n and not seg[j + 1][3] & WORD:
                j += 1
            tail = seg[j][3]
            if seg[j][1] - seg[j][0] < 2:
                i = j + 1
                continue  # "Román S.A.T.": an initial is no surname
            if tail & LAST:
                conf, why = 0.9, "first + last name lists"
            elif tail & FIRST:
                conf, why = 0.6, "first name list"
            else:
                conf, why = 0.7, "first name list + capitalised"
            if f & WORD and not f & LAST and conf < 0.9:
                conf -= 0.2
            yield Hit("PERSON", seg[i][0], seg[j][1], conf, why)
            i = j + 1
            continue
        if f & LAST and not f & WORD and j < n and seg[j][3] & FIRST and not seg[j][3] & WORD:
            yield Hit("PERSON", seg[i][0], seg[j][1], 0.85, "last + first name lists")
            i = j + 1
            continue
        if (
            j < n
            and f == 0
            and seg[j][3] == 0
            and seg[i][1] - seg[i][0] > 2
            and seg[j][1] - seg[j][0] > 2
            and not _sentence_start(text, seg[i][0])
        ):
            # two capitalised words in mid-sentence, neither a common word: a name the
            # lists do not know ("avec Xavière Qzulnik"), or a place or company
            yield Hit("PERSON", seg[i][0], seg[j][1], 0.45, "capitalised pair")
            i = j + 1
            continue
        if n == 1 and not f & WORD:
            if f & FIRST:
                yield Hit("PERSON", seg[i][0], seg[i][1], 0.45, "first name list (alone)")
            elif f & LAST:
                yield Hit("PERSON", seg[i][0], seg[i][1], 0.3, "surname list (alone)")
        i += 1


# ---------------------------------------------------------------------------------------
# Operator dictionaries

_WORDS = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")


class Dictionary:
    """Exact phrases (names from a customer list, project code names) matched ignoring
    case, on word boundaries. Each entry is split into words; a text word costs one set
    lookup, so a list of a million names scans as fast as a list of ten."""

    def __init__(self, type_: str, entries: Iterable[str], confidence: float = 1.0) -> None:
        self.type = type_
        self.confidence = confidence
        self._by_first: dict[str, list[tuple[str, ...]]] = {}
        for entry in entries:
            words = tuple(w.casefold() for w in _WORDS.findall(entry))
            if words:
                self._by_first.setdefault(words[0], []).append(words)
        for seqs in self._by_first.values():
            seqs.sort(key=len, reverse=True)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_first.values())

    def hits(self, text: str) -> Iterator[Hit]:
        words = [(m.start(), m.end(), m.group(0).casefold()) for m in _WORDS.finditer(text)]
        by_first = self._by_first
        i = 0
        while i < len(words):
            seqs = by_first.get(words[i][2])
            matched = 0
            if seqs:
                for seq in seqs:
                    k = len(seq)
                    if i + k <= len(words) and all(words[i + x][2] == seq[x] for x in range(1, k)):
                        matched = k
                        break
            if matched:
                yield Hit(self.type, words[i][0], words[i + matched - 1][1], self.confidence, f"dictionary:{self.type}")
                i += matched
            else:
                i += 1
