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

Hyperscan (the `hyperscan` package: Intel's library, bundled in the wheel) is measured
on the same three jobs, with a Python callback per match as its binding requires: (1)
every automaton key as a literal over the same folded text, against pyahocorasick's
`iter` on it; (2) the digit-run pattern (start of match on, the one lookahead dropped as
for RE2), which reports every end offset a match can have rather than the longest, so
the scanner would still have to take the runs apart; (3) the name-list tokens as
literals over the lower-cased text, keeping whole words as the Aho-Corasick variant does.

Besides the two fixed messages, the first 50 dense 1 KB slices of the corpus (run.py's
`kb_messages`, seed 1, hash seed 0 as run.py sets it) are measured: the figure is the
mean per slice.

RE2 and hyperscan are bench dependencies only; pyahocorasick is a runtime one since the
scanner adopted it for (3) (see docs/benchmarks.md).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import ahocorasick
import hyperscan
import re2

from bench.privacy import corpus
from bench.privacy.run import PII_FREE_1KB, TYPICAL_1KB, kb_messages, pin_hash_seed
from souverain.privacy import context, names, numbers
from souverain.privacy.detectors import KEYWORDS
from souverain.privacy.keywords import fold


def cpu_us(fn: Callable[[], object], n: int = 300, repeat: int = 7) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.thread_time_ns()
        for _ in range(n):
            fn()
        runs.append((time.thread_time_ns() - t0) / n / 1000)
    return statistics.median(runs)


def cpu_us_each(fn: Callable[[str], object], texts: list[str], repeat: int = 7) -> float:
    """Mean CPU µs per text of `fn` over `texts`, median of `repeat` passes."""
    runs = []
    for _ in range(repeat):
        t0 = time.thread_time_ns()
        for text in texts:
            fn(text)
        runs.append((time.thread_time_ns() - t0) / len(texts) / 1000)
    return statistics.median(runs)


def names_in_lists(text: str, table: Mapping[str, int]) -> int:
    """The scanner's way to find name-list words: capitalised words, one dict lookup each."""
    get = table.get
    return sum(1 for t in names._CAP.findall(text) if get(t.casefold(), 0) & (names.FIRST | names.LAST))


def _hs_database(expressions: list[bytes], flags: int) -> hyperscan.Database:
    db = hyperscan.Database()
    db.compile(
        expressions=expressions,
        ids=list(range(len(expressions))),
        elements=len(expressions),
        flags=[flags] * len(expressions),
    )
    return db


def hyperscan_rows(texts: dict[str, list[str]]) -> None:
    """Hyperscan against what the scanner does, on the same inputs (see the docstring)."""
    keys = KEYWORDS.keys
    kw_db = _hs_database([k.encode("utf-8") for k in keys], 0)
    num_db = _hs_database([numbers._NUM.pattern.replace("(?!\\w)", "").encode()], hyperscan.HS_FLAG_SOM_LEFTMOST)
    table = names.name_flags()
    tokens = [t for t, f in table.items() if f & (names.FIRST | names.LAST)]
    t0 = time.perf_counter()
    name_db = _hs_database([t.encode("utf-8") for t in tokens], 0)
    compile_s = time.perf_counter() - t0

    def kw_hs(padded: bytes) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        kw_db.scan(padded, match_event_handler=lambda i, a, b, f, c: out.append((b, i)))
        return out

    def num_hs(data: bytes) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        num_db.scan(data, match_event_handler=lambda i, a, b, f, c: out.append((a, b)))
        return out

    def names_hs(low: bytes) -> int:
        hits: list[tuple[int, int]] = []
        name_db.scan(low, match_event_handler=lambda i, a, b, f, c: hits.append((i, b)))
        n = 0
        for i, end in hits:
            start = end - len(tokens[i].encode("utf-8"))
            if (start == 0 or not low[start - 1 : start].isalnum()) and (
                end == len(low) or not low[end : end + 1].isalnum()
            ):
                n += 1
        return n

    print(
        f"\nHyperscan {hyperscan.__version__} ({len(keys)} keyword keys, {len(tokens)} name tokens compiled in "
        f"{compile_s:.1f} s):\n"
    )
    print("| work | text | scanner's way (µs) | hyperscan (µs) | matches reported, scanner / hyperscan |")
    print("|---|---|---:|---:|---|")
    for label, group in texts.items():
        padded = [" " + fold(t) + " " for t in group]
        raw = [t.encode("utf-8") for t in group]
        lows = [t.lower().encode("utf-8") for t in group]
        automaton = KEYWORDS._automaton
        a = cpu_us_each(lambda p: list(automaton.iter(p)), padded)
        b = cpu_us_each(lambda p: kw_hs(p.encode("utf-8")), padded)
        m = (sum(len(list(automaton.iter(p))) for p in padded), sum(len(kw_hs(p.encode("utf-8"))) for p in padded))
        print(f"| keywords (folded text, engine only) | {label} | {a:.1f} | {b:.1f} | {m[0]} / {m[1]} |")
        a = cpu_us_each(lambda t: list(numbers._NUM.finditer(t)), group)
        b = cpu_us_each(num_hs, raw)
        m = (sum(len(list(numbers._NUM.finditer(t))) for t in group), sum(len(num_hs(r)) for r in raw))
        print(f"| digit-run scan | {label} | {a:.1f} | {b:.1f} | {m[0]} / {m[1]} |")
        a = cpu_us_each(lambda t: names_in_lists(t, table), group)
        b = cpu_us_each(names_hs, lows)
        m = (sum(names_in_lists(t, table) for t in group), sum(names_hs(w) for w in lows))
        print(f"| name-list words | {label} | {a:.1f} | {b:.1f} | {m[0]} / {m[1]} |")


def main() -> None:
    pin_hash_seed("bench.privacy.engines")  # the dense slices come from the corpus
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

    words = (
        {w for ws in context.SPECIFIC.values() for w in ws} | set(context.GENERIC_WORDS) | set(context.NEGATIVE_WORDS)
    )
    keyword_re = context.keyword_regex(words)  # the former per-window matcher
    window = TYPICAL_1KB[60:140]

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
        a = cpu_us(lambda: names_in_lists(text, table))
        b = cpu_us(lambda: names_ac(text))
        print(f"| name-list words | {label} | {a:.1f} | {b:.1f} | Aho-Corasick |")
        a = cpu_us(lambda: list(keyword_re.finditer(low)))
        b = cpu_us(lambda: KEYWORDS.find(text))
        print(
            f"| context keywords (whole text) | {label} | {a:.1f} | {b:.1f} | Aho-Corasick (keywords.py, all lists) |"
        )
    a = cpu_us(lambda: list(keyword_re.finditer(window.lower())))
    print(f"| context keywords (one 80-character window, the former way) | typical | {a:.1f} | | |")
    print(
        "\n(The name figure for Aho-Corasick includes the word-boundary filter in Python; keywords.py "
        "needs none, since its keys carry their boundary spaces.)"
    )
    dense = kb_messages(corpus.build(2400, seed=1), 200)[:50]
    hyperscan_rows({"typical": [TYPICAL_1KB], "pii-free": [PII_FREE_1KB], "dense (50 slices)": dense})


if __name__ == "__main__":
    main()
