"""What every detector reads and returns: `Doc` (the normalised text) and `Hit`.

Hits are in normalised offsets; the scanner maps them back to the original text. `Doc`
also offers `found`, every keyword of the scanner's lists in the text with its position
and labels (one Aho-Corasick pass, keywords.py, made when a detector first asks): the
keyword-gated detectors test a label before running any regex, so on text without their
words they cost a set lookup, and context windows are read from it with a bisect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from souverain.privacy.keywords import EMPTY, KEYWORDS, Found


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
    extra: str = ""
    phone_regions: tuple[str, ...] = ()
    # Candidates that could not reach this confidence are not even checked.
    min_confidence: float = 0.0
    _found: Found | None = None
    _extra_labels: frozenset[str] | None = None

    @classmethod
    def of(cls, text: str, extra: str = "", phone_regions: tuple[str, ...] = (), min_confidence: float = 0.0) -> Doc:
        up = text.upper()
        if len(up) != len(text):  # "ß" -> "SS": upper-case ASCII only
            up = text.translate(_ASCII_UPPER)
        return cls(text, up, extra, phone_regions, min_confidence)

    @property
    def found(self) -> Found:
        """Every keyword of the scanner's lists in the text, with positions and labels
        (one automaton pass, made on first use: keywords.py)."""
        if self._found is None:
            self._found = KEYWORDS.find(self.text)
        return self._found

    @property
    def extra_labels(self) -> frozenset[str]:
        """Labels of the keywords in the outside context (a JSON key)."""
        if self._extra_labels is None:
            self._extra_labels = KEYWORDS.find(self.extra).labels if self.extra else EMPTY.labels
        return self._extra_labels


_ASCII_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}
