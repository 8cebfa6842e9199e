"""Run the benchmark suite and print its results as Markdown (what `make bench` runs).

    python bench/run.py                      # everything, about 10 minutes on 2 cores
    python bench/run.py --only overhead      # or: engine, choices (repeatable)
    python bench/run.py --json results.json  # also keep the raw numbers

Suites:

- overhead: what the gateway adds on top of its upstream. The mock upstream
  (bench/mock_upstream.py) is called directly and through the gateway, with the same
  load (bench/load.py: closed loop, fixed request count, concurrency 1, 16 and 64,
  non-streaming and streaming with 16 content chunks). Direct and gateway runs alternate
  within each repeat, so background load hits both alike; each figure is the median over
  the repeats. Gateway variants, each in its own process:
    serve    `souverain serve`, the command users run;
    uvloop   the same app started so that uvloop really runs (bench/gateway_server.py);
    nodelay  (not in the default list) the stdlib loop as shipped, with TCP_NODELAY set;
    aiohttp  as uvloop, with the upstream client on an aiohttp transport;
    granian  the same app under granian instead of uvicorn;
    proxy    not the gateway: a bare pass-through proxy on the same stack, the floor.
- engine: the embedded llama.cpp engine through the gateway vs llama-cpp-python direct
  (bench/engine.py).
- choices: JSON library, upstream client and HTTP server micro-benchmarks (bench/choices.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import choices  # noqa: E402
import engine  # noqa: E402
import harness  # noqa: E402
import load  # noqa: E402

GATEWAY_SERVER = str(harness.ROOT / "bench" / "gateway_server.py")
VARIANTS: dict[str, tuple[str, list[str] | None]] = {
    "serve": ("`souverain serve` (as shipped)", None),
    "uvloop": ("gateway app on uvicorn, uvloop running", [harness.PYTHON, GATEWAY_SERVER]),
    "nodelay": (
        "gateway app on uvicorn, stdlib loop as shipped but TCP_NODELAY set",
        [harness.PYTHON, GATEWAY_SERVER, "--loop", "asyncio"],
    ),
    "aiohttp": (
        "gateway app on uvicorn + uvloop, aiohttp transport",
        [harness.PYTHON, GATEWAY_SERVER, "--client", "aiohttp"],
    ),
    "granian": ("gateway app on granian", [harness.PYTHON, GATEWAY_SERVER, "--server", "granian"]),
    "proxy": (
        "floor: bare pass-through proxy, Starlette + aiohttp on uvicorn + uvloop (not the gateway)",
        [harness.PYTHON, GATEWAY_SERVER, "--app", "proxy"],
    ),
}
CONCURRENCY = (1, 16, 64)
REQUESTS = {1: 500, 16: 1500, 64: 2000}
STREAM_CHUNKS = 16
P50_GOAL_MS, P99_GOAL_MS = 1.0, 5.0


def _measure(url: str, key: str | None, concurrency: int, stream: bool, time_limit_s: float) -> dict[str, Any]:
    result = uvloop.run(
        load.run_load(
            url,
            concurrency=concurrency,
            requests=REQUESTS[concurrency],
            stream=stream,
            key=key,
            max_tokens=STREAM_CHUNKS,
            time_limit_s=time_limit_s,
        )
    )
    if result.errors:
        raise RuntimeError(f"{result.errors} failed requests against {url}: {result.first_error}")
    out = asdict(result)
    del out["latencies_ms"]
    return out


def _median(runs: list[dict[str, Any]], field: str) -> float:
    return round(statistics.median(r[field] for r in runs), 3)


def overhead(variants: list[str], repeats: int, time_limit_s: float, quiet_budget_s: float = 30.0) -> dict[str, Any]:
    """Direct vs through each gateway variant; medians over `repeats`."""
    results: dict[str, Any] = {}
    waiter = harness.QuietWaiter(quiet_budget_s)
    with harness.mock_upstream() as upstream:
        direct_url = f"http://127.0.0.1:{upstream}/v1/chat/completions"
        for name in variants:
            _, command = VARIANTS[name]
            cells: dict[tuple[bool, int], dict[str, list]] = {}
            with harness.gateway(harness.mock_config(upstream), command) as gw:
                for _ in range(repeats):
                    for stream in (False, True):
                        for c in CONCURRENCY:
                            cell = cells.setdefault((stream, c), {"direct": [], "gateway": [], "others": []})
                            waiter.wait()
                            with harness.OtherLoad() as background:
                                cell["direct"].append(_measure(direct_url, None, c, stream, time_limit_s))
                                cell["gateway"].append(_measure(gw.url, gw.key, c, stream, time_limit_s))
                            cell["others"].append(round(background.cores, 2))
            rows = []
            for (stream, c), cell in cells.items():
                row: dict[str, Any] = {"stream": stream, "concurrency": c, "other_processes_cores": cell["others"]}
                for side in ("direct", "gateway"):
                    for field in ("rps", "p50_ms", "p99_ms") + (("ttft_p50_ms", "ttft_p99_ms") if stream else ()):
                        row[f"{side}_{field}"] = _median(cell[side], field)
                    row[f"{side}_requests"] = [r["requests"] for r in cell[side]]
                first = "ttft_" if stream else ""
                row["added_p50_ms"] = round(row[f"gateway_{first}p50_ms"] - row[f"direct_{first}p50_ms"], 3)
                row["added_p99_ms"] = round(row[f"gateway_{first}p99_ms"] - row[f"direct_{first}p99_ms"], 3)
                row["goal_met"] = row["added_p50_ms"] <= P50_GOAL_MS and row["added_p99_ms"] <= P99_GOAL_MS
                rows.append(row)
            results[name] = rows
    results["waited_for_quiet_s"] = waiter.waited_s
    return results


def overhead_markdown(results: dict[str, Any], repeats: int) -> str:
    lines = [
        f"What the gateway adds over the mock upstream called directly (medians of {repeats} repeats; "
        f"streams carry {STREAM_CHUNKS} content chunks; for streams the latency compared is the time to "
        f"the first content chunk, TTFT). Goal: added p50 ≤ {P50_GOAL_MS:g} ms and p99 ≤ {P99_GOAL_MS:g} ms.",
    ]
    others = [
        x for name, rows in results.items() if name in VARIANTS for row in rows for x in row["other_processes_cores"]
    ]
    lines.append(
        f"Other processes on the machine used {statistics.median(others):.2f} cores in the median "
        f"measurement (max {max(others):.2f})."
    )
    for name, rows in results.items():
        if name not in VARIANTS:
            continue
        lines += [
            "",
            f"**{VARIANTS[name][0]}**",
            "",
            "| mode | conc. | direct req/s | gateway req/s | direct p50 / p99 ms | gateway p50 / p99 ms "
            "| added p50 ms | added p99 ms | goal |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for row in rows:
            first = "ttft_" if row["stream"] else ""
            mode = "stream (TTFT)" if row["stream"] else "non-stream"
            lines.append(
                f"| {mode} | {row['concurrency']} | {row['direct_rps']:.0f} | {row['gateway_rps']:.0f} "
                f"| {row[f'direct_{first}p50_ms']:.2f} / {row[f'direct_{first}p99_ms']:.2f} "
                f"| {row[f'gateway_{first}p50_ms']:.2f} / {row[f'gateway_{first}p99_ms']:.2f} "
                f"| {row['added_p50_ms']:.2f} | {row['added_p99_ms']:.2f} | {'met' if row['goal_met'] else 'missed'} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        choices=["overhead", "engine", "choices"],
        help="run only these suites (repeatable); default all",
    )
    parser.add_argument(
        "--variants",
        default="serve,uvloop,aiohttp,granian,proxy",
        help=f"comma-separated gateway variants for the overhead suite: {', '.join(VARIANTS)}",
    )
    parser.add_argument("--repeats", type=int, default=3, help="repeats per measurement (medians reported)")
    parser.add_argument("--engine-rounds", type=int, default=5)
    parser.add_argument("--time-limit", type=float, default=3.0, help="seconds per load run at most")
    harness.add_quiet_budget(parser, 20.0)
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args(argv)
    suites = args.only or ["overhead", "engine", "choices"]
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")

    started = time.monotonic()
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "repeats": args.repeats,
    }
    print(
        f"# Souverain benchmarks, {report['started']}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n",
        flush=True,
    )
    if "overhead" in suites:
        report["overhead"] = overhead(variants, args.repeats, args.time_limit, args.quiet_budget)
        print("## Gateway overhead\n\n" + overhead_markdown(report["overhead"], args.repeats) + "\n", flush=True)
    if "engine" in suites:
        report["engine"] = engine.run_engine_bench(args.engine_rounds, quiet_budget_s=args.quiet_budget)
        print("## Embedded engine\n\n" + engine.markdown(report["engine"]) + "\n", flush=True)
    if "choices" in suites:
        report["choices"] = choices.run_choices(args.repeats, args.quiet_budget)
        print("## Component choices\n\n" + choices.markdown(report["choices"]) + "\n", flush=True)
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    print(
        f"Total time: {report['elapsed_s']:.0f} s; load average at the end: "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
