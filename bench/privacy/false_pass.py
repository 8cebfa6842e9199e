"""How often does a random string of an identifier's shape pass its check?

This sets each scheme's confidence without context (souverain/privacy/ids.py: STRONG,
MEDIUM, WEAK). Random strings are drawn uniformly from the scheme's compact shape with
digits only (letters where the shape demands them), which is what order numbers and
product codes look like. The second rate is over every digit string of the length, the
shape's own constraints included (Hungary's leading 8, Portugal's leading 1 to 3): that
is the chance a random order number of that length is taken for the identifier, and the
one the confidence levels follow (MEDIUM up to 1 in 50).

    .venv/bin/python bench/privacy/false_pass.py [N]
"""

from __future__ import annotations

import random
import string
import sys

from souverain.privacy import ids

DIGITS = string.digits
UPPER = string.ascii_uppercase


def random_like(scheme: ids.IdScheme, length: int, rng: random.Random) -> str:
    # Draw from the same alphabet per position as the scheme's shape would admit, simply:
    # digits, with the positions the regex needs as letters filled by trial.
    for _ in range(200):
        s = "".join(rng.choice(DIGITS) for _ in range(length))
        if scheme.shape.fullmatch(s):
            return s
        # letters at the end / start for the shapes that need them
        for fix in (
            lambda s: s[:-1] + rng.choice(UPPER),
            lambda s: rng.choice("XYZ") + s[1:-1] + rng.choice(UPPER),
            lambda s: s[:-2] + rng.choice(UPPER) + rng.choice("ABHW"),
            lambda s: s[:6] + "-" + s[7:],
            lambda s: s[:9] + rng.choice(UPPER) + rng.choice(UPPER) + s[11:],
        ):
            t = fix(s)
            if scheme.shape.fullmatch(t):
                return t
    return ""


def main(n: int = 20000) -> None:
    rng = random.Random(7)
    print(f"{'scheme':10} {'len':>3} {'pass rate':>10} {'of digits':>10}  base")
    for length, schemes in sorted(ids.BY_LENGTH.items()):
        for scheme in schemes:
            if scheme.type in ("IT_CF", "MT_ID"):
                continue
            passed = tried = 0
            for _ in range(n):
                s = random_like(scheme, length, rng)
                if not s:
                    continue
                tried += 1
                passed += bool(ids.matches(s.replace("-", ""), s) and scheme in ids.matches(s.replace("-", ""), s))
            digits = sum(
                bool(scheme in ids.matches(d, d))
                for d in ("".join(rng.choice(DIGITS) for _ in range(length)) for _ in range(n))
            )
            if tried:
                print(f"{scheme.type:10} {length:>3} {passed / tried:>10.5f} {digits / n:>10.5f}  {scheme.base}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
