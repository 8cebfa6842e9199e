"""Health terms: the one GDPR Art. 9 category the scanner flags by itself.

A word list, by stem, in the EU languages the corpus covers (EN, FR, DE, IT, ES, NL, PL,
PT, and a few Nordic/Central European terms): diagnoses and common conditions, treatment,
sick leave, pregnancy, disability, and ICD-10 codes written after "ICD"/"CIM"/"CIE".

A health term alone is not personal data ("diabetes is on the rise"), so it does not by
itself make a request `special`: `classify()` raises the class to `special` only when the
same request also carries personal data about someone. The other Art. 9 categories
(religion, ethnic origin, political opinion, trade-union membership, sexual orientation,
genetic and biometric data) are not detected: a tenant or caller must declare them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from souverain.privacy.doc import Doc, Hit

_STEMS = """
diagnos diagnostic diagnoz disease illness sick chronic cancer tumour tumor carcinom leukem leukäm leucem
diabet insulin hiv aids hepatit depressi anxiety schizophren bipolar psychiatr psychos alzheimer parkinson dementia
demenz démence demenza demencia epilep asthma allerg pregnan schwanger enceinte grossesse incinta gravidanz
embaraz zwanger ciąż chemotherap radiotherap surgery operiert chirurg dialys medication medikament médicament
farmaco medicament medicijn lek leczen prescription ordonnance rezept ricetta receta recept disabilit behinderung
handicap disabilità discapacidad gehandicapt niepełnospraw krankheit erkrank krankschreib arbeitsunfähig maladie
malade arrêt maladie malattia malato enfermedad enfermo ziekte ziek choroba chory doença doente sjukdom sygdom
sairaus betegség nemoc bolest overdose addiction sucht dépendance dipendenza adicción verslaving uzależnien
alcoholi alkoholi tuberculos stroke schlaganfall infarct infarkt herzinfarkt crise cardiaque ictus
hospitali krankenhaus hôpital ospedal hospital ziekenhuis szpital autism autis adhd anorex bulimi
""".split()
_SHORT = frozenset("hiv aids adhd copd".split())
_STEM_LIST = [w for w in _STEMS if w not in _SHORT]


def _plain(word: str) -> str:
    """Without diacritics: "diabète" -> "diabete", so one stem covers both spellings."""
    if word.isascii():
        return word
    return "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))


_STEM_RE = re.compile("|".join(sorted({re.escape(_plain(w)) for w in _STEM_LIST}, key=len, reverse=True)))
# The first four bytes of each stem: a word of the text is a candidate when its first
# four bytes are one of these (one set lookup per distinct word of the text).
_P4 = frozenset(w.encode()[:4] for w in _STEM_LIST) | frozenset(w.encode() for w in _SHORT)
_WORD = re.compile(r"[^\W\d_]{2,}")
_ICD = re.compile(r"(?:icd|cim|cie)(?:-?10)?(?:-gm)?\s*[:]?\s*([A-TV-Z][0-9]{2}(?:\.[0-9]{1,2})?)", re.IGNORECASE)
_ICD_GATE = frozenset((b"icd", b"cim", b"cie", b"icd10"))


def _is_health(word: str) -> bool:
    word = _plain(word)
    return word in _SHORT or _STEM_RE.match(word) is not None


def health_hits(doc: Doc) -> Iterator[Hit]:
    words = doc.words
    candidates = [w for w in words if w[:4] in _P4]
    if candidates and any(_is_health(w.decode("utf-8", "ignore")) for w in candidates):
        low = doc.text.lower()
        if len(low) == len(doc.text):
            for m in _WORD.finditer(low):
                if _is_health(m.group(0)):
                    yield Hit("HEALTH", m.start(), m.end(), 0.7, "health term list")
    if not _ICD_GATE.isdisjoint(words):
        for m in _ICD.finditer(doc.text):
            yield Hit("HEALTH", m.start(1), m.end(1), 0.8, "icd-10 code + context")
