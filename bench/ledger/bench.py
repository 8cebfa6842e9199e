"""Ledger benchmarks: sequencing throughput and latency with durability, and verification time.

    .venv/bin/python bench/ledger/bench.py sequence --store sqlite --clients 1,16,64,256 --seconds 10
    .venv/bin/python bench/ledger/bench.py sequence --store postgres --clients 1,16,64,256 --seconds 10
    .venv/bin/python bench/ledger/bench.py sequence --store postgres --clients 64 --processes 2 --seconds 10
    .venv/bin/python bench/ledger/bench.py sequence --store sqlite --clients 64 --retain --seconds 10
    .venv/bin/python bench/ledger/bench.py verify --store sqlite --size 1000000

`sequence`: `clients` asyncio tasks in each of `processes` processes call `Ledger.append`
in a loop (each with a 2 KB request and response to digest) for `seconds`, while the
integrator publishes checkpoints every 0.5 s. Every append waits for its transaction to be
committed (SQLite WAL synchronous=FULL; PostgreSQL synchronous_commit=on). Reports entries
per second and the latency of `append` (what sequencing adds to a request).

`verify`: bulk-loads `size` entries, integrates them (timed), then times the offline
verifier on the live store and on a tlog-tiles export (and `--each`, one RFC 9162 inclusion
proof checked per entry, when asked).

PostgreSQL: $SOUVERAIN_BENCH_PG_DSN, default host=127.0.0.1 dbname=test user=postgres; each
run uses a fresh schema and drops it. Prints Markdown rows; nothing here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from souverain.ledger import (  # noqa: E402
    Entry,
    Ledger,
    LedgerConfig,
    PostgresStoreConfig,
    RetentionConfig,
    SqliteStoreConfig,
    encode_entry,
)
from souverain.ledger.export import export_log  # noqa: E402
from souverain.ledger.integrator import Integrator  # noqa: E402
from souverain.ledger.store import open_store  # noqa: E402
from souverain.ledger.verify import DirectorySource, StoreSource, verify  # noqa: E402

PG_DSN = os.environ.get("SOUVERAIN_BENCH_PG_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres")
REQUEST = secrets.token_bytes(2048)
RESPONSE = secrets.token_bytes(2048)


def make_entry(i: int) -> Entry:
    return Entry(
        tenant=f"tenant-{i % 7}",
        key_id="3f9a1c0d2b4e",
        route="eu-onprem-vllm",
        route_profile="sha256:" + "ab" * 32,
        model="mistral-small-3.2",
        data_class="personal",
        found={"IBAN": 1, "EMAIL_ADDRESS": 2, "PHONE_NUMBER": i % 3},
        decision="pseudonymised",
        reasons=["class personal: route eu-onprem-vllm allowed by policy bank-default", "pseudonymise: EMAIL_ADDRESS"],
        prompt_tokens=812,
        completion_tokens=233 + i % 50,
        latency_ms=740 + i % 300,
    )


def store_config(kind: str, tmp: Path) -> Any:
    if kind == "sqlite":
        return SqliteStoreConfig(path=str(tmp / "ledger.db"))
    return PostgresStoreConfig(dsn=PG_DSN, schema=f"ledger_bench_{secrets.token_hex(4)}")


def drop(config: Any) -> None:
    if isinstance(config, PostgresStoreConfig):
        import psycopg

        with psycopg.connect(config.dsn, autocommit=True) as db:
            db.execute(f'DROP SCHEMA IF EXISTS "{config.schema}" CASCADE')


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# -- sequencing -------------------------------------------------------------------------------


async def _load(config: LedgerConfig, tmp: str, clients: int, seconds: float, integrate: bool) -> dict[str, Any]:
    ledger = Ledger.open(config, state_dir=tmp)
    if integrate:
        await ledger.start()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(worker: int) -> None:
        n = worker
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            await ledger.append(make_entry(n), request=REQUEST, response=RESPONSE)
            latencies.append(time.perf_counter() - t0)
            n += clients

    start = time.perf_counter()
    await asyncio.gather(*(client(w) for w in range(clients)))
    elapsed = time.perf_counter() - start
    batches = ledger._sequencer.batches
    await ledger.stop()
    return {"count": len(latencies), "elapsed": elapsed, "latencies": latencies, "batches": batches}


def _process(config: LedgerConfig, tmp: str, clients: int, seconds: float, integrate: bool, queue: Any) -> None:
    queue.put(asyncio.run(_load(config, tmp, clients, seconds, integrate)))


def bench_sequence(kind: str, clients: int, processes: int, seconds: float, retain: bool) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    store = store_config(kind, tmp)
    config = LedgerConfig(store=store, retention=RetentionConfig(content=retain))
    try:
        Ledger.open(config, state_dir=tmp).provider.close()  # keys and schema made before timing
        if processes == 1:
            results = [asyncio.run(_load(config, str(tmp), clients, seconds, True))]
        else:
            ctx = multiprocessing.get_context("spawn")
            queue = ctx.Queue()
            procs = [
                ctx.Process(target=_process, args=(config, str(tmp), clients, seconds, p == 0, queue))
                for p in range(processes)
            ]
            for p in procs:
                p.start()
            results = [queue.get() for _ in procs]
            for p in procs:
                p.join()
        count = sum(r["count"] for r in results)
        elapsed = max(r["elapsed"] for r in results)
        latencies = [x for r in results for x in r["latencies"]]
        db = open_store(store, tmp)
        integrated, sequenced = db.tree_size(), db.sequenced_size()
        db.close()
        return {
            "store": kind + (" + content" if retain else ""),
            "processes": processes,
            "clients": clients,
            "entries": count,
            "per_s": count / elapsed,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
            "mean_batch": count / max(1, sum(r["batches"] for r in results)),
            "integrated": integrated == sequenced,
        }
    finally:
        drop(store)
        shutil.rmtree(tmp, ignore_errors=True)


# -- verification ----------------------------------------------------------------------------


def bench_verify(kind: str, size: int, each: bool) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    store_cfg = store_config(kind, tmp)
    config = LedgerConfig(store=store_cfg)
    out: dict[str, Any] = {"store": kind, "size": size}
    try:
        ledger = Ledger.open(config, state_dir=tmp)
        store = open_store(store_cfg, tmp)
        t0 = time.perf_counter()
        batch = 10_000
        for start in range(0, size, batch):
            leaves = [encode_entry(make_entry(i)) for i in range(start, min(size, start + batch))]
            store.sequence(leaves, [None] * len(leaves))
        out["load_s"] = time.perf_counter() - t0
        out["entry_bytes"] = len(encode_entry(make_entry(1)))
        t0 = time.perf_counter()
        integrator = Integrator(store, ledger.signer, ledger.origin, max_batch=65_536)
        assert integrator.run_until_idle() == size
        out["integrate_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = verify(StoreSource(store), ledger.verifier)
        out["verify_store_s"] = time.perf_counter() - t0
        assert report.ok and report.entries == size, report.problems[:5]
        t0 = time.perf_counter()
        export_log(store, tmp / "export")
        out["export_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = verify(DirectorySource(tmp / "export"), ledger.verifier)
        out["verify_dir_s"] = time.perf_counter() - t0
        assert report.ok and report.entries == size
        if each:
            t0 = time.perf_counter()
            report = verify(DirectorySource(tmp / "export"), ledger.verifier, each=True)
            out["verify_each_s"] = time.perf_counter() - t0
            assert report.ok
        store.close()
        ledger.provider.close()
        return out
    finally:
        drop(store_cfg)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    seq = sub.add_parser("sequence")
    seq.add_argument("--store", choices=["sqlite", "postgres"], required=True)
    seq.add_argument("--clients", default="1,16,64,256")
    seq.add_argument("--processes", type=int, default=1)
    seq.add_argument("--seconds", type=float, default=10)
    seq.add_argument("--retain", action="store_true", help="content retention on (2 KB + 2 KB sealed per entry)")
    ver = sub.add_parser("verify")
    ver.add_argument("--store", choices=["sqlite", "postgres"], required=True)
    ver.add_argument("--size", type=int, default=1_000_000)
    ver.add_argument("--each", action="store_true")
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"<!-- {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {load} -->")
    if args.command == "sequence":
        print(
            "| store | processes × clients | entries/s | append p50 ms | append p99 ms | mean batch | all integrated |"
        )
        print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
        for clients in (int(c) for c in args.clients.split(",")):
            r = bench_sequence(args.store, clients, args.processes, args.seconds, args.retain)
            print(
                f"| {r['store']} | {r['processes']} × {r['clients']} | {r['per_s']:,.0f} | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {r['mean_batch']:.1f} | {'yes' if r['integrated'] else 'NO'} |",
                flush=True,
            )
    else:
        r = bench_verify(args.store, args.size, args.each)
        print(
            "| store | entries | entry bytes | bulk load s | integrate s | verify store s | export s | verify export s |"
            + (" verify --each s |" if args.each else "")
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if args.each else ""))
        print(
            f"| {r['store']} | {r['size']:,} | {r['entry_bytes']} | {r['load_s']:.1f} | {r['integrate_s']:.1f} | "
            f"{r['verify_store_s']:.1f} | {r['export_s']:.1f} | {r['verify_dir_s']:.1f} |"
            + (f" {r['verify_each_s']:.1f} |" if args.each else "")
        )


if __name__ == "__main__":
    main()
