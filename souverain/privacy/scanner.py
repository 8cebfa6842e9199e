"""The scanner: normalise, run the detectors, resolve overlaps, apply the tenant's lists.

    scanner = Scanner(ScannerConfig(...))     # once per tenant (compiles its lists)
    scanner.scan(text, context="")            # -> list[Finding], original offsets
    scanner.scan_request(chat_request)        # -> list[Finding] with .path set (payload.py)
    classify(findings, config)                # -> Classification (types and counts only)

Order inside `scan`: normalise (normalise.py) → detectors (numbers and identifiers,
IBAN, BIC, e-mail, IP, dates of birth, passports/ID cards, names, health terms, the
tenant's dictionaries and deny list, optionally spaCy) → drop what is below the type's
threshold or disabled → resolve overlaps (highest confidence first, then the longer
span) → map to original offsets → drop allow-listed values. A `Scanner` holds no state
between calls and is safe to share between threads and requests.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from souverain.classes import DataClass
from souverain.privacy import names
from souverain.privacy.config import ScannerConfig
from souverain.privacy.detectors import BUILTIN, KEYWORDS
from souverain.privacy.doc import Doc, Hit
from souverain.privacy.findings import Finding, type_info
from souverain.privacy.normalise import normalise
from souverain.privacy.payload import scan_payload, to_builtins

_log = logging.getLogger("souverain.privacy")


CLEAN_CACHE_LENGTH = 64
CLEAN_CACHE_SIZE = 8192


class Scanner:
    def __init__(self, config: ScannerConfig | None = None) -> None:
        self.config = config or ScannerConfig()
        c = self.config
        self._dictionaries = [names.Dictionary(t, entries) for t, entries in c.dictionaries.items() if entries]
        self._deny = names.Dictionary("DENYLIST", c.deny) if c.deny else None
        self._allow_exact = frozenset(_canon(a) for a in c.allow if not a.startswith("re:"))
        self._allow_re = [re.compile(a[3:], re.IGNORECASE) for a in c.allow if a.startswith("re:")]
        self._nlp = _spacy(c.spacy_model) if c.spacy_model else None
        self._names = names.name_flags(c.names_table)
        self._min_confidence = min([c.threshold, *c.thresholds.values()])
        # Short texts in which nothing was found, and the key they sat under: the keys and
        # enum values of every request ("messages", "role", "user"). Only clean ones, so
        # no personal value is kept; bounded, so it cannot grow with traffic.
        self._clean: set[tuple[str, str]] = set()

    # -- text ------------------------------------------------------------------------
    def scan(self, text: str, *, context: str = "") -> list[Finding]:
        """Findings in `text`, in order of position. `context` is outside text that
        explains it (the JSON key a value sits under)."""
        if not text:
            return []
        short = len(text) <= CLEAN_CACHE_LENGTH
        if short and (text, context) in self._clean:
            return []
        found = self._scan(text, context)
        if short and not found:
            if len(self._clean) >= CLEAN_CACHE_SIZE:
                self._clean.clear()
            self._clean.add((text, context))
        return found

    def _scan(self, text: str, context: str) -> list[Finding]:
        norm = normalise(text)
        doc = Doc.of(norm.text, KEYWORDS, context, self.config.phone_regions, self._min_confidence)
        hits = list(self._hits(doc))
        if not hits:
            return []
        c = self.config
        thresholds, threshold, disabled = c.thresholds, c.threshold, c.disabled
        hits = [h for h in hits if h.confidence >= thresholds.get(h.type, threshold) and h.type not in disabled]
        out = []
        for h in _resolve(hits):
            start, end = norm.span(h.start, h.end)
            value = text[start:end]
            if self._allowed(value) and h.type != "DENYLIST":
                continue
            out.append(Finding(h.type, start, end, h.confidence, h.validator, value))
        out.sort(key=lambda f: f.start)
        return out

    def _hits(self, doc: Doc) -> Iterator[Hit]:
        for _, detect in BUILTIN:
            yield from detect(doc)
        yield from names.name_hits(doc, self._names)
        for d in self._dictionaries:
            yield from d.hits(doc.text)
        if self._deny is not None:
            yield from self._deny.hits(doc.text)
        if self._nlp is not None:
            for ent in self._nlp(doc.text).ents:
                if ent.label_ in ("PER", "PERSON"):
                    yield Hit("PERSON", ent.start_char, ent.end_char, 0.75, f"spacy:{self.config.spacy_model}")

    def _allowed(self, value: str) -> bool:
        if not self._allow_exact and not self._allow_re:
            return False
        if _canon(value) in self._allow_exact:
            return True
        return any(r.search(value) for r in self._allow_re)

    # -- requests --------------------------------------------------------------------
    def scan_request(self, request: Any) -> list[Finding]:
        """Findings in every piece of text of a `ChatRequest` (or any JSON-shaped
        payload), each with `path` saying where (see payload.py)."""
        return scan_payload(self, to_builtins(request)).all

    def classify(self, findings: Iterable[Finding]) -> Classification:
        return classify(findings, self.config)


def _canon(value: str) -> str:
    return " ".join(value.split()).casefold()


def _resolve(hits: list[Hit]) -> list[Hit]:
    """Non-overlapping hits: highest confidence first, then the longer span, then the
    order the detectors produced them in (their priority)."""
    order = sorted(range(len(hits)), key=lambda i: (-hits[i].confidence, -(hits[i].end - hits[i].start), i))
    # The spans kept never overlap, so kept in order of start only the neighbours of a
    # new span can overlap it: a bisection, not a pass over all of them (the number of
    # hits in a long dense text made that quadratic).
    starts: list[int] = []
    ends: list[int] = []
    out = []
    for i in order:
        h = hits[i]
        k = bisect.bisect_right(starts, h.start)
        if k > 0 and ends[k - 1] > h.start:
            continue
        if k < len(starts) and starts[k] < h.end:
            continue
        starts.insert(k, h.start)
        ends.insert(k, h.end)
        out.append(h)
    return out


@cache
def _spacy(model: str) -> Any:
    """Load a spaCy pipeline installed as a package (never downloaded); None if absent,
    with a warning: name detection then runs without it, and the operator should know."""
    try:
        import spacy
    except ImportError:
        _log.warning("spacy_model %r is set but spaCy is not installed: names are found without it", model)
        return None
    try:
        return spacy.load(model, disable=["parser", "lemmatizer", "morphologizer", "attribute_ruler"])
    except (OSError, ValueError, ImportError) as e:
        _log.warning("spacy_model %r could not be loaded (%s): names are found without it", model, e)
        return None


# ---------------------------------------------------------------------------------------
# Classification


@dataclass(frozen=True, slots=True)
class Classification:
    """What a request holds, by type and count: never a value. `data_class` is the
    highest class found (PUBLIC when nothing was); `special` needs a health term AND
    personal data in the same request."""

    data_class: DataClass
    counts: Mapping[str, int]

    @property
    def categories(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for type_, n in self.counts.items():
            out[type_info(type_).category] += n
        return dict(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_class": str(self.data_class),
            "counts": dict(sorted(self.counts.items())),
            "categories": dict(sorted(self.categories.items())),
        }


def classify(findings: Iterable[Finding], config: ScannerConfig | None = None) -> Classification:
    overrides = config.classes if config is not None else {}
    counts = Counter(f.type for f in findings)
    level = DataClass.PUBLIC
    special = False
    for type_ in counts:
        cls = overrides.get(type_, type_info(type_).data_class)
        if cls == DataClass.SPECIAL and type_ not in overrides:
            special = True  # only counts with personal data beside it
            continue
        level = max(level, cls)
    if special and level >= DataClass.PERSONAL:
        level = DataClass.SPECIAL
    return Classification(level, dict(counts))


@cache
def default_scanner() -> Scanner:
    """The scanner with default settings (built once; it is immutable)."""
    return Scanner()


def scan(text: str, config: ScannerConfig | None = None, *, context: str = "") -> list[Finding]:
    """Scan one string with `config` (default settings when None)."""
    scanner = default_scanner() if config is None else Scanner(config)
    return scanner.scan(text, context=context)


def scan_request(request: Any, config: ScannerConfig | None = None) -> list[Finding]:
    scanner = default_scanner() if config is None else Scanner(config)
    return scanner.scan_request(request)
