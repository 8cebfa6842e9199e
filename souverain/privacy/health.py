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
from collections.abc import Iterator

from souverain.privacy.doc import Doc, Hit
from souverain.privacy.keywords import PREFIX, WHOLE, KeywordList

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


KEYWORD_LISTS: tuple[KeywordList, ...] = (
    KeywordList(_STEM_LIST, "HEALTH", PREFIX),  # a stem starts a word: "diabet" in "Diabète"
    KeywordList(_SHORT, "HEALTH", WHOLE),
    KeywordList(["icd", "cim", "cie", "icd10"], "ICD", WHOLE),
)
_WORD = re.compile(r"[^\W\d_]+")
_ICD = re.compile(r"(?:icd|cim|cie)(?:-?10)?(?:-gm)?\s*[:]?\s*([A-TV-Z][0-9]{2}(?:\.[0-9]{1,2})?)", re.IGNORECASE)


def health_hits(doc: Doc) -> Iterator[Hit]:
    found = doc.found
    if "HEALTH" in found.labels:
        last = -1
        for start, _ in found.where("HEALTH"):
            m = _WORD.match(doc.text, start)
            if m is not None and m.end() - start >= 2 and start != last:
                last = start
                yield Hit("HEALTH", start, m.end(), 0.7, "health term list")
    if "ICD" in found.labels:
        for m in _ICD.finditer(doc.text):
            yield Hit("HEALTH", m.start(1), m.end(1), 0.8, "icd-10 code + context")
