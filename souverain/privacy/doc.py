"""What every detector reads and returns: `Doc` (the normalised text) and `Hit`.

Hits are in normalised offsets; the scanner maps them back to the original text. `Doc`
also offers `words`, the set of the text's lower-cased words as UTF-8 bytes, which the
keyword-gated detectors test with a set intersection (C speed) before running any regex:
on text that has none of their words they cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


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
    _words: frozenset[bytes] | None = None

    @classmethod
    def of(cls, text: str, extra: str = "", phone_regions: tuple[str, ...] = (), min_confidence: float = 0.0) -> Doc:
        up = text.upper()
        if len(up) != len(text):  # "ß" -> "SS": upper-case ASCII only
            up = text.translate(_ASCII_UPPER)
        return cls(text, up, extra, phone_regions, min_confidence)

    @property
    def words(self) -> frozenset[bytes]:
        """The set of lower-cased words (UTF-8 bytes), for the keyword gates: building it
        is a few C calls, where a keyword regex would walk every character."""
        if self._words is None:
            raw = (self.text + " " + self.extra).lower().encode("utf-8", "surrogatepass")
            self._words = frozenset(raw.translate(_PUNCT_TO_SPACE).split())
        return self._words


def gate(words: frozenset[bytes], keys: frozenset[bytes]) -> bool:
    return not keys.isdisjoint(words)


def keyset(words: str) -> frozenset[bytes]:
    return frozenset(w.encode() for w in words.split())


_ASCII_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}
_PUNCT_TO_SPACE = bytes(
    b if (chr(b).isalnum() or b >= 0x80) else 0x20 for b in range(256)
)
