"""Would a multi-pattern engine beat plain `re` for the scanner's hot loops?

    .venv/bin/python -m bench.privacy.engines

Measures CPU time per call (median of repeats, thread time, so other load on the machine
matters less) on the 1 KB messages of run.py, for the same work done three ways:

1. the digit-run scan that starts every number check (`numbers._NUM`): `re` vs RE2
   (google-re2; without the one lookahead, which RE2 lacks);
2. finding name-list words: the scanner's capitalised-word regex plus one dict lookup
   per word, vs an Aho-Corasick automaton (pyahocorasick) over the lower-cased text with
   all ~50k list tokens, keeping whole-word hits;
3. the context keyword lists (~700 words) as one trie-shaped `re` (what the scanner used
   to run on an 80-character window around each number) vs the scanner's
   `keywords.KEYWORDS.find`, one Aho-Corasick pass over the whole message that reports
   every keyword of every list with its word-boundary rule already applied.

RE2 is a bench dependency only; pyahocorasick is a runtime one since the scanner adopted
it for (3) (see docs/benchmarks.md).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import ahocorasick
import re2

from bench.privacy.run import PII_FREE_1KB, TYPICAL_1KB
from souverain.privacy import context, names, numbers
from souverain.privacy.keywords import KEYWORDS


def cpu_us(fn: Callable[[], object], n: int = 300, repeat: int = 7) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.thread_time_ns()
        for _ in range(n):
            fn()
        runs.append((time.thread_time_ns() - t0) / n / 1000)
    return statistics.median(runs)


def main() -> None:
    texts = {"typical": TYPICAL_1KB, "pii-free": PII_FREE_1KB}
    table = names.name_flags()

    # RE2 has no lookaround: the trailing "(?!\w)" of the letter group is dropped (a
    # slightly wider match; the Python side would re-check it).
    num_re2 = re2.compile(numbers._NUM.pattern.replace("(?!\\w)", ""))

    auto = ahocorasick.Automaton()
    for token, flags in table.items():
        if flags & (names.FIRST | names.LAST):
            auto.add_word(token, (len(token), flags))
    auto.make_automaton()

    words = {w for ws in context.SPECIFIC.values() for w in ws} | set(context.GENERIC_WORDS) | set(context.NEGATIVE_WORDS)
    keyword_re = context.keyword_regex(words)  # the former per-window matcher
    window = TYPICAL_1KB[60:140]

    def names_re(text: str) -> int:
        get = table.get
        return sum(1 for t in names._CAP.findall(text) if get(t.casefold(), 0) & 3)

    def names_ac(text: str) -> int:
        low = text.lower()
        n = 0
        for end, (length, _) in auto.iter(low):
            start = end - length + 1
            if (start == 0 or not low[start - 1].isalnum()) and (end + 1 == len(low) or not low[end + 1].isalnum()):
                n += 1
        return n

    print("| work | text | plain re (µs) | engine (µs) | engine |")
    print("|---|---|---:|---:|---|")
    for label, text in texts.items():
        low = text.lower()
        a = cpu_us(lambda: list(numbers._NUM.finditer(text)))
        b = cpu_us(lambda: list(num_re2.finditer(text)))
        print(f"| digit-run scan | {label} | {a:.1f} | {b:.1f} | RE2 |")
        a = cpu_us(lambda: names_re(text))
        b = cpu_us(lambda: names_ac(text))
        print(f"| name-list words | {label} | {a:.1f} | {b:.1f} | Aho-Corasick |")
        a = cpu_us(lambda: list(keyword_re.finditer(low)))
        b = cpu_us(lambda: KEYWORDS.find(text))
        print(f"| context keywords (whole text) | {label} | {a:.1f} | {b:.1f} | Aho-Corasick (keywords.py, all lists) |")
    a = cpu_us(lambda: list(keyword_re.finditer(window.lower())))
    print(f"| context keywords (one 80-character window, the former way) | typical | {a:.1f} | | |")
    print("\n(The name figure for Aho-Corasick includes the word-boundary filter in Python; keywords.py "
          "needs none, since its keys carry their boundary spaces.)")


if __name__ == "__main__":
    main()
