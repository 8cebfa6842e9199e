"""A labelled multilingual corpus for the privacy scanner: messages with gold spans.

    corpus = build(n_messages=2400, seed=1)            # list[Message]
    corpus = build(..., names="held_out")               # names the scanner's lists lack

Every message is a few sentences in one language (FR, DE, IT, ES, NL, PL, and EN for the
identifiers of the other member states), mixing:

- sentences carrying personal data, with the gold span of each value: names and
  addresses' people from Faker's locale, e-mails, phone numbers (Faker's, kept only when
  phonenumbers says they are valid), IBANs (Faker's, mod 97 valid), cards (Faker's, Luhn
  valid), IPv4/IPv6, BICs, EU VAT numbers (check digits completed until python-stdnum
  accepts them), dates of birth, and the national identifiers of `identifiers.py`
  (valid by python-stdnum). About 80% of identifiers are introduced by a sentence
  naming them ("Mon numéro de sécurité sociale est ..."), 20% are not ("Voici : ...");
- hard negatives that look like identifiers: the same sentences with a near-miss number
  (one character changed, so the check fails), order and invoice numbers, EAN-13 codes,
  hashes, UUIDs, tracking numbers, build numbers, timestamps, and dates that are not
  dates of birth; bare random numbers of identifier lengths in the same context-free
  sentences that carry 20% of the identifiers; and capitalised words that are no person:
  Faker company names (often built from surnames: "Dupont et Fils") and city names;
- filler from Faker's sentence() for the locale;
- evasion variants on ~15% of the values: zero-width characters, soft hyphens,
  full-width digits, NBSP separators, Cyrillic homoglyphs.

Each gold entity records whether it came with a context sentence and whether it was
evaded, so that recall can be split by both.
"""

from __future__ import annotations

import hashlib
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import phonenumbers
import stdnum.eu.vat as eu_vat
import stdnum.iban as stdnum_iban
from faker import Faker

from bench.privacy import identifiers
from bench.privacy.build_names import held_out

LOCALES = {"fr": "fr_FR", "de": "de_DE", "it": "it_IT", "es": "es_ES", "nl": "nl_NL", "pl": "pl_PL", "en": "en_IE"}
REGION = {"fr": "FR", "de": "DE", "it": "IT", "es": "ES", "nl": "NL", "pl": "PL", "en": "IE"}

# Where each identifier is written: in its country's language (EN for the others).
ID_LANG = {
    "FR_NIR": "fr",
    "FR_NIF": "fr",
    "LU_NIN": "fr",
    "BE_NN": "nl",
    "DE_IDNR": "de",
    "AT_SVNR": "de",
    "IT_CF": "it",
    "ES_DNI": "es",
    "ES_NIE": "es",
    "NL_BSN": "nl",
    "PL_PESEL": "pl",
}

T = dict[str, list[str]]

# The scanner's type name for each kind of value the corpora draw (requests.py too).
TYPE_OF = {
    "person": "PERSON",
    "email": "EMAIL",
    "phone": "PHONE",
    "iban": "IBAN",
    "card": "CARD",
    "dob": "DATE_OF_BIRTH",
    "ip": "IP_ADDRESS",
    "vat": "VAT",
    "bic": "BIC",
    "passport": "PASSPORT",
    "id_card": "ID_CARD",
}
# Sentences per language. {X} is the value; "ctx" sentences name the kind of value.
SENT: dict[str, T] = {
    "fr": {
        "person": [
            "Je m'appelle {X}.",
            "Le dossier de {X} est complet.",
            "{X} a appelé ce matin.",
            "Merci à {X} pour son aide.",
            "Pouvez-vous transmettre à M. {X} ?",
            "Rendez-vous confirmé avec {X} jeudi.",
        ],
        "email": ["Mon adresse e-mail est {X}.", "Écrivez-moi à {X} s'il vous plaît.", "Contact : {X}"],
        "phone": ["Vous pouvez me joindre au {X}.", "Mon portable : {X}.", "Appelez le {X} après 18h."],
        "iban": ["Mon IBAN est {X}.", "Merci de virer le montant sur {X}."],
        "card": ["Ma carte bancaire : {X}.", "Le paiement a été fait avec la carte {X}."],
        "dob": ["Je suis né le {X} à Lyon.", "Date de naissance : {X}."],
        "ip": ["La connexion venait de l'adresse {X}.", "Le serveur {X} ne répond plus."],
        "vat": ["Notre numéro de TVA intracommunautaire est {X}.", "TVA : {X}"],
        "bic": ["Le code BIC de la banque est {X}.", "BIC/SWIFT : {X}"],
        "FR_NIR": ["Mon numéro de sécurité sociale est le {X}.", "N° de sécu : {X}", "Numéro INSEE {X}."],
        "FR_NIF": ["Mon numéro fiscal est {X}.", "Référence fiscale (SPI) : {X}"],
        "LU_NIN": ["Mon matricule luxembourgeois est {X}.", "Numéro d'identification national : {X}"],
        "noctx": ["Voici mes informations : {X}.", "Pour info : {X}", "Le voici : {X}."],
        "neg_order": [
            "Votre commande n° {X} a été expédiée.",
            "Facture {X} du mois dernier.",
            "Référence colis : {X}.",
        ],
        "neg_org": ["Je travaille chez {X}.", "La société {X} a signé le contrat.", "Nous avons un bureau à {X}."],
        "neg_date": ["La réunion est prévue le {X}.", "Le contrat expire le {X}."],
    },
    "de": {
        "person": [
            "Mein Name ist {X}.",
            "Die Akte von {X} ist vollständig.",
            "{X} hat heute Morgen angerufen.",
            "Bitte leiten Sie das an Herrn {X} weiter.",
            "Termin mit {X} am Donnerstag bestätigt.",
        ],
        "email": ["Meine E-Mail-Adresse lautet {X}.", "Schreiben Sie mir an {X}.", "Kontakt: {X}"],
        "phone": ["Sie erreichen mich unter {X}.", "Meine Handynummer: {X}.", "Rufen Sie bitte {X} an."],
        "iban": ["Meine IBAN lautet {X}.", "Bitte überweisen Sie den Betrag auf {X}."],
        "card": ["Meine Kreditkarte: {X}.", "Bezahlt wurde mit der Karte {X}."],
        "dob": ["Ich bin am {X} in Köln geboren.", "Geburtsdatum: {X}."],
        "ip": ["Der Zugriff kam von der Adresse {X}.", "Der Server {X} antwortet nicht mehr."],
        "vat": ["Unsere USt-IdNr. ist {X}.", "Umsatzsteuer-ID: {X}"],
        "bic": ["Der BIC der Bank ist {X}.", "BIC/SWIFT: {X}"],
        "DE_IDNR": ["Meine Steuer-ID ist {X}.", "Steuerliche Identifikationsnummer: {X}", "Die IdNr lautet {X}."],
        "AT_SVNR": ["Meine Sozialversicherungsnummer ist {X}.", "SV-Nummer (e-card): {X}"],
        "noctx": ["Hier meine Angaben: {X}.", "Zur Info: {X}", "Anbei: {X}."],
        "neg_order": [
            "Ihre Bestellung Nr. {X} wurde versandt.",
            "Rechnung {X} vom letzten Monat.",
            "Sendungsnummer: {X}.",
        ],
        "neg_org": [
            "Ich arbeite bei {X}.",
            "Die Firma {X} hat den Vertrag unterschrieben.",
            "Wir haben ein Büro in {X}.",
        ],
        "neg_date": ["Das Meeting ist am {X}.", "Der Vertrag endet am {X}."],
    },
    "it": {
        "person": [
            "Mi chiamo {X}.",
            "La pratica di {X} è completa.",
            "{X} ha chiamato stamattina.",
            "Può inoltrarlo al signor {X}?",
            "Appuntamento confermato con {X} giovedì.",
        ],
        "email": ["Il mio indirizzo e-mail è {X}.", "Scrivetemi a {X}.", "Contatto: {X}"],
        "phone": ["Potete chiamarmi al {X}.", "Il mio cellulare: {X}.", "Chiamate il {X} dopo le 18."],
        "iban": ["Il mio IBAN è {X}.", "Si prega di bonificare l'importo su {X}."],
        "card": ["La mia carta di credito: {X}.", "Il pagamento è stato fatto con la carta {X}."],
        "dob": ["Sono nato il {X} a Milano.", "Data di nascita: {X}."],
        "ip": ["L'accesso proveniva dall'indirizzo {X}.", "Il server {X} non risponde."],
        "vat": ["La nostra partita IVA è {X}.", "P. IVA: {X}"],
        "bic": ["Il codice BIC della banca è {X}.", "BIC/SWIFT: {X}"],
        "IT_CF": ["Il mio codice fiscale è {X}.", "C.F.: {X}", "Codice fiscale del paziente: {X}."],
        "noctx": ["Ecco i miei dati: {X}.", "Per info: {X}", "Eccolo: {X}."],
        "neg_order": [
            "Il suo ordine n. {X} è stato spedito.",
            "Fattura {X} del mese scorso.",
            "Numero di spedizione: {X}.",
        ],
        "neg_org": ["Lavoro presso {X}.", "La società {X} ha firmato il contratto.", "Abbiamo un ufficio a {X}."],
        "neg_date": ["La riunione è prevista per il {X}.", "Il contratto scade il {X}."],
    },
    "es": {
        "person": [
            "Me llamo {X}.",
            "El expediente de {X} está completo.",
            "{X} ha llamado esta mañana.",
            "¿Puede enviarlo al señor {X}?",
            "Cita confirmada con {X} el jueves.",
        ],
        "email": ["Mi correo electrónico es {X}.", "Escríbame a {X}.", "Contacto: {X}"],
        "phone": ["Puede llamarme al {X}.", "Mi móvil: {X}.", "Llame al {X} después de las 18."],
        "iban": ["Mi IBAN es {X}.", "Por favor transfiera el importe a {X}."],
        "card": ["Mi tarjeta de crédito: {X}.", "El pago se hizo con la tarjeta {X}."],
        "dob": ["Nací el {X} en Sevilla.", "Fecha de nacimiento: {X}."],
        "ip": ["El acceso venía de la dirección {X}.", "El servidor {X} no responde."],
        "vat": ["Nuestro NIF-IVA es {X}.", "IVA: {X}"],
        "bic": ["El código BIC del banco es {X}.", "BIC/SWIFT: {X}"],
        "ES_DNI": ["Mi DNI es {X}.", "Documento nacional de identidad: {X}", "DNI del titular: {X}."],
        "ES_NIE": ["Mi NIE es {X}.", "Número de identidad de extranjero: {X}"],
        "noctx": ["Aquí están mis datos: {X}.", "Para su información: {X}", "Aquí lo tiene: {X}."],
        "neg_order": ["Su pedido n.º {X} ha sido enviado.", "Factura {X} del mes pasado.", "Número de envío: {X}."],
        "neg_org": ["Trabajo en {X}.", "La empresa {X} ha firmado el contrato.", "Tenemos una oficina en {X}."],
        "neg_date": ["La reunión es el {X}.", "El contrato vence el {X}."],
    },
    "nl": {
        "person": [
            "Mijn naam is {X}.",
            "Het dossier van {X} is compleet.",
            "{X} heeft vanochtend gebeld.",
            "Kunt u dit doorsturen naar meneer {X}?",
            "Afspraak met {X} op donderdag bevestigd.",
        ],
        "email": ["Mijn e-mailadres is {X}.", "Mail me op {X}.", "Contact: {X}"],
        "phone": ["U kunt me bereiken op {X}.", "Mijn mobiel: {X}.", "Bel {X} na 18 uur."],
        "iban": ["Mijn IBAN is {X}.", "Graag het bedrag overmaken naar {X}."],
        "card": ["Mijn creditcard: {X}.", "Er is betaald met kaart {X}."],
        "dob": ["Ik ben geboren op {X} in Utrecht.", "Geboortedatum: {X}."],
        "ip": ["De toegang kwam van adres {X}.", "De server {X} reageert niet meer."],
        "vat": ["Ons btw-nummer is {X}.", "BTW: {X}"],
        "bic": ["De BIC van de bank is {X}.", "BIC/SWIFT: {X}"],
        "NL_BSN": ["Mijn BSN is {X}.", "Burgerservicenummer: {X}", "Het BSN van de patiënt is {X}."],
        "BE_NN": ["Mijn rijksregisternummer is {X}.", "Rijksregisternr.: {X}"],
        "noctx": ["Hier zijn mijn gegevens: {X}.", "Ter info: {X}", "Alstublieft: {X}."],
        "neg_order": ["Uw bestelling nr. {X} is verzonden.", "Factuur {X} van vorige maand.", "Zendingnummer: {X}."],
        "neg_org": [
            "Ik werk bij {X}.",
            "Het bedrijf {X} heeft het contract getekend.",
            "We hebben een kantoor in {X}.",
        ],
        "neg_date": ["De vergadering is op {X}.", "Het contract loopt af op {X}."],
    },
    "pl": {
        "person": [
            "Nazywam się {X}.",
            "Akta {X} są kompletne.",
            "{X} dzwonił dziś rano.",
            "Proszę przekazać to panu {X}.",
            "Spotkanie z {X} potwierdzone na czwartek.",
        ],
        "email": ["Mój adres e-mail to {X}.", "Proszę pisać na {X}.", "Kontakt: {X}"],
        "phone": [
            "Można się ze mną skontaktować pod numerem {X}.",
            "Mój telefon komórkowy: {X}.",
            "Proszę dzwonić na {X}.",
        ],
        "iban": ["Mój numer IBAN to {X}.", "Proszę przelać kwotę na {X}."],
        "card": ["Moja karta kredytowa: {X}.", "Płatność kartą {X}."],
        "dob": ["Urodziłem się {X} w Krakowie.", "Data urodzenia: {X}."],
        "ip": ["Dostęp był z adresu {X}.", "Serwer {X} nie odpowiada."],
        "vat": ["Nasz numer VAT UE to {X}.", "NIP UE: {X}"],
        "bic": ["Kod BIC banku to {X}.", "BIC/SWIFT: {X}"],
        "PL_PESEL": ["Mój PESEL to {X}.", "Numer PESEL: {X}", "PESEL pacjenta: {X}."],
        "noctx": ["Oto moje dane: {X}.", "Do wiadomości: {X}", "Proszę: {X}."],
        "neg_order": [
            "Zamówienie nr {X} zostało wysłane.",
            "Faktura {X} z zeszłego miesiąca.",
            "Numer przesyłki: {X}.",
        ],
        "neg_org": ["Pracuję w {X}.", "Firma {X} podpisała umowę.", "Mamy biuro w {X}."],
        "neg_date": ["Spotkanie jest {X}.", "Umowa wygasa {X}."],
    },
    "en": {
        "person": [
            "My name is {X}.",
            "The file of {X} is complete.",
            "{X} called this morning.",
            "Could you forward this to Mr {X}?",
            "Meeting with {X} confirmed for Thursday.",
        ],
        "email": ["My e-mail address is {X}.", "Write to me at {X}.", "Contact: {X}"],
        "phone": ["You can reach me on {X}.", "My mobile: {X}.", "Call {X} after 6 pm."],
        "iban": ["My IBAN is {X}.", "Please transfer the amount to {X}."],
        "card": ["My credit card: {X}.", "Payment was made with card {X}."],
        "dob": ["I was born on {X} in Cork.", "Date of birth: {X}."],
        "ip": ["The login came from {X}.", "Server {X} stopped responding."],
        "vat": ["Our VAT number is {X}.", "VAT: {X}"],
        "bic": ["The bank's BIC is {X}.", "BIC/SWIFT: {X}"],
        "noctx": ["Here are my details: {X}.", "For reference: {X}", "Here it is: {X}."],
        "neg_order": ["Your order no. {X} has shipped.", "Invoice {X} from last month.", "Tracking number: {X}."],
        "neg_org": ["I work at {X}.", "The company {X} signed the contract.", "We have an office in {X}."],
        "neg_date": ["The meeting is on {X}.", "The contract ends on {X}."],
        # The national identifiers of the other member states, named as their owners do.
        "RO_CNP": ["My CNP (cod numeric personal) is {X}."],
        "SI_EMSO": ["My EMŠO is {X}."],
        "PT_CC": ["My Cartão de Cidadão number is {X}."],
        "PT_NIF": ["My NIF (número de contribuinte) is {X}."],
        "CY_TIC": ["My Cyprus TIC is {X}."],
        "IE_PPS": ["My PPS number is {X}."],
        "FI_HETU": ["My henkilötunnus is {X}."],
        "EE_LT_ID": ["My Estonian isikukood is {X}.", "My Lithuanian asmens kodas is {X}."],
        "GR_AMKA": ["My AMKA is {X}."],
        "LV_PK": ["My Latvian personas kods is {X}."],
        "HR_OIB": ["My OIB is {X}."],
        "BG_EGN": ["My EGN is {X}."],
        "CZ_RC": ["My rodné číslo is {X}."],
        "SE_PNR": ["My personnummer is {X}."],
        "DK_CPR": ["My CPR number is {X}."],
        "HU_TAX_ID": ["My adóazonosító jel is {X}."],
    },
}

DATE_FORMATS = {
    "fr": ["{d:02d}/{m:02d}/{y}", "{d} {mon} {y}"],
    "de": ["{d:02d}.{m:02d}.{y}", "{d}. {mon} {y}"],
    "it": ["{d:02d}/{m:02d}/{y}", "{d} {mon} {y}"],
    "es": ["{d:02d}/{m:02d}/{y}", "{d} de {mon} de {y}"],
    "nl": ["{d:02d}-{m:02d}-{y}", "{d} {mon} {y}"],
    "pl": ["{d:02d}.{m:02d}.{y}", "{d} {mon} {y}"],
    "en": ["{y}-{m:02d}-{d:02d}", "{d} {mon} {y}"],
}
MONTHS = {
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "it": "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    "nl": "januari februari maart april mei juni juli augustus september oktober november december",
    "pl": "stycznia lutego marca kwietnia maja czerwca lipca sierpnia września października listopada grudnia",
    "en": "January February March April May June July August September October November December",
}

VAT_FORMATS = {  # country: (body length, alphabet of the last character(s))
    "DE": 9,
    "FR": 11,
    "IT": 11,
    "ES": 9,
    "NL": 12,
    "PL": 10,
    "BE": 10,
    "AT": 9,
}


@dataclass
class Entity:
    type: str
    start: int
    end: int
    context: bool = True
    evaded: bool = False


@dataclass
class Message:
    lang: str
    text: str
    entities: list[Entity] = field(default_factory=list)
    negatives: int = 0
    # The hard negatives' spans: (start, end, context), context False for the bare numbers
    # in the context-free sentences (what run.py's ceiling counts).
    negative_spans: list[tuple[int, int, bool]] = field(default_factory=list)


# -- evasion -----------------------------------------------------------------------------
ZW, SHY, NBSP = "\u200b", "\u00ad", "\u00a0"
HOMOGLYPHS = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441"}


def evade(value: str, rng: random.Random) -> str:
    kinds = ["zw", "shy", "fullwidth", "nbsp", "homoglyph"]
    kind = rng.choice(kinds)
    if kind == "zw":
        i = rng.randrange(1, len(value))
        return value[:i] + ZW + value[i:]
    if kind == "shy":
        i = rng.randrange(1, len(value))
        return value[:i] + SHY + value[i:]
    if kind == "fullwidth":
        return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in value)
    if kind == "nbsp" and " " in value:
        return value.replace(" ", NBSP)
    chars = [i for i, c in enumerate(value) if c in HOMOGLYPHS]
    if chars:
        i = rng.choice(chars)
        return value[:i] + HOMOGLYPHS[value[i]] + value[i + 1 :]
    return value[:1] + ZW + value[1:]


# -- values --------------------------------------------------------------------------------
class Values:
    def __init__(self, seed: int, names: str) -> None:
        self.rng = random.Random(seed)
        self.fakers = {}
        for lang, loc in LOCALES.items():
            f = Faker(loc)
            f.seed_instance(seed)
            self.fakers[lang] = f
        self.names = names
        self._held: dict[str, tuple[list[str], list[str]]] = {}

    def person(self, lang: str) -> str:
        f = self.fakers[lang]
        if self.names == "held_out":
            firsts, lasts = self._held_lists(lang)
            return f"{self.rng.choice(firsts)} {self.rng.choice(lasts)}"
        return f"{f.first_name()} {f.last_name()}"

    def _held_lists(self, lang: str) -> tuple[list[str], list[str]]:
        if lang not in self._held:
            f = self.fakers[lang]
            firsts = {f.first_name() for _ in range(6000)}
            lasts = {f.last_name() for _ in range(6000)}
            hf = sorted(n for n in firsts if " " not in n and held_out(n))
            hl = sorted(n for n in lasts if " " not in n and held_out(n))
            self._held[lang] = (hf, hl)
        return self._held[lang]

    def email(self, lang: str) -> str:
        return self.fakers[lang].email()

    def phone(self, lang: str) -> str:
        f = self.fakers[lang]
        for _ in range(50):
            p = f.phone_number()
            try:
                if phonenumbers.is_valid_number(phonenumbers.parse(p, REGION[lang])):
                    return p
            except phonenumbers.NumberParseException:
                pass
        raise RuntimeError(f"no valid phone number from Faker {lang}")

    def iban(self, lang: str) -> str:
        for _ in range(50):
            i = self.fakers[lang].iban()
            if stdnum_iban.is_valid(i):
                return stdnum_iban.format(i) if self.rng.random() < 0.6 else i
        raise RuntimeError("no valid IBAN")

    def card(self, lang: str) -> str:
        n = self.fakers[lang].credit_card_number(card_type=self.rng.choice(["visa16", "mastercard", "amex"]))
        if len(n) == 16 and self.rng.random() < 0.6:
            return " ".join(n[i : i + 4] for i in range(0, 16, 4))
        return n

    def ip(self, lang: str) -> str:
        f = self.fakers[lang]
        return f.ipv4_public() if self.rng.random() < 0.7 else f.ipv6()

    def bic(self, lang: str) -> str:
        return self.fakers[lang].swift(length=self.rng.choice([8, 11]))

    def vat(self, lang: str) -> str:
        cc = {
            "fr": "FR",
            "de": "DE",
            "it": "IT",
            "es": "ES",
            "nl": "NL",
            "pl": "PL",
            "en": self.rng.choice(["BE", "AT"]),
        }[lang]
        length = VAT_FORMATS[cc]
        if cc == "FR":  # key from the SIREN (itself Luhn-valid)
            from stdnum import luhn

            siren = "".join(self.rng.choice(string.digits) for _ in range(8))
            siren += luhn.calc_check_digit(siren)
            return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"
        for _ in range(5000):
            if cc == "NL":
                body = "".join(self.rng.choice(string.digits) for _ in range(9)) + "B0" + self.rng.choice("123456789")
            elif cc == "ES":
                body = (
                    self.rng.choice("ABX")
                    + "".join(self.rng.choice(string.digits) for _ in range(7))
                    + self.rng.choice(string.ascii_uppercase + string.digits)
                )
            elif cc == "AT":
                body = "U" + "".join(self.rng.choice(string.digits) for _ in range(8))
            elif cc == "BE":
                body = "0" + "".join(self.rng.choice(string.digits) for _ in range(9))
            else:
                body = "".join(self.rng.choice(string.digits) for _ in range(length))
            if eu_vat.is_valid(cc + body):
                return cc + body
        raise RuntimeError(f"no VAT for {cc}")

    def dob(self, lang: str) -> str:
        rng = self.rng
        y, m, d = rng.randrange(1940, 2005), rng.randrange(1, 13), rng.randrange(1, 29)
        fmt = rng.choice(DATE_FORMATS[lang])
        return fmt.format(d=d, m=m, y=y, mon=MONTHS[lang].split()[m - 1])

    def national(self, type_: str) -> str:
        return identifiers.generate(type_, self.rng)[1]


# -- negatives -----------------------------------------------------------------------------
def negative_values(rng: random.Random) -> list[Callable[[], str]]:
    def digits(n: int) -> str:
        return "".join(rng.choice(string.digits) for _ in range(n))

    def ean13() -> str:
        body = rng.choice("3456789") + digits(11)
        s = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body))
        return body + str((10 - s % 10) % 10)

    return [
        lambda: digits(rng.choice([8, 9, 10, 11, 12, 13])),
        lambda: f"{rng.randrange(2019, 2027)}-{digits(6)}",
        lambda: f"INV-{rng.randrange(2019, 2027)}-{digits(5)}",
        ean13,
        lambda: "1Z" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
        lambda: str(uuid.UUID(int=rng.getrandbits(128))),
        lambda: hashlib.sha1(digits(8).encode()).hexdigest(),
        lambda: (
            f"{rng.randrange(1, 20)}.{rng.randrange(0, 10)}.{rng.randrange(1000, 30000)}.{rng.randrange(100, 5000)}"
        ),
        lambda: str(rng.randrange(1_600_000_000_000, 1_800_000_000_000)),
        lambda: digits(4) + " " + digits(4) + " " + digits(4) + " " + digits(4),  # card-shaped, Luhn fails 9 in 10
    ]


def build(
    n_messages: int = 2400, seed: int = 1, names: str = "faker", evasion_rate: float = 0.15, context_rate: float = 0.8
) -> list[Message]:
    rng = random.Random(seed)
    vals = Values(seed, names)
    negs = negative_values(rng)
    langs = list(LOCALES)
    id_types = list(identifiers.GENERATED_TYPES)
    kinds = ["person", "email", "phone", "iban", "card", "dob", "ip", "vat", "bic"]
    out = []
    for i in range(n_messages):
        lang = langs[i % len(langs)]
        sentences: list[tuple[str, str | None, str, bool]] = []  # (template, type, value, context)
        # one national identifier in most messages, written in its country's language
        if rng.random() < 0.85:
            t = id_types[(i // len(langs)) % len(id_types)] if rng.random() < 0.7 else rng.choice(id_types)
            id_lang = ID_LANG.get(t, "en")
            tpl_lang = lang if id_lang == lang else id_lang
            value = vals.national(t)
            if rng.random() < context_rate:
                sentences.append((rng.choice(SENT[tpl_lang][t]), t, value, True))
            else:
                sentences.append((rng.choice(SENT[tpl_lang]["noctx"]), t, value, False))
            if rng.random() < 0.3:
                # the same sentence with a near-miss: must not fire
                miss = identifiers.near_miss(t, value, rng)
                if miss:
                    sentences.append((rng.choice(SENT[tpl_lang][t]), None, miss, True))
        for kind in rng.sample(kinds, rng.randrange(1, 4)):
            value = {
                "person": vals.person,
                "email": vals.email,
                "phone": vals.phone,
                "iban": vals.iban,
                "card": vals.card,
                "dob": vals.dob,
                "ip": vals.ip,
                "vat": vals.vat,
                "bic": vals.bic,
            }[kind](lang)
            type_ = TYPE_OF[kind]
            sentences.append((rng.choice(SENT[lang][kind]), type_, value, True))
        for _ in range(rng.randrange(1, 3)):
            sentences.append((rng.choice(SENT[lang]["neg_order"]), None, rng.choice(negs)(), True))
        if rng.random() < 0.3:
            # a bare number of an identifier's length in the very sentence a context-free
            # identifier gets: nothing but the check can tell them apart
            digits = "".join(rng.choice(string.digits) for _ in range(rng.choice([9, 10, 11, 13])))
            sentences.append((rng.choice(SENT[lang]["noctx"]), None, digits, False))
        if rng.random() < 0.4:
            sentences.append((rng.choice(SENT[lang]["neg_date"]), None, vals.dob(lang), True))
        if rng.random() < 0.5:  # company and city names: capitalised words that are no person
            tpl = rng.choice(SENT[lang]["neg_org"])
            f = vals.fakers[lang]
            sentences.append(
                (
                    tpl,
                    None,
                    f.city()
                    if "{X}." in tpl and ("à" in tpl or " in " in tpl or " a " in tpl or " en " in tpl or " w " in tpl)
                    else f.company(),
                    True,
                )
            )
        for _ in range(rng.randrange(1, 3)):
            sentences.append((vals.fakers[lang].sentence(nb_words=rng.randrange(6, 14)), None, "", True))
        rng.shuffle(sentences)
        msg = Message(lang, "")
        parts: list[str] = []
        pos = 0
        for tpl, type_, value, ctx in sentences:
            evaded = False
            if type_ is not None and rng.random() < evasion_rate:
                value, evaded = evade(value, rng), True
            if "{X}" in tpl:
                before, after = tpl.split("{X}", 1)
                s = before + value + after
                if type_ is not None:
                    msg.entities.append(Entity(type_, pos + len(before), pos + len(before) + len(value), ctx, evaded))
                else:
                    msg.negatives += 1
                    msg.negative_spans.append((pos + len(before), pos + len(before) + len(value), ctx))
            else:
                s = tpl
            parts.append(s)
            pos += len(s) + 1
        msg.text = " ".join(parts)
        out.append(msg)
    return out
