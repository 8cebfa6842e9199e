"""Scan a fixed message N times, for counting instructions under valgrind: on a VM whose
speed drifts by 2x between minutes, the instruction count of a scan is the comparison
between two commits that stays put (times are still what the goals are stated in).

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python -m bench.privacy.count typical 200      # and with 0
    per scan = (Collected with 200 - Collected with 0) / 200

Messages: typical, free (run.py's TYPICAL_1KB and PII_FREE_1KB). Faker is not imported.
"""

from __future__ import annotations

import sys

from souverain.privacy import Scanner


def main() -> None:
    # run.py imports the corpus (Faker); the two fixed messages are read from its source.
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parent / "run.py").read_text(encoding="utf-8"))
    texts = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in ("TYPICAL_1KB", "PII_FREE_1KB")
        ):
            texts[node.targets[0].id] = ast.literal_eval(node.value.value)[:1024]
    text = {"typical": texts["TYPICAL_1KB"], "free": texts["PII_FREE_1KB"]}[sys.argv[1]]
    scanner = Scanner()
    scanner.scan(text)  # first use builds the automaton and loads the lists
    for _ in range(int(sys.argv[2])):
        scanner.scan(text)


if __name__ == "__main__":
    main()
