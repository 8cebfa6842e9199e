"""Context words: what raises (or lowers) a match's confidence when it is written nearby.

A weak checksum (NL BSN's 11-test passes one random 9-digit number in eleven) cannot by
itself tell a citizen number from an order number; the words around it can. Each list
holds the words people write in the EU languages. The lists register with the one
keyword automaton (keywords.py), which finds them all in one pass over the text, folded
(lower case, no diacritics), with three rules chosen for compounding languages: keywords
of up to 4 characters must be whole words ("nir", "bsn"), 5 to 7 characters must start
a word ("steuer", "pesel"), and 8 or more may sit anywhere inside a word, so that
"Sozialversicherungsnummer" finds "versicherungsnummer". A candidate's context is the
keywords in a window before it (and a shorter one after it), cut at sentence ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from souverain.privacy.doc import Doc
from souverain.privacy.keywords import ANYWHERE, PREFIX, WHOLE, KeywordList, default_rule

BEFORE = 48  # characters of context read before a match
AFTER = 24  # ... and after it
# A negative word counts in the whole window before the number, as a naming one does:
# "Serial numbers from 9700536179 to 1899704712" labels both.
NEG_BEFORE = BEFORE


def trie_pattern(words: Iterable[str]) -> str:
    """A regex matching any of `words`, as a trie: `re` tries the alternatives of a group
    one by one, so sharing prefixes makes a 500-word list cost about what 26 letters do."""
    trie: dict[str, dict] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, dict]) -> str:
        end = "" in node
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if end else body

    return build(trie)


def keyword_regex(words: Iterable[str]) -> re.Pattern[str]:
    words = set(words)
    whole = [w for w in words if len(w) <= 4]
    prefix = [w for w in words if 5 <= len(w) <= 7]
    anywhere = [w for w in words if len(w) >= 8]
    parts = []  # longest words first, so "steuer-id" wins over "steuer" at the same place
    if anywhere:
        parts.append(trie_pattern(anywhere))
    if prefix:
        parts.append(rf"(?<!\w){trie_pattern(prefix)}")
    if whole:
        parts.append(rf"(?<!\w){trie_pattern(whole)}(?!\w)")
    return re.compile("|".join(parts) if parts else r"(?!)")


# Words that say "an identifier follows" without saying which.
GENERIC_WORDS = """
id ids ident identif identity identité identità identidad identiteit identitet tożsam
number numéro numero número nummer numer číslo cislo számú szám numar numeris numurs nr nr. no n° nº num
personal personnel persönlich persoonlijk osobisty osobowy henkilö person
tax steuer fiscal fiscale fisc impôt impot belasting podatk skatte vero adó adóazonosító
social sozial sociale sécurité secu sécu insurance versicherung assurance assicura seguro verzeker ubezpiecz
citizen bürger citoyen cittadin ciudadan burger obywatel national nationale nazionale nacional
register registre registro registr
""".split()

# Words that say "this number is NOT about a person": order numbers, invoices, parcels, builds.
NEGATIVE_WORDS = """
order orders bestell commande ordine pedido bestelling zamówien objednáv rendelés
invoice rechnung facture fattura factura factuur faktur számla
tracking sendung colis spedizion envío zending przesyłk parcel paket
sku ean isbn gtin upc article artikel articolo artículo produkt product produit prodotto producto
serial seriennummer série versione version build release commit hash sha md5 checksum
ticket case dossier aktenzeichen ref. ref reference référence referenz riferimento referencia referentie
batch lot charge model modell modèle modello modelo part teil pièce pezzo pieza
delivery lieferschein livraison consegna entrega levering dostawa shipment shipping versand expédition spedizione
timestamp epoch unixtime ts duration elapsed latency bytes po p.o. purchase auftrag suivi sscc
""".split()

# Per type: words that name the identifier itself.
SPECIFIC: dict[str, list[str]] = {
    "AT_SVNR": ["svnr", "sozialversicherungsnummer", "versicherungsnummer", "vsnr", "e-card"],
    "BE_NN": [
        "rijksregister",
        "registre national",
        "numéro national",
        "nn",
        "rrn",
        "insz",
        "niss",
        "bis",
        "national register",
    ],
    "BG_EGN": ["егн", "egn", "единен граждански", "граждански номер", "personal number"],
    "CY_TIC": ["tic", "tin", "φορολογικ", "αριθμός φορολογικού", "tax identification"],
    "CZ_RC": ["rodné číslo", "rodne cislo", "rč", "r.č.", "birth number", "rodné", "rodného"],
    "DE_IDNR": [
        "steuer-id",
        "steuerid",
        "steuer-idnr",
        "idnr",
        "identifikationsnummer",
        "steueridentifikationsnummer",
        "tin",
        "st.-id",
        "steuer id",
    ],
    "DK_CPR": ["cpr", "cpr-nr", "cpr-nummer", "personnummer", "personnr"],
    # Estonia and Lithuania: one scheme (ids.py), named in either language
    "EE_LT_ID": ["isikukood", "ik", "personal code", "isikukoodi", "asmens kodas", "asmens", "a.k."],
    "ES_DNI": ["dni", "d.n.i", "nif", "documento nacional", "identidad"],
    "ES_NIE": ["nie", "n.i.e", "extranjero", "extranjería", "nif"],
    "FI_HETU": ["hetu", "henkilötunnus", "henkilotunnus", "sotu", "personbeteckning", "identity code"],
    "FR_NIR": [
        "nir",
        "insee",
        "sécurité sociale",
        "securite sociale",
        "sécu",
        "numéro de sécu",
        "carte vitale",
        "ssn",
        "social security",
    ],
    "FR_NIF": ["numéro fiscal", "numero fiscal", "spi", "nif", "impots", "impôts", "référence fiscale"],
    "GR_AMKA": ["amka", "αμκα", "α.μ.κ.α", "ασφάλισης"],
    "HR_OIB": ["oib", "osobni identifikacijski", "identifikacijski broj"],
    "HU_TAX_ID": ["adóazonosító", "adoazonosito", "adóazonosító jel", "tax id", "adószám"],
    "IE_PPS": ["pps", "ppsn", "personal public service", "rsi"],
    "IT_CF": ["codice fiscale", "cod. fisc", "c.f.", "cf", "tessera sanitaria", "fiscal code"],
    "LU_NIN": ["matricule", "numéro d'identification", "identifikationsnummer", "sécurité sociale", "cns"],
    "LV_PK": ["personas kods", "personas", "p.k.", "personal code"],
    "MT_ID": ["id card", "identity card", "karta tal-identità", "karta tal-identita", "i.d.", "id no", "id number"],
    "NL_BSN": ["bsn", "burgerservicenummer", "sofinummer", "sofi-nummer", "burgerservice"],
    "PL_PESEL": ["pesel", "nr pesel", "numer pesel"],
    "PT_NIF": ["nif", "contribuinte", "número de contribuinte", "n.º contribuinte", "nipc"],
    "PT_CC": ["cartão de cidadão", "cartao de cidadao", "cc", "cidadão"],
    "RO_CNP": ["cnp", "cod numeric personal", "codul numeric", "cod numeric"],
    "SE_PNR": ["personnummer", "personnr", "pnr", "samordningsnummer", "person-nr"],
    "SI_EMSO": ["emšo", "emso", "enotna matična", "matična številka"],
    "CARD": [
        "card",
        "karte",
        "kreditkarte",
        "carte",
        "carta",
        "tarjeta",
        "kaart",
        "creditcard",
        "karta",
        "karty",
        "kartą",
        "kartę",
        "karcie",
        "kart",
        "visa",
        "mastercard",
        "amex",
        "american express",
        "maestro",
        "cb",
        "cc",
        "pan",
        "kort",
        "kortti",
        "cartão",
    ],
    "PHONE": [
        "tel",
        "tel.",
        "phone",
        "telephone",
        "telefon",
        "téléphone",
        "telefono",
        "teléfono",
        "telefoon",
        "mobile",
        "mobil",
        "handy",
        "portable",
        "cellulare",
        "cell",
        "móvil",
        "movil",
        "gsm",
        "mobiel",
        "komórka",
        "komórkowy",
        "komórkowego",
        "dzwoni",
        "dzwonić",
        "dzwoń",
        "fax",
        "bereik",
        "erreich",
        "joindre",
        "raggiung",
        "reach",
        "whatsapp",
        "call",
        "ruf",
        "appel",
        "chiam",
        "llam",
        "bel",
        "zadzwo",
        "puhelin",
        "τηλ",
        "тел",
        "telemóvel",
        "kontakt",
        "kontaktow",
        "pod numerem",
        "contact",
        "erreichbar",
        "joignable",
    ],
    "VAT": [
        "vat",
        "tva",
        "mwst",
        "ust",
        "ust-id",
        "ust-idnr",
        "umsatzsteuer",
        "iva",
        "btw",
        "nip",
        "dic",
        "dič",
        "moms",
        "alv",
        "pvn",
        "pvm",
        "ddv",
        "dph",
        "kmkr",
        "áfa",
        "anum",
        "fpa",
        "φπα",
        "ддс",
        "cui",
        "partita iva",
        "uid",
    ],
    "BIC": ["bic", "swift", "bic/swift", "swift/bic", "bank", "banque", "banca", "banco", "iban"],
    "PASSPORT": [
        "passport",
        "reisepass",
        "pass-nr",
        "passnummer",
        "passeport",
        "passaporto",
        "pasaporte",
        "paspoort",
        "paszport",
        "paszportu",
        "passi",
        "pas",
        "cestovní pas",
        "útlevél",
        "pašport",
        "pasaport",
        "паспорт",
        "διαβατήριο",
    ],
    "ID_CARD": [
        "personalausweis",
        "ausweis",
        "ausweisnummer",
        "carte d'identité",
        "carte d’identité",
        "cni",
        "carta d'identità",
        "carta d’identità",
        "documento di identità",
        "dni",
        "documento de identidad",
        "identiteitskaart",
        "id-kaart",
        "dowód",
        "dowodu",
        "dowód osobisty",
        "občanský průkaz",
        "id card",
        "identity card",
        "henkilökortti",
        "id-kort",
        "legitimation",
        "cartão de cidadão",
    ],
}


# A type's own words under the type's name (one automaton holds every list: keywords.py).
# Document words gate a code search on their own, so short ones must be whole words:
# "passi" (Finnish) must not fire on "passion".
_DOCUMENT_TYPES = ("PASSPORT", "ID_CARD")
_TYPE_LISTS = (
    tuple(KeywordList(words, type_) for type_, words in SPECIFIC.items() if type_ not in _DOCUMENT_TYPES)
    + tuple(
        KeywordList([w for w in SPECIFIC[type_] if default_rule(w) != ANYWHERE], type_, WHOLE)
        for type_ in _DOCUMENT_TYPES
    )
    + tuple(
        KeywordList([w for w in SPECIFIC[type_] if default_rule(w) == ANYWHERE], type_) for type_ in _DOCUMENT_TYPES
    )
)

# Idioms that hold a negative word without labelling the number: "For reference: ..." is
# "for your information", where "Reference: ..." names a reference number. A negative
# word inside one of these does not count.
IDIOMS = (
    "for reference",
    "for your reference",
    "for future reference",
    "pour référence",
    "pour mémoire",
    "zur referenz",
    "zur kenntnis",
    "per riferimento",
    "como referencia",
    "ter referentie",
    "ter info",
)

KEYWORD_LISTS: tuple[KeywordList, ...] = (
    *_TYPE_LISTS,
    # Verb stems that start longer words: "Rufen Sie ... an", "Llame al ...", "calling".
    KeywordList(["ruf", "anruf", "llam", "call"], "PHONE", PREFIX),
    KeywordList(GENERIC_WORDS, "GENERIC"),
    KeywordList(NEGATIVE_WORDS, "NEGATIVE"),
    KeywordList(IDIOMS, "IDIOM", PREFIX),
)


# A sentence end: ". " before a letter, or a line break. Written to start with one
# character class ("[.!?;]\s+...|\n" matched the same, but an alternation whose first
# branch starts with a class gives `re` nothing to skip ahead to, so it tried a match at
# every position of every context window).
_SENTENCE_END = re.compile(r"[.!?;\n](?:(?<=\n)|\s+(?=[^\W\d_]))")


def bounds(text: str, start: int, end: int, before: int = BEFORE, after: int = AFTER) -> tuple[int, int]:
    """The context window around text[start:end] as (a, b), cut at sentence ends, so
    that "BSN 111222333. Order 123456782" keeps the two apart; the keywords that count
    lie in text[a:start] and text[end:b]."""
    a = max(0, start - before)
    for m in _SENTENCE_END.finditer(text, a, start):
        a = m.end()
    b = min(len(text), end + after)
    cut = _SENTENCE_END.search(text, end, b)
    if cut is not None:
        b = cut.start() + 1
    return a, b


def labels_around(doc: Doc, start: int, end: int, before: int = BEFORE, after: int = AFTER) -> frozenset[str]:
    """The labels of the keywords in the window around doc.text[start:end], plus those
    of the outside context (the JSON key)."""
    a, b = bounds(doc.text, start, end, before, after)
    found = doc.found
    return found.between(a, start) | found.between(end, b) | doc.extra_labels


def labels_and_negative(doc: Doc, start: int, end: int) -> tuple[frozenset[str], bool]:
    """`labels_around(doc, start, end)`, and whether a negative word (order, invoice,
    ...) sits in the last NEG_BEFORE characters before `start`, outside an idiom."""
    a, b = bounds(doc.text, start, end)
    found = doc.found
    head = found.between(a, start)
    labels = head | found.between(end, b) | doc.extra_labels
    neg = "NEGATIVE" in doc.extra_labels
    if not neg and "NEGATIVE" in head:
        near = found.inside(max(a, start - NEG_BEFORE), start)
        idioms = [(s, e) for s, e, labels in found.inside(a, start) if "IDIOM" in labels] if "IDIOM" in head else []
        neg = any("NEGATIVE" in labels and not any(i <= s and e <= j for i, j in idioms) for s, e, labels in near)
    return labels, neg
