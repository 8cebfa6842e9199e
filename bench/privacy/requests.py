"""Detection per request: is a request that carries personal data classed `personal`, and
is business text without any left below it? And does the scan stay linear in the size?

    .venv/bin/python -m bench.privacy.requests [--seed N] [--json OUT]

- positives (`positives()`): business documents of 1 to 3 KB (`business.py`), each with
  one personal value (70%) or two or three, of any type the scanner claims as personal
  data, in a sentence of `corpus.py` that names it (70%) or one that does not ("Here it
  is: ...") where the scanner claims the type without a word (identifiers, IBAN, card,
  e-mail, phone, IP address, a first name and a surname); 10% evaded as corpus.py does.
  Recall = the share of positives whose class is `personal` or higher.
- negatives (`business.negatives()`): invoices, shipping notices, logs, code, SQL, CSV
  exports, product sheets, status reports, with no personal data. False-positive rate =
  the share classed `personal` or higher, with the types that made it so.
- speed: CPU time of one scan on one core (`time.thread_time_ns`) of texts of 1 KB,
  100 KB and 1 MB cut from the two sets, and the time per KB of each size.

Classes come from `Scanner().scan(text)` and `classify(findings)`, default settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import string
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers

from bench.privacy import business, corpus, identifiers
from souverain.privacy import DataClass, Scanner, classify, native
from souverain.privacy.findings import type_info

# Types a value is drawn from: half national identifiers (every scheme with a check),
# half the other personal types.
OTHER_KINDS = ("person", "email", "phone", "iban", "card", "dob", "ip", "passport", "id_card")
CONTEXT_ONLY = {"dob", "passport", "id_card"}  # the scanner claims them only next to their word

DOCUMENT_SENTENCES = {
    "passport": {
        "fr": ["Mon numéro de passeport est {X}."],
        "de": ["Meine Reisepassnummer ist {X}."],
        "it": ["Il numero del mio passaporto è {X}."],
        "es": ["Mi número de pasaporte es {X}."],
        "nl": ["Mijn paspoortnummer is {X}."],
        "pl": ["Numer mojego paszportu to {X}."],
        "en": ["My passport number is {X}."],
    },
    "id_card": {
        "fr": ["N° de carte d'identité : {X}."],
        "de": ["Personalausweis-Nr.: {X}"],
        "it": ["Numero della carta d'identità: {X}."],
        "es": ["Documento de identidad: {X}."],
        "nl": ["Nummer identiteitskaart: {X}."],
        "pl": ["Numer dowodu osobistego: {X}."],
        "en": ["ID card number: {X}."],
    },
}


@dataclass
class Request:
    kind: str  # the business text it is written into
    text: str
    values: list[tuple[str, bool, bool]] = field(default_factory=list)  # (type, with context, evaded)


def _document_code(rng: random.Random) -> str:
    """A passport or identity-card number: letters and digits, with an ICAO 9303 check
    digit (what the machine-readable zone carries)."""
    body = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.choice([1, 2]))) + "".join(
        rng.choice(string.digits) for _ in range(rng.choice([6, 7]))
    )
    weights = (7, 3, 1)
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * weights[i % 3] for i, c in enumerate(body))
    return body + str(total % 10)


def _value(kind: str, lang: str, vals: corpus.Values, rng: random.Random) -> str:
    if kind in identifiers.GENERATED_TYPES:
        return vals.national(kind)
    if kind in ("passport", "id_card"):
        return _document_code(rng)
    return getattr(vals, kind)(lang)


def positives(n: int = 400, seed: int = 1, context_rate: float = 0.7, evasion_rate: float = 0.1) -> list[Request]:
    rng = random.Random(seed * 7919 + 1)
    vals = corpus.Values(seed, "faker")
    carriers = business.negatives(n, seed + 1000)
    langs = list(corpus.LOCALES)
    national = list(identifiers.GENERATED_TYPES)
    out = []
    for i in range(n):
        doc = carriers[i]
        lines = doc.text.split("\n")
        req = Request(doc.kind, "")
        for _ in range(1 if rng.random() < 0.7 else rng.randrange(2, 4)):
            kind = rng.choice(national) if rng.random() < 0.5 else rng.choice(OTHER_KINDS)
            if kind in national:
                lang = corpus.ID_LANG.get(kind, "en")
                type_ = kind
            else:
                lang = rng.choice(langs)
                type_ = corpus.TYPE_OF[kind]
            value = _value(kind, lang, vals, rng)
            ctx = kind in CONTEXT_ONLY or rng.random() < context_rate
            if kind == "phone" and not ctx and (value.isdigit() or not value.startswith(("+", "00", "0"))):
                # without a telephone word the scanner claims a number written as one, with
                # a country code or a trunk prefix and separators ("06 12 34 56 78"), not
                # bare digits (docs/privacy.md): write it as people do abroad
                number = phonenumbers.parse(value, corpus.REGION[lang])
                value = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            if kind in DOCUMENT_SENTENCES:
                template = rng.choice(DOCUMENT_SENTENCES[kind][lang])
            else:
                template = rng.choice(corpus.SENT[lang][kind if ctx else "noctx"])
            evaded = rng.random() < evasion_rate
            if evaded:
                value = corpus.evade(value, rng)
            lines.insert(rng.randrange(1, len(lines) + 1), template.replace("{X}", value))
            req.values.append((type_, ctx, evaded))
        req.text = "\n".join(lines)
        out.append(req)
    return out


# -- measuring ---------------------------------------------------------------------------
def is_personal(scanner: Scanner, text: str) -> tuple[bool, Counter[str]]:
    findings = scanner.scan(text)
    cls = classify(findings)
    personal = cls.data_class >= DataClass.PERSONAL
    return personal, Counter(
        f.type for f in findings if personal and type_info(f.type).data_class >= DataClass.PERSONAL
    )


def measure_positives(scanner: Scanner, reqs: list[Request]) -> dict:
    by: dict[str, Counter[str]] = defaultdict(Counter)
    missed = []
    for r in reqs:
        hit, _ = is_personal(scanner, r.text)
        keys = [f"text:{r.kind}", "all", "values:one" if len(r.values) == 1 else "values:several"]
        if len(r.values) == 1:
            type_, ctx, evaded = r.values[0]
            keys += [f"type:{type_}", "context:yes" if ctx else "context:no", *(["evaded"] if evaded else [])]
        for k in keys:
            by[k]["n"] += 1
            by[k]["hit"] += hit
        if not hit:
            missed.append({"kind": r.kind, "values": r.values})
    rows = {k: {"n": c["n"], "recall": c["hit"] / c["n"]} for k, c in sorted(by.items())}
    return {"recall": rows["all"]["recall"], "n": len(reqs), "by": rows, "missed": missed}


def measure_negatives(scanner: Scanner, docs: list[business.Doc]) -> dict:
    by: dict[str, Counter[str]] = defaultdict(Counter)
    causes: dict[str, Counter[str]] = defaultdict(Counter)
    for d in docs:
        fp, types = is_personal(scanner, d.text)
        for k in (d.kind, "all"):
            by[k]["n"] += 1
            by[k]["fp"] += fp
            causes[k].update(types.keys())
    rows = {
        k: {"n": c["n"], "fp_rate": c["fp"] / c["n"], "types": dict(causes[k].most_common())}
        for k, c in sorted(by.items())
    }
    return {"fp_rate": rows["all"]["fp_rate"], "n": len(docs), "by": rows}


def sized_texts(pool: list[str], size: int, count: int, rng: random.Random) -> list[str]:
    """`count` texts of `size` bytes (cut at a line end), each the concatenation of
    documents drawn from `pool`."""
    out = []
    for _ in range(count):
        parts: list[str] = []
        total = 0
        while total < size:
            doc = rng.choice(pool)
            parts.append(doc)
            total += len(doc.encode()) + 1
        text = "\n".join(parts).encode()[:size].decode("utf-8", "ignore")
        out.append(text)
    return out


def speed(scanner: Scanner, pool: list[str], seed: int) -> dict:
    rng = random.Random(seed)
    out = {}
    for label, size, count, rounds in (("1KB", 1024, 200, 5), ("100KB", 100 * 1024, 10, 2), ("1MB", 1024 * 1024, 3, 1)):
        texts = sized_texts(pool, size, count, rng)
        samples = []
        for _ in range(rounds):
            for t in texts:
                t0 = time.thread_time_ns()
                scanner.scan(t)
                samples.append((time.thread_time_ns() - t0) / 1000)
        med = statistics.median(samples)
        out[label] = {
            "bytes": size,
            "texts": count,
            "scans": len(samples),
            "cpu_median_us": round(med, 1),
            "cpu_max_us": round(max(samples), 1),
            "us_per_kb": round(med / (size / 1024), 2),
        }
        print(f"  {label}: median {med:,.0f} µs, {med / (size / 1024):.1f} µs/KB", file=sys.stderr)
    return out


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "scanner_compiled": native.ACTIVE,
        "scanner_reason": native.REASON,
    }


def report(res: dict) -> str:
    pos, neg = res["positives"], res["negatives"]
    lines = [
        f"seed {res['seed']}: recall {pos['recall']:.4f} over {pos['n']} requests carrying personal data, "
        f"false positives {neg['fp_rate']:.4f} over {neg['n']} business texts without",
        "",
        "| text | positives | recall | negatives | false-positive rate | types that fired on negatives |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for kind in (*business.KINDS, "all"):
        p, q = pos["by"].get(f"text:{kind}" if kind != "all" else "all", {}), neg["by"].get(kind, {})
        types = ", ".join(f"{t} {c}" for t, c in q.get("types", {}).items())
        lines.append(
            f"| {kind} | {p.get('n', 0)} | {p.get('recall', 0):.3f} | {q.get('n', 0)} | {q.get('fp_rate', 0):.3f} | {types} |"
        )
    lines += ["", "recall by the value's type and context (requests with one value):"]
    lines += [
        f"  {k}: {v['recall']:.3f} of {v['n']}"
        for k, v in pos["by"].items()
        if k.startswith(("type:", "context:", "evaded", "values:")) and (v["recall"] < 1 or not k.startswith("type:"))
    ]
    lines += ["  (every other type: 1.000)", f"missed: {pos['missed']}"]
    return "\n".join(lines)


def main() -> None:
    from bench.privacy.run import pin_hash_seed

    pin_hash_seed("bench.privacy.requests")
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--positives", type=int, default=1600)
    ap.add_argument("--negatives", type=int, default=1600)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--json", help="write all numbers here")
    args = ap.parse_args()

    t0 = time.time()
    pos = positives(args.positives, args.seed)
    neg = business.negatives(args.negatives, args.seed)
    print(f"corpora: {len(pos)} positives, {len(neg)} negatives ({time.time() - t0:.0f} s)", file=sys.stderr)
    scanner = Scanner()
    res: dict = {
        "seed": args.seed,
        "machine": machine(),
        "sizes": {
            "positives_kb": sum(len(r.text.encode()) for r in pos) / 1024 / len(pos),
            "negatives_kb": sum(len(d.text.encode()) for d in neg) / 1024 / len(neg),
        },
        "positives": measure_positives(scanner, pos),
        "negatives": measure_negatives(scanner, neg),
    }
    print(report(res))
    if not args.no_speed:
        print("speed (CPU time of one scan, one core):", file=sys.stderr)
        res["speed"] = speed(scanner, [r.text for r in pos] + [d.text for d in neg], args.seed)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
