"""What the outbound check costs: the gateway before and after it, side by side, and scan times.

The change measured (issue "fail closed by construction"): the spine classifies the exact
payload an engine is about to send (`souverain.outbound.seal`: every string, key and number
at any depth, JSON inside strings, seams between strings, unscannable content) besides the
request itself (`souverain.outbound.classify`), the two sharing a per-request memo. "Before"
is a checkout of the commit before it (9c85a26, `scanner.scan_request` over a list of request
fields); "after" is this checkout. Both run their privacy scanner compiled (mypyc).

    .venv/bin/python -m bench.outbound --before /work/wt-before [--json OUT] [--repeats 5]

Make the "before" tree first (and compile its scanner in place, so both sides are compiled):

    git worktree add /work/wt-before 9c85a26
    (cd /work/wt-before && /work/main/.venv/bin/python setup.py build_ext --inplace)

1. Gateway latency. One mock upstream (bench/mock_upstream.py) and two `souverain serve`
   processes, one per tree (PYTHONPATH puts the tree first; each process's mapped scanner
   extension is checked to come from its tree), same configuration: one `openai_http` model
   to the mock on pipes route `a-onprem` (examples/pipes/pipes.yaml), which the default
   policy lets carry personal data, ledger on (the default), one process. Requests: a 1 KB
   chat body (system prompt + business text), without personal data (class public) and
   with an IBAN and an e-mail (class personal, sent as is: no pseudonymisation). Modes:
   closed loop at concurrency 1 (non-streaming, and streaming with TTFT), and open loop at
   25 req/s (a fixed arrival schedule; latency counted from the scheduled send time, so a
   late gateway cannot slow its own arrivals). Before and after alternate request by
   request within each run (c=1: one request at a time, before/after/after/before...;
   open loop: each gateway on its own 25 req/s schedule, the two half a period apart),
   so that both see the same moments of a machine other people share. Added = after −
   before per repeat, reported as the median over repeats with the repeats' min..max.
2. Scan time, in a separate process per tree, one thread (CPU time of that thread): the classify stage
   (`msgspec.to_builtins` + `outbound.classify`), `outbound.seal` of the engine's payload
   with the memo classify left and without one, and before's `scanner.scan_request` +
   `scanner.classify`, on chat requests with one user message of 1 KB, 100 KB and 1 MB of
   business text with a personal sentence (IBAN, e-mail) every 10 KB; medians of repeats.

Timings are never asserted: results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
import load  # noqa: E402

PYTHON = sys.executable
SOUVERAIN = str(Path(PYTHON).with_name("souverain"))
GOAL_MS = 0.2
OPEN_RATE = 25.0

# Business text without personal data: no names, no identifiers, no contact details.
SENTENCES = [
    "The procurement committee reviewed the three offers received for the data centre cooling upgrade.",
    "Delivery of the replacement chillers is expected in the second quarter, subject to the usual lead times.",
    "Please summarise the main risks of the migration plan and propose mitigations for each of them.",
    "The finance department asks that all invoices above the approval threshold be routed through the new workflow.",
    "Our service level objective for the payments platform remains an availability of ninety-nine point nine percent.",
    "The steering group agreed to postpone the decommissioning of the legacy reporting system until after the audit.",
    "Training sessions on the updated security policy will be held for every team before the end of the month.",
    "The vendor confirmed that the maintenance window on Saturday night will not affect the branch network.",
    "Draft a short note for the board explaining why the project budget was revised upwards by eight percent.",
    "Customer satisfaction scores improved in every region after the call routing changes went live.",
    "The internal audit found that two controls in the onboarding process were not documented consistently.",
    "Energy consumption in the main building fell by a fifth since the lighting was replaced last year.",
    "The legal team will review the updated framework agreement before it is sent for signature.",
    "Capacity planning for next year assumes a moderate growth in transaction volumes and no new product lines.",
    "The operations manual must describe how a failed batch is restarted without duplicating any payment.",
    "Compare the total cost of ownership of running the models on premises with the managed cloud offer.",
    "Quarterly results will be presented to the supervisory board at its next scheduled meeting.",
    "The incident review concluded that the outage was caused by an expired certificate on an internal load balancer.",
    "Suppliers are asked to confirm their business continuity arrangements as part of the annual assessment.",
    "The new expense policy simplifies approvals for travel within the European Union.",
]
PERSONAL = (
    "Please transfer the deposit to IBAN FR76 3000 6000 0112 3456 7890 189 and send the confirmation "
    "to claire.moreau@example.com before Friday."
)
SYSTEM = "You are a helpful assistant for the operations team of a European bank. Answer briefly."


def business_text(size: int, *, personal: bool, every: int = 10 * 1024, seed: int = 7) -> str:
    """`size` bytes of ASCII business text; with `personal`, the PERSONAL sentence opens
    every `every` bytes (once at least)."""
    rng = random.Random(seed)
    out: list[str] = []
    length = 0
    next_personal = 0
    while length < size:
        if personal and length >= next_personal:
            sentence = PERSONAL
            next_personal += every
        else:
            sentence = rng.choice(SENTENCES)
        out.append(sentence)
        length += len(sentence) + 1
    return " ".join(out)[:size].rstrip()


def gateway_body(*, personal: bool, stream: bool, size: int = 1024) -> bytes:
    """A chat request: system prompt + business text; `size` bytes when not streaming (the
    streaming body carries the same text, plus `stream_options`)."""

    def body(text: str, stream: bool) -> bytes:
        doc: dict[str, Any] = {
            "model": "mock",
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
            "max_tokens": 16,
            "temperature": 0,
            "stream": stream,
        }
        if stream:
            doc["stream_options"] = {"include_usage": True}
        return json.dumps(doc, separators=(",", ":")).encode()

    text = business_text(size - len(body("", False)), personal=personal)
    return body(text, stream)


def scan_body(size: int) -> bytes:
    """A chat request with one user message of `size` bytes (a personal sentence every 10 KB)."""
    doc = {
        "model": "mock",
        "messages": [{"role": "user", "content": business_text(size, personal=True)}],
        "max_tokens": 16,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


# -- processes -------------------------------------------------------------------------
def tree_env(tree: Path, **extra: str) -> dict[str, str]:
    """The environment that makes a process import `souverain` from `tree` (PYTHONPATH
    comes before the venv's editable install of the main checkout)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SOUVERAIN_PURE_PYTHON")}
    env["PYTHONPATH"] = str(tree)
    env.update(extra)
    return env


def tree_info(tree: Path) -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True).stdout

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "souverain").splitlines() if line.strip()]
    return {"path": str(tree), "commit": git("rev-parse", "--short", "HEAD").strip(), "dirty_souverain_files": dirty}


def mapped_scanner(pid: int) -> str | None:
    """The file of the privacy scanner's extension mapped in process `pid` (None: pure Python)."""
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            if "souverain/privacy/" in line and line.rstrip().endswith(".so"):
                return line.split()[-1]
    return None


@dataclass(frozen=True)
class Gateway:
    name: str
    url: str
    key: str
    pid: int
    scanner_so: str | None


def gateway_config(upstream_port: int, pipes: Path) -> str:
    return (
        "routing:\n"
        f"  pipes: {pipes}\n"
        "models:\n"
        "  - name: mock\n"
        "    engine: openai_http\n"
        f"    base_url: http://127.0.0.1:{upstream_port}/v1\n"
        "    flavor: openai\n"
        "    route: a-onprem\n"
    )


@contextlib.contextmanager
def gateway(name: str, tree: Path, config_yaml: str) -> Iterator[Gateway]:
    """`souverain serve` importing from `tree`, on a fresh state directory."""
    with tempfile.TemporaryDirectory(prefix=f"souverain-outbound-{name}-") as tmp:
        env = tree_env(tree, SOUVERAIN_STATE_DIR=str(Path(tmp) / "state"))
        config = Path(tmp) / "souverain.yaml"
        config.write_text(config_yaml)
        config_args = ["--config", str(config)]
        argv = [SOUVERAIN, "serve", *config_args, "--port", "0"]
        with harness.serving(tmp, env, config_args, argv, f"{name} gateway") as (port, key, proc):
            so = mapped_scanner(proc.pid)
            if so is None or not so.startswith(str(tree) + "/"):
                raise RuntimeError(f"the {name} gateway runs the scanner from {so!r}, not compiled from {tree}")
            yield Gateway(name, f"http://127.0.0.1:{port}/v1/chat/completions", key, proc.pid, so)


# -- load ------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    import math

    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


def summary(ms: list[float]) -> dict[str, Any]:
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 0.5), 3),
        "p90_ms": round(pct(ms, 0.9), 3),
        "p99_ms": round(pct(ms, 0.99), 3),
    }


async def _send(session: Any, gw: Gateway, body: bytes, stream: bool) -> tuple[float, float | None, Any]:
    started = time.perf_counter()
    ttft = None
    async with session.post(
        gw.url, data=body, headers={"content-type": "application/json", "authorization": f"Bearer {gw.key}"}
    ) as response:
        if response.status != 200:
            raise RuntimeError(f"{gw.name}: HTTP {response.status}: {(await response.read())[:300]!r}")
        if stream:
            async for line in response.content:
                if ttft is None and load._has_content(line):
                    ttft = time.perf_counter() - started
        else:
            await response.read()
        headers = {k: v for k, v in response.headers.items() if k.lower().startswith("x-souverain-")}
    return time.perf_counter() - started, ttft, headers


async def closed_pair(gws: dict[str, Gateway], body: bytes, stream: bool, pairs: int, warmup: int) -> dict[str, Any]:
    """Concurrency 1, one request at a time, alternating between the two gateways (the
    order flips every pair: ABBA), so both see the same moments of a shared machine."""
    import aiohttp

    latencies: dict[str, list[float]] = {side: [] for side in gws}
    sessions = {side: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for side in gws}
    try:
        sides = list(gws)
        for i in range(warmup + pairs):
            for side in sides if i % 2 == 0 else sides[::-1]:
                latency, ttft, _ = await _send(sessions[side], gws[side], body, stream)
                if i >= warmup:
                    latencies[side].append((ttft if stream else latency) * 1000)  # type: ignore[operator]
    finally:
        for session in sessions.values():
            await session.close()
    return {side: summary(ms) for side, ms in latencies.items()}


async def open_pair(
    gws: dict[str, Gateway], body: bytes, rate: float, seconds: float, warmup: int, flip: bool
) -> dict[str, Any]:
    """Each gateway gets `rate` req/s on a fixed schedule, whatever its answers do, the two
    schedules interleaved half a period apart (which one leads flips with `flip`); latency
    from the scheduled send time to the last byte."""
    import aiohttp

    sides = list(gws)[::-1] if flip else list(gws)
    latencies: dict[str, list[float]] = {side: [] for side in gws}
    late: list[float] = []
    sessions = {side: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) for side in gws}
    try:
        for side in sides:
            for _ in range(warmup):
                await _send(sessions[side], gws[side], body, False)
        count = int(rate * seconds)
        t0 = time.perf_counter() + 0.05

        async def one(side: str, scheduled: float) -> None:
            late.append(time.perf_counter() - scheduled)
            await _send(sessions[side], gws[side], body, False)
            latencies[side].append((time.perf_counter() - scheduled) * 1000)

        tasks = []
        for i in range(count):
            for k, side in enumerate(sides):
                scheduled = t0 + i / rate + k / (rate * len(sides))
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(side, scheduled)))
        await asyncio.gather(*tasks)
    finally:
        for session in sessions.values():
            await session.close()
    out: dict[str, Any] = {side: summary(ms) for side, ms in latencies.items()}
    for side in gws:
        out[side]["send_late_p50_ms"] = round(pct([x * 1000 for x in late], 0.5), 3)
        out[side]["send_late_p99_ms"] = round(pct([x * 1000 for x in late], 0.99), 3)
    return out


def probe(gw: Gateway, body: bytes) -> dict[str, str]:
    """The decision headers of one request: which class and route the gateway chose."""
    import aiohttp
    import uvloop

    async def run() -> dict[str, str]:
        async with aiohttp.ClientSession() as session:
            return (await _send(session, gw, body, False))[2]

    return uvloop.run(run())


def latency(
    before: Path,
    after: Path,
    repeats: int,
    requests: int,
    stream_requests: int,
    open_seconds: float,
    quiet_budget_s: float,
) -> dict[str, Any]:
    import uvloop

    bodies = {
        kind: {s: gateway_body(personal=kind == "personal", stream=s) for s in (False, True)}
        for kind in ("public", "personal")
    }
    cells: dict[tuple[str, str], dict[str, list]] = {}
    waiter = harness.QuietWaiter(quiet_budget_s)
    with harness.mock_upstream() as upstream:
        pipes = {
            side: tree / "examples" / "pipes" / "pipes.yaml" for side, tree in (("before", before), ("after", after))
        }
        with (
            gateway("before", before, gateway_config(upstream, pipes["before"])) as gb,
            gateway("after", after, gateway_config(upstream, pipes["after"])) as ga,
        ):
            gateways = {"before": gb, "after": ga}
            decisions = {
                f"{side}/{kind}": probe(gw, bodies[kind][False]) for side, gw in gateways.items() for kind in bodies
            }
            for where, headers in decisions.items():
                wanted = where.split("/")[1]
                if headers.get("x-souverain-data-class") != wanted or headers.get("x-souverain-decision") != "allowed":
                    raise RuntimeError(f"{where}: expected class {wanted}, sent as is; the gateway said {headers}")
            flip = 0
            for r in range(repeats):
                for kind in bodies:
                    for mode in ("c1", "c1-stream", "open25"):
                        cell = cells.setdefault((kind, mode), {"before": [], "after": [], "others": []})
                        flip += 1
                        waiter.wait()
                        with harness.OtherLoad() as background:
                            if mode == "c1":
                                res = uvloop.run(closed_pair(gateways, bodies[kind][False], False, requests, 30))
                            elif mode == "c1-stream":
                                res = uvloop.run(closed_pair(gateways, bodies[kind][True], True, stream_requests, 20))
                            else:
                                res = uvloop.run(
                                    open_pair(gateways, bodies[kind][False], OPEN_RATE, open_seconds, 20, flip % 2 == 1)
                                )
                        for side in ("before", "after"):
                            cell[side].append(res[side])
                        cell["others"].append(round(background.cores, 2))
                print(f"  repeat {r + 1}/{repeats} done", file=sys.stderr, flush=True)
            scanner_so = {side: gw.scanner_so for side, gw in gateways.items()}
    rows = []
    for (kind, mode), cell in cells.items():
        row: dict[str, Any] = {"body": kind, "mode": mode, "other_processes_cores": cell["others"]}
        for side in ("before", "after"):
            for field in ("p50_ms", "p90_ms", "p99_ms"):
                row[f"{side}_{field}"] = round(statistics.median(x[field] for x in cell[side]), 3)
            row[f"{side}_runs"] = cell[side]
        for field in ("p50_ms", "p90_ms", "p99_ms"):
            diffs = [a[field] - b[field] for a, b in zip(cell["after"], cell["before"], strict=True)]
            row[f"added_{field}"] = round(statistics.median(diffs), 3)
            row[f"added_{field}_range"] = [round(min(diffs), 3), round(max(diffs), 3)]
        rows.append(row)
    return {
        "body_bytes": {k: len(v[False]) for k, v in bodies.items()},
        "decisions": decisions,
        "scanner_extension": scanner_so,
        "rows": rows,
        "waited_for_quiet_s": waiter.waited_s,
        "requests_c1": requests,
        "requests_stream": stream_requests,
        "open_rate": OPEN_RATE,
        "open_seconds": open_seconds,
    }


# -- scan time (runs inside the tree under test) ----------------------------------------
SCAN_SIZES = {"1KB": 1024, "100KB": 100 * 1024, "1MB": 1024 * 1024}


def _median_us(fn: Any, repeats: int, budget_s: float) -> dict[str, Any]:
    """Median CPU and wall µs per call of `fn()`. Each sample times a batch of calls
    (about 5 ms' worth, one call for large inputs) after a `gc.collect()`, so a small
    call is measured warm, as it runs in a busy gateway; `repeats` samples, fewer (3 at
    least) if `budget_s` runs out. CPU time (this thread's) is what the call costs,
    whatever else the shared machine runs meanwhile."""
    fn()
    t = time.perf_counter()
    fn()
    batch = max(1, int(0.005 / max(time.perf_counter() - t, 1e-7)))
    cpu: list[float] = []
    wall: list[float] = []
    deadline = time.perf_counter() + budget_s
    for _ in range(repeats):
        gc.collect()
        c, w = time.thread_time_ns(), time.perf_counter_ns()
        for _ in range(batch):
            fn()
        cpu.append((time.thread_time_ns() - c) / 1000 / batch)
        wall.append((time.perf_counter_ns() - w) / 1000 / batch)
        if time.perf_counter() > deadline and len(cpu) >= 3:
            break
    return {
        "cpu_us": round(statistics.median(cpu), 1),
        "wall_us": round(statistics.median(wall), 1),
        "n": len(cpu),
        "batch": batch,
    }


def scan_worker(side: str) -> dict[str, Any]:
    """Time this tree's scanning on the scan bodies and the 1 KB gateway bodies."""
    import msgspec

    import souverain
    from souverain.chat import ChatRequest
    from souverain.privacy import native
    from souverain.privacy.scanner import default_scanner

    scanner = default_scanner()
    out: dict[str, Any] = {"souverain_file": souverain.__file__, "native": [native.ACTIVE, native.REASON], "sizes": {}}
    bodies = {name: scan_body(size) for name, size in SCAN_SIZES.items()}
    bodies["gw-1KB-public"] = gateway_body(personal=False, stream=False)
    bodies["gw-1KB-personal"] = gateway_body(personal=True, stream=False)
    for body in bodies.values():  # warm up: the first scans of a process load what the detectors use
        scanner.scan_request(msgspec.json.decode(body, type=ChatRequest))
    for name, body in bodies.items():
        request = msgspec.json.decode(body, type=ChatRequest)
        n = {"1MB": 7, "100KB": 21}.get(name, 31)
        budget = 40.0 if name == "1MB" else 20.0
        row: dict[str, Any] = {"body_bytes": len(body)}
        if side == "before":

            def before_stage() -> Any:
                findings = scanner.scan_request(request)
                return scanner.classify(findings)

            row["class"] = before_stage().data_class.name.lower()
            row["scan_request"] = _median_us(before_stage, n, budget)
        else:
            from souverain.config.schema import OpenAIHTTPModel
            from souverain.engines.openai_http import OpenAIHTTPEngine
            from souverain.outbound import Rules, classify, seal

            engine = OpenAIHTTPEngine(
                msgspec.convert(
                    {
                        "name": "mock",
                        "engine": "openai_http",
                        "base_url": "http://127.0.0.1:9/v1",
                        "flavor": "openai",
                        "route": "a-onprem",
                    },
                    OpenAIHTTPModel,
                )
            )
            outbound = engine.outbound(request, stream=False)
            rules = Rules()
            memo: dict = {}  # what classify of this very request leaves for seal

            def stage() -> None:
                classify(scanner, msgspec.to_builtins(request), rules, {})

            def sealed_memo() -> None:
                seal(outbound, route="a-onprem", scanner=scanner, rules=rules, unmet=lambda c: [], memo=dict(memo))

            def sealed_cold() -> None:
                seal(outbound, route="a-onprem", scanner=scanner, rules=rules, unmet=lambda c: [], memo=None)

            first = classify(scanner, msgspec.to_builtins(request), rules, memo)
            row["class"] = first.data_class
            row["findings"] = dict(first.counts)
            row["classify"] = _median_us(stage, n, budget)
            row["seal_memo"] = _median_us(sealed_memo, row["classify"]["n"], budget)
            row["seal_cold"] = _median_us(sealed_cold, row["classify"]["n"], budget)
            if name.startswith("gw-"):
                row["breakdown"] = breakdown(scanner, request, outbound, 15)
        out["sizes"][name] = row
    return out


def breakdown(scanner: Any, request: Any, outbound: Any, n: int) -> dict[str, Any]:
    """Where classify's and seal's time goes on one request: CPU µs of each part, timed
    alone (payload.py's private `_seams` included: this measures, it changes nothing)."""
    import msgspec

    from souverain.privacy.payload import _seams, pieces

    payload = msgspec.to_builtins(request)
    found, _ = pieces(payload)
    strings = [(p, scanner.scan(p.text, context=p.key)) for p in found if p.string]
    longer = [p for p in found if len(p.text) > 64]
    short = [p for p in found if len(p.text) <= 64]

    def cpu(fn: Any) -> float:
        return _median_us(fn, n, 10.0)["cpu_us"]

    seams_memo: dict = {}
    list(_seams(scanner, strings, seams_memo))
    encode, decode = msgspec.json.Encoder().encode, msgspec.json.decode
    body = encode(outbound.payload)
    return {
        "walk_pieces_us": cpu(lambda: pieces(payload)),
        "pieces": len(found),
        "scan_texts_over_64_chars_us": round(
            sum(cpu(lambda p=p: scanner.scan(p.text, context=p.key)) for p in longer), 1
        ),
        "texts_over_64_chars": len(longer),
        "scan_short_pieces_us": round(sum(cpu(lambda p=p: scanner.scan(p.text, context=p.key)) for p in short), 1),
        "short_pieces": [p.text for p in short],
        "seams_build_and_scan_us": cpu(lambda: list(_seams(scanner, strings, {}))),
        "seams_build_only_us": cpu(lambda: list(_seams(scanner, strings, seams_memo))),
        "seams_text_chars": len(next((k for k in seams_memo if k[1] == "\x00seams"), ("",))[0]),
        "seal_encode_decode_us": cpu(lambda: decode(encode(outbound.payload))),
        "body_bytes": len(body),
    }


def scan_times(before: Path, after: Path, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side, tree in (("before", before), ("after", after)):
        proc = subprocess.run(
            [PYTHON, str(Path(__file__).resolve()), "--scan-worker", side],
            env=tree_env(tree),
            cwd=tempfile.gettempdir(),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"scan worker ({side}) failed:\n{proc.stderr[-3000:]}")
        result = json.loads(proc.stdout)
        if not result["souverain_file"].startswith(str(tree) + "/") or result["native"][0] is not True:
            raise RuntimeError(f"scan worker ({side}) imported {result['souverain_file']}, native {result['native']}")
        out[side] = result
    return out


# -- report ----------------------------------------------------------------------------
MODES = {"c1": "c=1", "c1-stream": "c=1 stream (TTFT)", "open25": f"open {OPEN_RATE:g} req/s"}


def markdown(report: dict[str, Any]) -> str:
    lines = []
    if "latency" in report:
        lat = report["latency"]
        lines += [
            f"Gateway, 1 KB chat body ({lat['body_bytes']['public']} bytes), medians of {report['repeats']} repeats; "
            "added = after − before (median of per-repeat differences, [min..max]):",
            "",
            "| body | mode | before p50 / p90 / p99 ms | after p50 / p90 / p99 ms | added p50 ms | added p99 ms |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for row in lat["rows"]:
            b = " / ".join(f"{row[f'before_{f}']:.2f}" for f in ("p50_ms", "p90_ms", "p99_ms"))
            a = " / ".join(f"{row[f'after_{f}']:.2f}" for f in ("p50_ms", "p90_ms", "p99_ms"))
            r50, r99 = row["added_p50_ms_range"], row["added_p99_ms_range"]
            lines.append(
                f"| {row['body']} | {MODES[row['mode']]} | {b} | {a} "
                f"| {row['added_p50_ms']:+.3f} [{r50[0]:+.3f}..{r50[1]:+.3f}] "
                f"| {row['added_p99_ms']:+.2f} [{r99[0]:+.2f}..{r99[1]:+.2f}] |"
            )
        others = [x for row in lat["rows"] for x in row["other_processes_cores"]]
        lines.append(f"\nOther processes: median {statistics.median(others):.2f} cores, max {max(others):.2f}.")
    if "scan" in report:
        sb, sa = report["scan"]["before"]["sizes"], report["scan"]["after"]["sizes"]
        lines += [
            "",
            "Scan time, one core, median µs (µs per KB of body):",
            "",
            "| request | class | before scan_request | after classify | seal, memo | seal, no memo | classify + seal |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, a in sa.items():
            b = sb[name]
            kb = a["body_bytes"] / 1024

            def cell(m: dict[str, Any]) -> str:
                return f"{m['cpu_us']:,.0f} ({m['cpu_us'] / kb:.1f})"

            both = {"cpu_us": a["classify"]["cpu_us"] + a["seal_memo"]["cpu_us"]}
            lines.append(
                f"| {name} | {a['class']} | {cell(b['scan_request'])} | {cell(a['classify'])} "
                f"| {cell(a['seal_memo'])} | {cell(a['seal_cold'])} | {cell(both)} |"
            )
        for name, a in sa.items():
            if "breakdown" in a:
                lines.append(
                    f"\n{name}, where classify and seal spend their time (CPU µs): "
                    + json.dumps({k: v for k, v in a["breakdown"].items() if k != "short_pieces"})
                )
    return "\n".join(lines)


def lscpu_model() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="/work/wt-before", help="checkout of the commit before the change")
    parser.add_argument("--after", default=str(ROOT), help="checkout of the change (default: this one)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=500, help="measured requests per gateway per c=1 run")
    parser.add_argument("--stream-requests", type=int, default=300)
    parser.add_argument("--open-seconds", type=float, default=10.0, help="length of each open-loop run")
    harness.add_quiet_budget(parser, 60.0)
    parser.add_argument("--only", choices=["latency", "scan"], action="append")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--scan-worker", choices=["before", "after"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scan_worker:
        print(json.dumps(scan_worker(args.scan_worker)))
        return 0
    before, after = Path(args.before).resolve(), Path(args.after).resolve()
    started = time.monotonic()
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {
            "cpu": lscpu_model(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "before": tree_info(before),
        "after": tree_info(after),
        "repeats": args.repeats,
    }
    suites = args.only or ["latency", "scan"]
    if "scan" in suites:
        report["scan"] = scan_times(before, after, args.repeats)
    if "latency" in suites:
        report["latency"] = latency(
            before, after, args.repeats, args.requests, args.stream_requests, args.open_seconds, args.quiet_budget
        )
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    print(markdown(report))
    print(
        f"\n{report['elapsed_s']:.0f} s; before {report['before']['commit']}, after {report['after']['commit']}"
        + (
            f" (uncommitted: {', '.join(report['after']['dirty_souverain_files'])})"
            if report["after"]["dirty_souverain_files"]
            else ""
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
