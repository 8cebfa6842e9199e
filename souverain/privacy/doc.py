"""What every detector reads and returns: `Doc` (the normalised text) and `Hit`.

Hits are in normalised offsets; the scanner maps them back to the original text. `Doc`
also offers `found`, every keyword of the scanner's lists in the text with its position
and labels (one pass of the scanner's automaton, keywords.py, made when a detector first asks): the
keyword-gated detectors test a label before running any regex, so on text without their
words they cost a set lookup, and context windows are read from it with a bisect.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from souverain.privacy.keywords import EMPTY, Found, Keywords


class Hit(NamedTuple):
    type: str
    start: int  # normalised offsets
    end: int
    confidence: float
    validator: str


@dataclass(slots=True)
class Doc:
    """What the detectors read: the normalised text and an ASCII-upper-cased twin of the
    same length (so offsets agree), plus words from outside the text (a JSON key)."""

    text: str
    up: str
    keywords: Keywords  # the scanner's one automaton (detectors.KEYWORDS)
    extra: str = ""
    phone_regions: tuple[str, ...] = ()
    # Candidates that could not reach this confidence are not even checked.
    min_confidence: float = 0.0
    _found: Found | None = None
    _extra_labels: frozenset[str] | None = None
    _marks: bytes | None = None

    @classmethod
    def of(
        cls,
        text: str,
        keywords: Keywords,
        extra: str = "",
        phone_regions: tuple[str, ...] = (),
        min_confidence: float = 0.0,
    ) -> Doc:
        up = text.upper()
        if len(up) != len(text):  # "ß" -> "SS": upper-case ASCII only
            try:
                # bytes.upper changes ASCII letters only, far faster than a dict
                # translate (bench/HISTORY.md)
                up = text.encode("latin-1").upper().decode("latin-1")
            except UnicodeEncodeError:
                up = text.translate(_ASCII_UPPER)
        return cls(text, up, keywords, extra, phone_regions, min_confidence)

    @property
    def found(self) -> Found:
        """Every keyword of the scanner's lists in the text, with positions and labels
        (one automaton pass, on first use: keywords.py)."""
        if self._found is None:
            self._found = self.keywords.find(self.text)
        return self._found

    @property
    def extra_labels(self) -> frozenset[str]:
        """Labels of the keywords in the outside context (a JSON key)."""
        if self._extra_labels is None:
            self._extra_labels = self.keywords.find(self.extra).labels if self.extra else EMPTY.labels
        return self._extra_labels

    @property
    def marks(self) -> bytes:
        """One byte per character: `0` for an ASCII digit, `.` for the rest. See
        `digit_anchored`. Encoding to Latin-1 with "replace" keeps one byte per
        character for any text (a character outside Latin-1 becomes one `?`)."""
        if self._marks is None:
            self._marks = self.text.encode("latin-1", "replace").translate(_MARK)
        return self._marks


_ASCII_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}
_MARK = bytes(0x30 if 0x30 <= b <= 0x39 else 0x2E for b in range(256))


def digit_anchored(pattern: re.Pattern[str], doc: Doc) -> Iterator[re.Match[str]]:
    """What `pattern.finditer(doc.text)` yields, for a pattern that can only start at an
    ASCII digit. The next digit is found with bytes.find in `doc.marks`
    (memchr) and the pattern is tried there only: a regex search tests its first
    character class at every position, which costs most on text without numbers and on
    text with accents or non-Latin letters (bench/HISTORY.md; slower for the capitalised
    words of names.py, capitals being far more frequent)."""
    marks = doc.marks
    text = doc.text
    i = marks.find(b"0")
    while i != -1:
        m = pattern.match(text, i)
        if m is None:
            i = marks.find(b"0", i + 1)
        else:
            yield m
            end = m.end()
            i = marks.find(b"0", end if end > i else i + 1)
