"""Normalisation against evasion, keeping offsets into the original text.

Detectors read `Normalised.text`; findings are reported in original offsets through
`Normalised.span()`. What is undone:

- Unicode NFKC (full-width letters and digits, ligatures, compatibility spaces such as
  NBSP and narrow NBSP, superscripts), applied per grapheme cluster (a character and the
  combining marks that follow it), so each output character knows its source span;
- invisible characters dropped: zero-width space/joiners, word joiner, BOM, soft hyphen,
  bidirectional controls, variation selectors, Hangul fillers;
- decimal digits of any script (Arabic-Indic, Devanagari, ...) to ASCII `0-9`;
- dashes and minus signs (U+2010..U+2015, U+2212, ...) to `-`;
- common homoglyphs: Cyrillic and Greek letters that look Latin (`а`, `е`, `о`, `р`,
  `с`, `х`, `Α`, `Β`, `Ο`, ...) are mapped to Latin, but only inside a word that also has
  Latin letters or ASCII digits, so Bulgarian or Greek prose is left alone.

Separators inside numbers (`4111 1111-1111.1111`) are not removed here: the number
detectors accept them and validate the compacted digits, which keeps one offset per
character.

Most text needs none of this. A plain ASCII string, or one that is already NFKC and has
none of the characters above, is returned as is with an identity offset map: that check
is two C-level calls, so the common case costs next to nothing.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass

# Characters removed outright: they render as nothing (or almost) and are used to split
# an identifier so that a regex misses it.
_DROP = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f"
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f"
    "\u3164\ufe00\ufe01\ufe02\ufe03\ufe04\ufe05\ufe06\ufe07\ufe08\ufe09\ufe0a\ufe0b\ufe0c\ufe0d\ufe0e\ufe0f"
    "\ufeff\uffa0"
)
_DROP_SET = frozenset(_DROP)
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63\uff0d"

# Cyrillic and Greek letters with a Latin lookalike (Unicode confusables, the common ones).
_CONFUSABLES = {
    # Cyrillic
    "а": "a",
    "в": "b",
    "е": "e",
    "ё": "e",
    "к": "k",
    "м": "m",
    "н": "h",
    "о": "o",
    "р": "p",
    "с": "c",
    "т": "t",
    "у": "y",
    "х": "x",
    "і": "i",
    "ї": "i",
    "ј": "j",
    "ѕ": "s",
    "ԁ": "d",
    "ԛ": "q",
    "ԝ": "w",
    "һ": "h",
    "ӏ": "l",
    "ɡ": "g",
    "А": "A",
    "В": "B",
    "Е": "E",
    "Ё": "E",
    "К": "K",
    "М": "M",
    "Н": "H",
    "О": "O",
    "Р": "P",
    "С": "C",
    "Т": "T",
    "У": "Y",
    "Х": "X",
    "І": "I",
    "Ї": "I",
    "Ј": "J",
    "Ѕ": "S",
    "Ԁ": "D",
    "Ԛ": "Q",
    "Ԝ": "W",
    "Һ": "H",
    "Ӏ": "I",
    "З": "3",
    "б": "6",
    # Greek
    "Α": "A",
    "Β": "B",
    "Ε": "E",
    "Ζ": "Z",
    "Η": "H",
    "Ι": "I",
    "Κ": "K",
    "Μ": "M",
    "Ν": "N",
    "Ο": "O",
    "Ρ": "P",
    "Τ": "T",
    "Υ": "Y",
    "Χ": "X",
    "ο": "o",
    "ν": "v",
    "ρ": "p",
    "ι": "i",
    "κ": "k",
    "α": "a",
    "τ": "t",
    "υ": "u",
    "χ": "x",
}
_CONF_CHARS = "".join(_CONFUSABLES)
_CONF_TABLE = str.maketrans(_CONFUSABLES)

# One search each tells whether the slow path is needed at all (besides the NFKC
# check): a character of the lists above, or a decimal digit other than 0-9 (`[^\D0-9]`
# is "a digit and not ASCII"). Two single-class searches: as one alternation
# (`...|(?![0-9])\d`) `re` tried a branch at every character (bench/HISTORY.md).
_SUSPICIOUS_CHAR = re.compile(f"[{re.escape(_DROP + _DASHES + _CONF_CHARS)}]")
_OTHER_DIGIT = re.compile(r"[^\D0-9]")


def _suspicious(text: str, a: int, b: int) -> bool:
    return _SUSPICIOUS_CHAR.search(text, a, b) is not None or _OTHER_DIGIT.search(text, a, b) is not None


# Lookalikes, the start of the word before one, the rest of a word, and Latin in a word.
_CONF_CHAR = re.compile(f"[{_CONF_CHARS}]")
_WORD_END = re.compile(r"\w*")
_LATIN = re.compile(r"[A-Za-z0-9]")


@dataclass(frozen=True, slots=True)
class Normalised:
    """A normalised copy of `original`, and the way back to original offsets.

    The map is a list of runs, in order: run k starts at normalised offset `runs[k]` and
    at original offset `origins[k]`. A run whose `group_ends[k]` is -1 was copied as it
    was (character i comes from original offset origins[k] + i - runs[k]); any other run
    is what one original span, origins[k] to group_ends[k], became (a character and its
    combining marks, a full-width digit). All three are None when the text was unchanged
    (identity map). A run per change, not an offset per character: accented text of a
    KB has a handful of changes and a thousand characters.
    """

    text: str
    original: str
    runs: tuple[int, ...] | None = None
    origins: tuple[int, ...] | None = None
    group_ends: tuple[int, ...] | None = None

    @property
    def changed(self) -> bool:
        return self.runs is not None

    def _char(self, i: int) -> tuple[int, int]:
        """The original span of normalised character i."""
        runs, origins, group_ends = self.runs, self.origins, self.group_ends
        assert runs is not None and origins is not None and group_ends is not None
        k = bisect_right(runs, i) - 1
        if group_ends[k] < 0:
            at = origins[k] + (i - runs[k])
            return at, at + 1
        return origins[k], group_ends[k]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of normalised `text[start:end]` (end exclusive)."""
        if self.runs is None:
            return start, end
        if end <= start:
            pos = self._char(start)[0] if start < len(self.text) else len(self.original)
            return pos, pos
        return self._char(start)[0], self._char(end - 1)[1]


def normalise(text: str) -> Normalised:
    """Normalise `text` for detection (see the module docstring)."""
    if text.isascii():
        return Normalised(text, text)
    if unicodedata.is_normalized("NFKC", text) and not _suspicious(text, 0, len(text)):
        return Normalised(text, text)
    return _slow(text)


# One character of a class, not `[...]+`: a pattern that starts with a repeat gives `re`
# no first character to skip ahead to, so it tries a match at every position (about 90
# instructions a character of accented text, against 15; docs/benchmarks.md).
_ABOVE = {0x7F: re.compile(r"[^\x00-\x7f]"), 0xFF: re.compile(r"[^\x00-\xff]")}


def runs_above(text: str, top: int) -> list[tuple[int, int]]:
    """The spans of the maximal runs of characters above `top` (0x7F: non-ASCII; 0xFF:
    wider than Latin-1) in `text`, in order."""
    pattern = _ABOVE[top]
    out = []
    n = len(text)
    m = pattern.search(text)
    while m is not None:
        a = m.start()
        b = a + 1
        while b < n and ord(text[b]) > top:
            b += 1
        out.append((a, b))
        m = pattern.search(text, b + 1) if b < n else None
    return out


def _slow(text: str) -> Normalised:
    """Per-character work on the non-ASCII runs that need it; the rest (ASCII, and
    accented words already in NFKC without anything suspicious) is copied whole."""
    out: list[str] = []
    runs: list[int] = []  # the map (see Normalised)
    origins: list[int] = []
    group_ends: list[int] = []
    size = 0  # normalised characters so far
    n = len(text)
    pos = 0
    for a, b in runs_above(text, 0x7F):
        if _as_is(text, a, b):
            continue  # nothing to undo here ("Müller", "été"): copied with the text around it
        if a > pos and unicodedata.combining(text[a]):
            a -= 1  # a combining mark belongs with the ASCII letter before it
        if a > pos:
            out.append(text[pos:a])
            runs.append(size)
            origins.append(pos)
            group_ends.append(-1)
            size += a - pos
        i = a
        while i < b:
            ch = text[i]
            j = i + 1
            while j < n and unicodedata.combining(text[j]) and text[j] not in _DROP_SET:
                j += 1
            if ch in _DROP_SET:
                i = j  # a dropped character's combining marks (rare) go with it
                continue
            if ch.isascii() and j == i + 1:
                norm = ch
            elif ch in _DASHES:
                norm = "-"
            elif ch.isdecimal():
                norm = str(unicodedata.decimal(ch, 0))
            else:
                norm = unicodedata.normalize("NFKC", text[i:j])
                if not norm.isascii() and any(c.isdecimal() for c in norm):
                    norm = "".join(
                        str(unicodedata.decimal(c)) if c.isdecimal() and not c.isascii() else c for c in norm
                    )
            if norm:
                out.append(norm)
                runs.append(size)
                origins.append(i)
                group_ends.append(j)
                size += len(norm)
            i = j
        pos = max(b, i)
    if pos < n:
        out.append(text[pos:])
        runs.append(size)
        origins.append(pos)
        group_ends.append(-1)
    result = "".join(out)
    if _CONF_CHAR.search(result) is not None:
        result = _unconfuse(result)
    return Normalised(result, text, tuple(runs), tuple(origins), tuple(group_ends))


# Whether a run of one or two non-ASCII characters can stay as it is. The answer depends
# on those characters alone, and the same few (é, ł, ü, ’...) come back in every text,
# so it is remembered: one dict lookup where the checks are four calls (a dense KB of
# the corpus has about twenty non-ASCII runs, nearly all this short). Only runs of one
# or two characters are kept, so what stays in memory from prompts is at most pairs of
# letters, and at most _SHORT_RUNS_MAX of them.
_SHORT_RUNS: dict[str, bool] = {}
_SHORT_RUNS_MAX = 4096


def _as_is(text: str, a: int, b: int) -> bool:
    """Nothing to undo in text[a:b], a run of non-ASCII characters: it does not start
    with a combining mark (which belongs with the letter before), holds nothing
    suspicious and is NFKC already."""
    if b - a > 2:
        return _check_run(text, a, b)
    run = text[a:b]
    known = _SHORT_RUNS.get(run)
    if known is not None:
        return known
    ok = _check_run(text, a, b)
    if len(_SHORT_RUNS) < _SHORT_RUNS_MAX:
        _SHORT_RUNS[run] = ok
    return ok


def _check_run(text: str, a: int, b: int) -> bool:
    return (
        not unicodedata.combining(text[a])
        and not _suspicious(text, a, b)
        and unicodedata.is_normalized("NFKC", text[a:b])
    )


def _unconfuse(text: str) -> str:
    """Map lookalikes to Latin inside the words that also hold Latin letters or ASCII
    digits (same length, so offsets hold). Each word is found from a lookalike in it, so
    the cost follows the number of lookalikes, not the length of the text."""
    parts = []
    pos = 0
    for m in _CONF_CHAR.finditer(text):
        if m.start() < pos:
            continue  # in a word already mapped
        a = m.start()
        while a > pos and (text[a - 1].isalnum() or text[a - 1] == "_"):
            a -= 1
        word_end = _WORD_END.match(text, m.start())  # `\w*` always matches
        b = word_end.end() if word_end is not None else m.end()
        word = text[a:b]
        if _LATIN.search(word) is not None:
            parts.append(text[pos:a])
            parts.append(word.translate(_CONF_TABLE))
            pos = b
    parts.append(text[pos:])
    return "".join(parts)
