"""What every detector reads and returns: `Doc` (the normalised text) and `Hit`.

Hits are in normalised offsets; the scanner maps them back to the original text. `Doc`
also offers `found`, every keyword of the scanner's lists in the text with its position
and labels (one Aho-Corasick pass, keywords.py, made when a detector first asks): the
keyword-gated detectors test a label before running any regex, so on text without their
words they cost a set lookup, and context windows are read from it with a bisect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from souverain.privacy.keywords import EMPTY, KEYWORDS, Found


_SENTENCE_END = re.compile(r"[.!?;]\s+(?=[^\W\d_])|\n")
_PUNCT_END = re.compile(r"[.!?;]\s+(?=[^\W\d_])")
_NEWLINE = re.compile(r"\n")


def sentence_cuts(text: str) -> tuple[list[int], list[int], list[int]]:
    """Every place `_SENTENCE_END` can match in `text`, found once: (starts, ends,
    limits) ordered by start, where `limit` is the first position after what the match
    needs (its look-ahead letter included), so a window [a, b) can hold it when
    start >= a and limit <= b. A line break inside a longer match is listed on its
    own too: a window that cuts the longer match still holds the line break."""
    cand = [(m.start(), m.end(), m.end() + 1) for m in _PUNCT_END.finditer(text)]
    if "\n" in text:
        cand += [(m.start(), m.end(), m.end()) for m in _NEWLINE.finditer(text)]
        cand.sort()
    return [c[0] for c in cand], [c[1] for c in cand], [c[2] for c in cand]


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
    _cuts: tuple[list[int], list[int], list[int]] | None = None

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
    def cuts(self) -> tuple[list[int], list[int], list[int]]:
        """The text's sentence ends (`sentence_cuts`), found once, for the context
        windows of every candidate."""
        if self._cuts is None:
            self._cuts = sentence_cuts(self.text)
        return self._cuts

    @property
    def extra_labels(self) -> frozenset[str]:
        """Labels of the keywords in the outside context (a JSON key)."""
        if self._extra_labels is None:
            self._extra_labels = KEYWORDS.find(self.extra).labels if self.extra else EMPTY.labels
        return self._extra_labels


_ASCII_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}
