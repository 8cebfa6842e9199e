"""What OpenTelemetry adds to a request (souverain/telemetry.py), off and on.

    PYTHONPATH=. .venv/bin/python -m bench.telemetry [--requests 2000] [--repeats 5] [--json OUT]

1. The spine in process: two gateways in this process, built as `tests/inprocess.py`
   builds one (real config loader, key store, router, scanner, SQLite ledger, a fake
   engine answering at once), reached through `httpx.ASGITransport`: one with telemetry
   off (the default), one with it on and exporting for real, over OTLP/HTTP to a receiver
   on loopback (a thread of this process that reads and acknowledges each POST), with
   `metrics_interval_s: 1` so metric exports happen during the run. Requests alternate
   off/on/on/off..., one at a time, a 1 KB chat body without personal data; latency per
   request from the client's side. Added = p50(on) − p50(off) per repeat; median of
   repeats and their min..max. The export threads share the process (and the GIL) with
   the requests, so their cost is in the figure.
2. `Telemetry.request` alone: CPU time per call (one thread), with the batch span
   processor and OTLP exporters as configured (their threads' work is not in this one);
   and the spine's hook (`Pipeline.observe`) with telemetry off, per call.

Timings are never asserted: results go to docs/benchmarks.md ("Telemetry").
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from souverain.api.app import Gateway, create_app
from souverain.auth import KeyStore
from souverain.config.loader import parse_config
from souverain.engines.fake import FakeEngine
from souverain.ledger import Ledger
from souverain.state import connect
from souverain.state.keys import SqliteKeyTable

PIPES = Path(__file__).resolve().parents[1] / "examples" / "pipes" / "pipes.yaml"
CONFIG = f"""
routing:
  pipes: {PIPES}
  health_interval_s: 0
models:
  - name: assistant
    engine: openai_http
    base_url: http://127.0.0.1:9/v1
    route: a-onprem
"""
BODY = {
    "model": "assistant",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant for the claims department. " * 4},
        {"role": "user", "content": "Summarise the attached policy terms for a new customer. " * 14},
    ],
}


class Receiver:
    """An OTLP/HTTP sink on loopback: reads each POST, answers 200, counts bytes."""

    def __init__(self) -> None:
        self.posts = 0
        self.bytes = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                outer.bytes += len(self.rfile.read(int(self.headers.get("content-length") or 0)))
                outer.posts += 1
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]


async def _gateway(tmp: Path, config_text: str) -> tuple[Gateway, httpx.AsyncClient, dict[str, str]]:
    tmp.mkdir()
    cfg = parse_config(config_text, "bench.yaml", {}, base_dir=tmp)
    keys = KeyStore(SqliteKeyTable(connect(tmp)))
    token, _ = keys.create("bench")
    ledger = Ledger.open(cfg.ledger, state_dir=tmp)
    gateway = Gateway(config=cfg, keys=keys, ledger=ledger, engines={"assistant": FakeEngine()}, state_dir=tmp)
    await ledger.start()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gateway)), base_url="http://gateway")
    return gateway, client, {"authorization": f"Bearer {token}"}


async def spine(requests: int, repeats: int) -> dict[str, Any]:
    receiver = Receiver()
    on_config = CONFIG + f"telemetry:\n  endpoint: http://127.0.0.1:{receiver.port}\n  metrics_interval_s: 1\n"
    added, p50s = [], {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as d:
        for r in range(repeats):
            off = await _gateway(Path(d) / f"off{r}", CONFIG)
            on = await _gateway(Path(d) / f"on{r}", on_config)
            assert off[0].telemetry is None and on[0].telemetry is not None
            lat: dict[str, list[float]] = {"off": [], "on": []}
            for i in range(requests + 50):
                order = (("off", off), ("on", on)) if i % 2 == 0 else (("on", on), ("off", off))
                for name, (_, client, headers) in order:
                    t0 = time.perf_counter()
                    resp = await client.post("/v1/chat/completions", json=BODY, headers=headers)
                    elapsed = time.perf_counter() - t0
                    assert resp.status_code == 200, resp.text
                    if i >= 50:  # warm-up
                        lat[name].append(elapsed)
            for name in ("off", "on"):
                p50s[name].append(statistics.median(lat[name]) * 1e3)
            added.append(p50s["on"][-1] - p50s["off"][-1])
            for gateway, client, _ in (off, on):
                await client.aclose()
                assert gateway.ledger is not None
                await gateway.ledger.stop()
                if gateway.telemetry is not None:
                    gateway.telemetry.shutdown()
                gateway.keys.close()
    return {
        "requests_per_repeat": requests,
        "p50_ms": {k: statistics.median(v) for k, v in p50s.items()},
        "added_p50_ms": {"median": statistics.median(added), "min": min(added), "max": max(added)},
        "otlp_posts": receiver.posts,
        "otlp_bytes": receiver.bytes,
    }


def call_cost(calls: int) -> dict[str, Any]:
    from souverain.pipeline import Facts, Pipeline
    from souverain.telemetry import Telemetry

    receiver = Receiver()
    cfg = parse_config(CONFIG + f"telemetry:\n  endpoint: http://127.0.0.1:{receiver.port}\n", "b.yaml", {})
    telemetry = Telemetry(cfg)
    facts = Facts("chat", model="assistant", route="a-onprem", deployment="assistant", classified=True)
    facts.usage, facts.finish_reasons, facts.sent_class = (
        {"prompt_tokens": 250, "completion_tokens": 40},
        ["stop"],
        "public",
    )
    for _ in range(200):
        telemetry.request(facts, 1)
    t0 = time.thread_time()
    for i in range(calls):
        telemetry.request(facts, i)
    per_call = (time.thread_time() - t0) / calls
    telemetry.shutdown()
    # Off: the spine's hook with no telemetry (what every request pays by default).
    off = Pipeline.__new__(Pipeline)
    off.telemetry = None
    t0 = time.thread_time()
    for i in range(calls * 100):
        off.observe(facts, i)
    per_off = (time.thread_time() - t0) / (calls * 100)
    return {"calls": calls, "cpu_us_per_call": per_call * 1e6, "off_ns_per_call": per_off * 1e9}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    result = {"spine": asyncio.run(spine(args.requests, args.repeats)), "request_call": call_cost(1000)}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
