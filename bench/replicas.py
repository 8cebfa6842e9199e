"""State and replicas, side by side in one run, against the mock upstream:

    sqlite-1     `souverain serve` (one gateway process), SQLite state (the default)
    sqlite-2     `souverain serve --workers 2`, SQLite state
    postgres-3   three `souverain serve` replicas on three ports, one PostgreSQL
                 (`state: {kind: postgres}`), the load spread round-robin over them

Ledger on, as shipped (SQLite ledger.db, or the state's PostgreSQL schema). The setups run
in turn, `--rounds` times (default 3); each figure is the median over the rounds, and the
rounds are kept in the JSON. For each setup:
- saturation: closed loop at concurrency 32 (bench/load.py's request), requests per second;
- added latency at concurrency 1 (closed loop) and at an open-loop 25 req/s (requests
  sent on a fixed schedule, latency counted from the scheduled time, so a stall is not
  hidden by the generator waiting for it): gateway p50/p99 minus the mock's own, called
  directly with the same load just before.
Everything on loopback; the load generator is this process (aiohttp, uvloop), the mock,
the gateways and PostgreSQL are processes of their own sharing the same cores.

    .venv/bin/python bench/replicas.py [--rounds 3] [--json bench/results/replicas.json]

PostgreSQL: $SOUVERAIN_BENCH_PG_DSN, default host=127.0.0.1 dbname=test user=postgres;
each run uses a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
import load  # noqa: E402

PG_DSN = os.environ.get("SOUVERAIN_BENCH_PG_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres")
SATURATION_CONCURRENCY = 32
OPEN_RATE = 25.0


# -- load shapes ------------------------------------------------------------------------


async def _post(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> None:
    async with session.post(url, data=body, headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}")


async def closed_loop(
    urls: list[str], key: str | None, concurrency: int, requests: int, time_limit_s: float = 60
) -> dict[str, Any]:
    """`concurrency` clients, each sending its next request when the last is answered,
    client i to urls[i % len(urls)]; after a warm-up of 4×concurrency (at least 50)."""
    body = load.chat_body(stream=False)
    headers = {"content-type": "application/json", **({"authorization": f"Bearer {key}"} if key else {})}
    latencies: list[float] = []
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=time_limit_s)) as session:

        async def drive(count: int, measure: bool) -> float:
            remaining = count
            deadline = time.perf_counter() + time_limit_s

            async def client(i: int) -> None:
                nonlocal remaining
                url = urls[i % len(urls)]
                while remaining > 0 and time.perf_counter() < deadline:
                    remaining -= 1
                    started = time.perf_counter()
                    try:
                        await _post(session, url, body, headers)
                    except Exception as exc:  # counted and reported, never hidden
                        errors.append(f"{type(exc).__name__}: {exc}")
                        continue
                    if measure:
                        latencies.append(time.perf_counter() - started)

            began = time.perf_counter()
            await asyncio.gather(*(client(i) for i in range(concurrency)))
            return time.perf_counter() - began

        await drive(max(50, 4 * concurrency), False)
        errors.clear()
        elapsed = await drive(requests, True)
    return _summary(latencies, errors, elapsed)


async def open_loop(urls: list[str], key: str | None, rate: float, duration_s: float) -> dict[str, Any]:
    """Request n sent at start + n/rate whatever came back, to urls[n % len(urls)];
    latency from the scheduled time. Two seconds of the same first, unmeasured."""
    body = load.chat_body(stream=False)
    headers = {"content-type": "application/json", **({"authorization": f"Bearer {key}"} if key else {})}
    latencies: list[float] = []
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def one(n: int, due: float, measure: bool) -> None:
            try:
                await _post(session, urls[n % len(urls)], body, headers)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            if measure:
                latencies.append(time.perf_counter() - due)

        async def schedule(count: int, measure: bool) -> float:
            start = time.perf_counter()
            tasks = []
            for n in range(count):
                due = start + n / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                tasks.append(asyncio.create_task(one(n, due, measure)))
            await asyncio.gather(*tasks)
            return time.perf_counter() - start

        await schedule(int(rate * 2), False)
        errors.clear()
        elapsed = await schedule(int(rate * duration_s), True)
    return _summary(latencies, errors, elapsed)


def _summary(latencies: list[float], errors: list[str], elapsed: float) -> dict[str, Any]:
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests: {errors[0]}")
    ms = [x * 1000 for x in latencies]
    return {
        "requests": len(ms),
        "rps": round(len(ms) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(load.percentile(ms, 0.50), 3),
        "p99_ms": round(load.percentile(ms, 0.99), 3),
    }


# -- setups -----------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_setup(upstream: int, workers: int) -> Iterator[tuple[list[str], str]]:
    command = [harness.SOUVERAIN, "serve", "--workers", str(workers)]
    with harness.gateway(harness.mock_config(upstream), command) as gw:
        yield [gw.url], gw.key


@contextlib.contextmanager
def postgres_setup(upstream: int, replicas: int) -> Iterator[tuple[list[str], str]]:
    """`replicas` serve processes, each with a state directory of its own, on one schema."""
    import psycopg

    schema = f"bench_replicas_{secrets.token_hex(4)}"
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="souverain-bench-") as tmp:
        config = Path(tmp) / "souverain.yaml"
        config.write_text(
            f'state: {{kind: postgres, dsn: "{PG_DSN}", schema: {schema}}}\n'
            f"ledger:\n  keys: {{provider: file, path: {Path(tmp) / 'ledger-keys'}}}\n" + harness.mock_config(upstream)
        )
        try:
            key = subprocess.run(
                [harness.SOUVERAIN, "keys", "create", "--name", "bench", "--config", str(config)],
                cwd=tmp,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            urls = []
            for i in range(replicas):
                env = {**os.environ, "SOUVERAIN_STATE_DIR": str(Path(tmp) / f"replica{i}")}
                log = Path(tmp) / f"replica{i}.log"
                with log.open("wb") as stderr:
                    proc = subprocess.Popen(
                        [harness.SOUVERAIN, "serve", "--config", str(config), "--port", "0"],
                        env=env,
                        cwd=tmp,
                        stdout=subprocess.PIPE,
                        stderr=stderr,
                    )
                procs.append(proc)
                port = harness._wait_port(proc, f"replica {i}")
                harness._wait_ready(f"http://127.0.0.1:{port}/readyz", proc, log)
                urls.append(f"http://127.0.0.1:{port}/v1/chat/completions")
            yield urls, key
        finally:
            for proc in procs:
                harness._stop(proc)
            with psycopg.connect(PG_DSN, autocommit=True) as db:
                db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def measure(urls: list[str], key: str | None, duration_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with harness.OtherLoad() as background:
        out["c1"] = uvloop.run(closed_loop(urls, key, 1, 500))
        out["open25"] = uvloop.run(open_loop(urls, key, OPEN_RATE, duration_s))
        if key is not None:
            out["saturation"] = uvloop.run(closed_loop(urls, key, SATURATION_CONCURRENCY, 3000))
    out["other_processes_cores"] = round(background.cores, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--open-seconds", type=float, default=20.0, help="measured seconds of the open loop")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the setups; figures are medians")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "machine": {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()},
        "saturation_concurrency": SATURATION_CONCURRENCY,
        "open_rate": OPEN_RATE,
        "rounds": args.rounds,
    }
    waiter = harness.QuietWaiter(20.0 * args.rounds)
    rounds: dict[str, list[dict[str, Any]]] = {}
    with harness.mock_upstream() as upstream:
        direct = [f"http://127.0.0.1:{upstream}/v1/chat/completions"]
        setups = {
            "sqlite-1": lambda: sqlite_setup(upstream, 1),
            "sqlite-2": lambda: sqlite_setup(upstream, 2),
            "postgres-3": lambda: postgres_setup(upstream, 3),
        }
        for n in range(args.rounds):  # setups in turn, so background load hits each alike
            for name, setup in setups.items():
                with setup() as (urls, key):
                    waiter.wait()
                    base = measure(direct, None, args.open_seconds)
                    through = measure(urls, key, args.open_seconds)
                row: dict[str, Any] = {"direct": base, "gateway": through}
                for shape in ("c1", "open25"):
                    row[f"added_{shape}_p50_ms"] = round(through[shape]["p50_ms"] - base[shape]["p50_ms"], 3)
                    row[f"added_{shape}_p99_ms"] = round(through[shape]["p99_ms"] - base[shape]["p99_ms"], 3)
                row["saturation_rps"] = through["saturation"]["rps"]
                row["other_processes_cores"] = through["other_processes_cores"]
                rounds.setdefault(name, []).append(row)
                print(f"round {n + 1} {name}: {json.dumps(row)}", file=sys.stderr, flush=True)
    for name, rows in rounds.items():
        fields = [k for k in rows[0] if k.startswith(("added_", "saturation_", "other_"))]
        results[name] = {
            **{k: round(statistics.median(r[k] for r in rows), 3) for k in fields},
            "rounds": rows,
        }
    results["waited_for_quiet_s"] = waiter.waited_s
    print(markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"| setup | saturation (c={SATURATION_CONCURRENCY}) req/s | added c=1 p50 / p99 ms "
        f"| added open {OPEN_RATE:.0f} req/s p50 / p99 ms | other load (cores) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in ("sqlite-1", "sqlite-2", "postgres-3"):
        row = results[name]
        lines.append(
            f"| {name} | {row['saturation_rps']:,.0f} | {row['added_c1_p50_ms']:+.2f} / {row['added_c1_p99_ms']:+.2f} "
            f"| {row['added_open25_p50_ms']:+.2f} / {row['added_open25_p99_ms']:+.2f} "
            f"| {row['other_processes_cores']:.2f} |"
        )
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor()
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
