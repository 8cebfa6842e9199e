"""Component choices, measured: JSON library, upstream HTTP client, HTTP server.

The gateway's picks (msgspec, httpx, uvicorn+httptools+uvloop) are timed against the
usual alternatives on the payloads and traffic the gateway handles, so that the choice
rests on numbers from this machine rather than on reputation:

- JSON: msgspec vs orjson vs the stdlib `json`, encoding and decoding a typical chat
  request, a chat completion, and one streaming chunk (the hot path: once per token).
  Medians of repeated timeit runs, in microseconds per operation.
- Upstream client: httpx.AsyncClient vs the same httpx API on an aiohttp transport
  (httpx-aiohttp) vs httpx2 vs aiohttp.ClientSession, each driving the mock upstream
  (bench/mock_upstream.py, its own process) at concurrency 16 and 64, plain and
  streaming. Reported: requests/s and the client's own CPU time per request, which is
  what the client would cost inside the gateway.
- HTTP server: a minimal Starlette app (one POST route, fixed JSON) under uvicorn
  (httptools + uvloop) vs granian (ASGI, uvloop), driven by bench/load.py. The gateway
  app itself under both servers is part of bench/run.py's overhead suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
import load  # noqa: E402

# -- JSON ------------------------------------------------------------------------------

CHAT_REQUEST = {
    "model": "mistral-small",
    "messages": [
        {
            "role": "system",
            "content": "You are a careful assistant for a European bank. Answer in the user's language.",
        },
        {"role": "user", "content": "Summarise our data retention policy for customer emails in three bullet points."},
        {
            "role": "assistant",
            "content": "- Emails are kept for 10 years.\n- Access is logged.\n- Deletion is audited.",
        },
        {
            "role": "user",
            "content": "And for phone recordings? Please cite the relevant article of the DORA regulation.",
        },
    ],
    "temperature": 0.2,
    "max_tokens": 512,
    "stream": False,
    "user": "analyst-42",
}
CHAT_RESPONSE = {
    "id": "chatcmpl-8c1f0e3a9b2d4c5e6f7a8b9c",
    "object": "chat.completion",
    "created": 1732440000,
    "model": "mistral-small",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Phone recordings are kept for five years. " * 12},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
    "usage": {"prompt_tokens": 96, "completion_tokens": 120, "total_tokens": 216},
}
CHAT_CHUNK = {
    "id": "chatcmpl-8c1f0e3a9b2d4c5e6f7a8b9c",
    "object": "chat.completion.chunk",
    "created": 1732440000,
    "model": "mistral-small",
    "choices": [{"index": 0, "delta": {"content": " recordings"}, "finish_reason": None, "logprobs": None}],
}


def _json_codecs() -> dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]]:
    """Each library as the gateway would use it: objects to bytes, bytes to objects."""
    import msgspec
    import orjson

    return {
        "msgspec": (msgspec.json.Encoder().encode, msgspec.json.Decoder().decode),
        "orjson": (orjson.dumps, orjson.loads),
        "json (stdlib)": (lambda o: json.dumps(o, separators=(",", ":")).encode(), json.loads),
    }


def _per_op_us(fn: Callable[[], Any], repeats: int = 7, target_s: float = 0.05) -> float:
    """Median over `repeats` timeit runs, each sized to take about `target_s`."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, int(number * target_s / 0.2))
    return statistics.median(t / number for t in timer.repeat(repeats, number)) * 1e6


def json_bench() -> dict[str, dict[str, float]]:
    payloads = {"request": CHAT_REQUEST, "response": CHAT_RESPONSE, "chunk": CHAT_CHUNK}
    out: dict[str, dict[str, float]] = {}
    for lib, (encode, decode) in _json_codecs().items():
        for name, obj in payloads.items():
            raw = encode(obj)
            out.setdefault(f"{name} encode", {})[lib] = round(_per_op_us(lambda: encode(obj)), 3)
            out.setdefault(f"{name} decode", {})[lib] = round(_per_op_us(lambda: decode(raw)), 3)
    # What the gateway really does with a request body: decode and validate into its struct.
    import msgspec

    from souverain.chat import ChatRequest

    typed = msgspec.json.Decoder(ChatRequest).decode
    raw = msgspec.json.encode(CHAT_REQUEST)
    out["request decode into souverain.chat.ChatRequest (validated)"] = {
        "msgspec": round(_per_op_us(lambda: typed(raw)), 3)
    }
    return out


# -- upstream client -------------------------------------------------------------------

CLIENTS = ("httpx", "httpx + aiohttp transport", "httpx2", "aiohttp")


class _Client:
    """One client library behind one small interface: post, and read all or by lines."""

    def __init__(self, kind: str, limit: int) -> None:
        self.kind = kind
        if kind == "aiohttp":
            import aiohttp

            self.session: Any = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit))
            return
        if kind == "httpx2":
            import httpx2 as httpx_mod
        else:
            import httpx as httpx_mod
        limits = httpx_mod.Limits(max_connections=limit, max_keepalive_connections=limit)
        if kind == "httpx + aiohttp transport":
            from httpx_aiohttp import HttpxAiohttpClient

            self.session = HttpxAiohttpClient(limits=limits, trust_env=False)
        else:
            self.session = httpx_mod.AsyncClient(limits=limits, trust_env=False)

    async def call(self, url: str, body: bytes, stream: bool) -> None:
        headers = {"content-type": "application/json"}
        if self.kind == "aiohttp":
            async with self.session.post(url, data=body, headers=headers) as response:
                if stream:
                    async for _ in response.content:
                        pass
                else:
                    await response.read()
                assert response.status == 200
            return
        if stream:
            async with self.session.stream("POST", url, content=body, headers=headers) as response:
                async for _ in response.aiter_lines():
                    pass
        else:
            response = await self.session.post(url, content=body, headers=headers)
        assert response.status_code == 200

    async def close(self) -> None:
        await (self.session.close() if self.kind == "aiohttp" else self.session.aclose())


async def _drive_client(
    kind: str, url: str, concurrency: int, requests: int, stream: bool, time_limit_s: float = 5.0
) -> dict[str, float]:
    """`requests` calls, `concurrency` at a time, stopping early after `time_limit_s`."""
    client = _Client(kind, concurrency)
    body = load.chat_body(stream=stream)
    try:
        done = 0

        async def worker(count: int, deadline: float) -> None:
            nonlocal done
            for _ in range(count):
                if time.perf_counter() > deadline:
                    return
                await client.call(url, body, stream)
                done += 1

        # Warm-up: open the connections.
        await asyncio.gather(*(worker(8, time.perf_counter() + time_limit_s) for _ in range(concurrency)))
        done = 0
        wall, cpu = time.perf_counter(), time.process_time()
        deadline = wall + time_limit_s
        await asyncio.gather(*(worker(max(1, requests // concurrency), deadline) for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return {"rps": done / wall, "cpu_us_per_request": cpu / done * 1e6}
    finally:
        await client.close()


def client_bench(
    repeats: int = 3,
    requests: int = 1500,
    concurrencies: tuple[int, ...] = (16, 64),
    waiter: harness.QuietWaiter | None = None,
) -> list[dict[str, Any]]:
    import uvloop

    waiter = waiter or harness.QuietWaiter(0)
    rows: list[dict[str, Any]] = []
    with harness.mock_upstream() as port:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        for stream in (False, True):
            for concurrency in concurrencies:
                runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in CLIENTS}
                others: list[float] = []
                for _ in range(repeats):  # clients interleaved within each repeat
                    waiter.wait()
                    with harness.OtherLoad() as background:
                        for kind in CLIENTS:
                            runs[kind].append(uvloop.run(_drive_client(kind, url, concurrency, requests, stream)))
                    others.append(round(background.cores, 2))
                for kind in CLIENTS:
                    rows.append(
                        {
                            "client": kind,
                            "stream": stream,
                            "concurrency": concurrency,
                            "other_processes_cores": others,
                            "rps": round(statistics.median(r["rps"] for r in runs[kind])),
                            "cpu_us_per_request": round(statistics.median(r["cpu_us_per_request"] for r in runs[kind])),
                        }
                    )
    return rows


# -- HTTP server -----------------------------------------------------------------------

SERVERS = {
    "uvicorn + httptools + uvloop": ["--server", "uvicorn"],
    "granian (ASGI, uvloop)": ["--server", "granian"],
}


def server_bench(
    repeats: int = 3, requests: int = 3000, waiter: harness.QuietWaiter | None = None
) -> list[dict[str, Any]]:
    """A minimal Starlette app under each server; medians over repeats."""
    import uvloop

    waiter = waiter or harness.QuietWaiter(0)
    rows: list[dict[str, Any]] = []
    script = str(harness.ROOT / "bench" / "gateway_server.py")
    for name, args in SERVERS.items():
        with harness.gateway(None, [harness.PYTHON, script, "--app", "minimal", *args]) as gw:
            for concurrency in (1, 16, 64):
                results, others = [], []
                for _ in range(repeats):
                    waiter.wait()
                    with harness.OtherLoad() as background:
                        results.append(
                            uvloop.run(
                                load.run_load(
                                    gw.url, concurrency=concurrency, requests=requests, stream=False, time_limit_s=10
                                )
                            )
                        )
                    others.append(round(background.cores, 2))
                rows.append(
                    {
                        "server": name,
                        "concurrency": concurrency,
                        "other_processes_cores": others,
                        "rps": round(statistics.median(r.rps for r in results)),
                        "p50_ms": round(statistics.median(r.p50_ms for r in results), 3),
                        "p99_ms": round(statistics.median(r.p99_ms for r in results), 3),
                        "errors": sum(r.errors for r in results),
                    }
                )
    return rows


# -- report ----------------------------------------------------------------------------


def run_choices(repeats: int = 3, quiet_budget_s: float = 30.0) -> dict[str, Any]:
    waiter = harness.QuietWaiter(quiet_budget_s)
    return {
        "json_us": json_bench(),
        "clients": client_bench(repeats, waiter=waiter),
        "servers": server_bench(repeats, waiter=waiter),
        "waited_for_quiet_s": waiter.waited_s,
    }


def markdown(result: dict[str, Any]) -> str:
    libs = list(_json_codecs())
    lines = [
        "JSON, microseconds per operation (median of 7 timeit runs; lower is better):",
        "",
        "| operation | " + " | ".join(libs) + " |",
        "| --- |" + " ---: |" * len(libs),
    ]
    for op, by_lib in result["json_us"].items():
        lines.append(f"| {op} | " + " | ".join(f"{by_lib[lib]:.2f}" if lib in by_lib else "–" for lib in libs) + " |")
    lines += [
        "",
        "Upstream client against the mock upstream (medians; CPU is the client process's own):",
        "",
        "| mode | concurrency | client | req/s | client CPU µs/request |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for row in result["clients"]:
        mode = "stream" if row["stream"] else "non-stream"
        lines.append(
            f"| {mode} | {row['concurrency']} | {row['client']} | {row['rps']} | {row['cpu_us_per_request']} |"
        )
    lines += [
        "",
        "HTTP server, minimal Starlette app (one POST route, fixed JSON), load from bench/load.py:",
        "",
        "| server | concurrency | req/s | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in result["servers"]:
        lines.append(f"| {row['server']} | {row['concurrency']} | {row['rps']} | {row['p50_ms']} | {row['p99_ms']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure the JSON library, upstream client and HTTP server choices.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the raw result here")
    args = parser.parse_args(argv)
    result = run_choices(args.repeats)
    return harness.report(result, args.json, markdown(result))


if __name__ == "__main__":
    sys.exit(main())
