"""Every keyword list of the scanner in one Aho-Corasick automaton, matched once per text.

The detectors need to know which words are near a candidate: "PESEL" before a number,
"born" near a date, "passport" before a code, a bank word near a BIC, an honorific before
a name, a health term anywhere. One regex per candidate is far slower than one pass over
the text (bench/HISTORY.md). So each detector module declares its lists (`KEYWORD_LISTS`,
a label each), `detectors.py` builds one automaton from all of them, and `find(text)`
walks the text once (pyahocorasick, C) and returns every keyword it holds, with its
position and labels. A detector then asks for the labels inside a window
(`Found.between`), which is a bisect and a short loop.

Matching is on a folded copy of the text of the same length: lower case, Latin
diacritics removed ("Sécurité" and "securite" are one word), every other character that
is not a letter or digit turned into a space. Keywords are folded the same way. Word
boundaries are then spaces, which the automaton matches literally:

- WHOLE: the keyword is a whole word (" nir "); the default for up to 4 characters;
- PREFIX: the keyword starts a word (" steuer", " pesel"); the default for 5 to 7;
- ANYWHERE: the keyword may sit inside a word, so that "Sozialversicherungsnummer"
  finds "versicherungsnummer"; the default for 8 or more.

Only matches that respect their rule are reported at all: the automaton never sees "no"
inside "know", so there is nothing to filter afterwards.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable
from typing import NamedTuple

import ahocorasick

from souverain.privacy.normalise import runs_above

WHOLE, PREFIX, ANYWHERE = "whole", "prefix", "anywhere"


def _fold_table() -> dict[int, int | None]:
    """Lower-cased character -> folded character (same length): Latin letters lose their
    diacritics, characters that are neither letters nor digits become spaces."""
    table: dict[int, int | None] = {}
    for cp in range(0x80):
        ch = chr(cp)
        if not ch.isalnum():
            table[cp] = 0x20
    for cp in range(0x80, 0x3000):
        ch = chr(cp)
        if not ch.isalnum():
            table[cp] = 0x20
            continue
        if cp <= 0x24F:
            base = unicodedata.normalize("NFD", ch)[0]
            if base != ch and base.isascii() and base.isalpha():
                table[cp] = ord(base.lower())
    return table


_FOLD = _fold_table()


# The same for ASCII, as a byte table (bytes.translate is faster: bench/HISTORY.md).
_ASCII_FOLD = bytes(ord(chr(b).lower()) if chr(b).isalnum() else 0x20 for b in range(256))


# Other text: `str.translate` with a dict looks every character up (slow:
# bench/HISTORY.md). Latin-1 text (French, German, Spanish...) goes through a byte table as
# ASCII does. Text with wider characters goes through the byte table too, and each run
# of wider characters is then folded on its own; where there are many runs (Greek,
# Cyrillic), the whole text is changed by `re`, which copies the runs in between whole:
# characters that are neither letters nor digits become spaces (all of them up to
# U+3000, where the table ends), then Latin letters with a diacritic their base letter.
# The result is `lower().translate(_FOLD)`'s: tests/test_privacy_fastpaths.py.
_LATIN1_FOLD = bytes(_FOLD.get(b, b) or 0x20 for b in range(256))
_NOT_ALNUM = re.compile(
    "[" + "".join(re.escape(chr(cp)) for cp, to in sorted(_FOLD.items()) if to == 0x20 and cp != 0x20) + "]"
)
_DIACRITIC_MAP = {chr(cp): chr(to) for cp, to in _FOLD.items() if to is not None and to != 0x20}
_DIACRITIC = re.compile("[" + "".join(re.escape(c) for c in sorted(_DIACRITIC_MAP)) + "]")


def _base_letter(m: re.Match[str]) -> str:
    return _DIACRITIC_MAP[m.group(0)]


def fold(text: str) -> str:
    """The folded copy of `text`, of the same length (see the module docstring)."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_FOLD).decode("ascii")
    low = text.lower()
    if len(low) != len(text):  # "İ" lowers to two characters: lower the others only
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    try:
        return low.encode("latin-1").translate(_LATIN1_FOLD).decode("latin-1")
    except UnicodeEncodeError:
        pass
    # Latin-1 with a few wider characters here and there (Polish, Czech: "ł", "č"): the
    # byte table for all of it, then each run of wider characters folded on its own.
    wide = runs_above(low, 0xFF)
    if len(wide) > _WIDE_RUNS_MAX:
        return _fold_wide(low)  # mostly wider text (Greek, Bulgarian): whole
    folded = low.encode("latin-1", "replace").translate(_LATIN1_FOLD).decode("latin-1")
    parts: list[str] = []
    pos = 0
    for a, b in wide:
        parts.append(folded[pos:a])
        parts.append(_fold_wide(low[a:b]))
        pos = b
    parts.append(folded[pos:])
    return "".join(parts)


_WIDE_RUNS_MAX = 64


def _fold_wide(low: str) -> str:
    """The fold of lower-cased text wider than Latin-1: two regex passes (non-letters to
    spaces, then diacritics), or a table lookup for a character or two."""
    if len(low) <= 2:
        return low.translate(_FOLD)
    return _DIACRITIC.sub(_base_letter, _NOT_ALNUM.sub(" ", low))


def default_rule(word: str) -> str:
    n = len(fold(word).strip())
    return WHOLE if n <= 4 else PREFIX if n <= 7 else ANYWHERE


class Found:
    """The keywords found in one text: `hits` is a list of (start, end, labels) in the
    text's offsets, ordered by start; `labels` is every label present."""

    __slots__ = ("hits", "labels", "_starts")

    def __init__(self, hits: list[tuple[int, int, frozenset[str]]]) -> None:
        hits.sort()  # by start, then end (two keys never share both)
        self.hits = hits
        self._starts = [h[0] for h in hits]
        self.labels = frozenset().union(*[h[2] for h in hits])

    def between(self, a: int, b: int) -> frozenset[str]:
        """Labels of the keywords lying wholly inside text[a:b]."""
        hits = self.hits
        i = bisect_left(self._starts, a)
        out: frozenset[str] = frozenset()
        while i < len(hits) and hits[i][0] < b:
            if hits[i][1] <= b:
                out = out | hits[i][2]
            i += 1
        return out

    def inside(self, a: int, b: int) -> list[tuple[int, int, frozenset[str]]]:
        """The keyword hits lying wholly inside text[a:b]."""
        i = bisect_left(self._starts, a)
        out = []
        while i < len(self.hits) and self.hits[i][0] < b:
            if self.hits[i][1] <= b:
                out.append(self.hits[i])
            i += 1
        return out

    def where(self, label: str) -> list[tuple[int, int]]:
        """Spans of the keywords carrying `label`."""
        return [(s, e) for s, e, labels in self.hits if label in labels]


EMPTY = Found([])


class KeywordList(NamedTuple):
    """Words a detector declares under one label, and how each must sit in a word (WHOLE,
    PREFIX, ANYWHERE; None: by its length, `default_rule`)."""

    words: Iterable[str]
    label: str
    rule: str | None = None


class Keywords:
    """One automaton over every declared list (each detector module's `KEYWORD_LISTS`);
    the scanner's is built once, explicitly, in `detectors.py`. Immutable once made."""

    __slots__ = ("_entries", "_automaton")

    def __init__(self, lists: Iterable[KeywordList]) -> None:
        self._entries: dict[str, frozenset[str]] = {}  # automaton key -> labels
        entries: dict[str, set[str]] = {}
        for words, label, rule in lists:
            for word in words:
                body = " ".join(fold(word).split())
                if not body:
                    continue
                r = rule or default_rule(word)
                key = f" {body} " if r == WHOLE else f" {body}" if r == PREFIX else body
                entries.setdefault(key, set()).add(label)
        automaton = ahocorasick.Automaton()
        for key, labels in entries.items():
            self._entries[key] = frozenset(labels)
            lead = len(key) - len(key.lstrip(" "))
            trail = len(key) - len(key.rstrip(" "))
            automaton.add_word(key, (len(key), lead, trail, frozenset(labels)))
        automaton.make_automaton()
        self._automaton = automaton

    @property
    def keys(self) -> list[str]:
        """The automaton's keys: folded words, padded with a space where a boundary is needed."""
        return list(self._entries)

    def find(self, text: str) -> Found:
        if not text:
            return EMPTY
        # Padded with a space at each end, so words at the edges have their boundary;
        # `end` is the padded index of the key's last character.
        hits = [
            (end - length + lead, end - trail, labels)
            for end, (length, lead, trail, labels) in self._automaton.iter(" " + fold(text) + " ")
        ]
        return Found(hits) if hits else EMPTY
