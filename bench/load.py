"""A small async load generator for OpenAI-compatible chat completions.

It sends a fixed number of requests at a fixed concurrency (closed loop: each of
`concurrency` workers sends its next request when the previous one has finished) and
measures, per request, the latency to the last byte and, for streams, the time to the
first chunk that carries content (TTFT). It runs in its own process, apart from the
server under test, so that its own CPU use shows up as contention, not as server time.

aiohttp is the client because bench/choices.py measured it as the cheapest async client
per request here (see docs/benchmarks.md); a cheaper client leaves more of the two cores
to the server under test.

Safety: only loopback targets are accepted, and every run is bounded by a request count
and a wall-clock limit.

    python bench/load.py --url http://127.0.0.1:8080/v1/chat/completions \
        --concurrency 16 --requests 2000 [--stream] [--key sk-sv-...]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

import aiohttp
import msgspec
import uvloop

_decode = msgspec.json.Decoder().decode


def chat_body(*, stream: bool, max_tokens: int = 16, model: str = "mock") -> bytes:
    """A typical small chat request: a system prompt, one user turn, greedy decoding."""
    body: dict = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
            {"role": "user", "content": "Summarise the benefits of running models on premises in one sentence."},
        ],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return msgspec.json.encode(body)


def check_loopback(url: str) -> None:
    """Refuse any target that is not on this machine: benchmarks never leave it."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"load.py only targets loopback addresses, not {host!r}")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation): a value that was really observed."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Result:
    """One load run. Times are in milliseconds."""

    concurrency: int
    stream: bool
    requests: int
    errors: int
    elapsed_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    ttft_p50_ms: float | None = None
    ttft_p99_ms: float | None = None
    first_error: str | None = None
    latencies_ms: list[float] = field(default_factory=list, repr=False)


def _has_content(line: bytes) -> bool:
    """Whether an SSE `data:` line carries generated text (not the role-only first chunk)."""
    if not line.startswith(b"data:") or line.startswith(b"data: [DONE]"):
        return False
    try:
        event = _decode(line[5:])
    except msgspec.DecodeError:
        return False
    for choice in event.get("choices") or ():
        if (choice.get("delta") or {}).get("content"):
            return True
    return False


async def _one(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict, stream: bool
) -> tuple[float, float | None]:
    """Send one request; return (latency, ttft) in seconds. Raises on a non-200 answer."""
    started = time.perf_counter()
    ttft = None
    async with session.post(url, data=body, headers=headers) as response:
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {(await response.read())[:200]!r}")
        if stream:
            async for line in response.content:
                if ttft is None and _has_content(line):
                    ttft = time.perf_counter() - started
        else:
            await response.read()
    return time.perf_counter() - started, ttft


async def run_load(
    url: str,
    *,
    concurrency: int,
    requests: int,
    stream: bool,
    key: str | None = None,
    max_tokens: int = 16,
    model: str = "mock",
    warmup: int | None = None,
    time_limit_s: float = 60.0,
) -> Result:
    """Run `warmup` unmeasured requests, then `requests` measured ones, `concurrency` at a time."""
    check_loopback(url)
    body = chat_body(stream=stream, max_tokens=max_tokens, model=model)
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    latencies: list[float] = []
    ttfts: list[float] = []
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=time_limit_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def drive(count: int, measure: bool, deadline: float) -> None:
            remaining = count

            async def worker() -> None:
                nonlocal remaining
                while remaining > 0 and time.perf_counter() < deadline:
                    remaining -= 1
                    try:
                        latency, ttft = await _one(session, url, body, headers, stream)
                    except Exception as exc:  # counted and reported, never hidden
                        errors.append(f"{type(exc).__name__}: {exc}")
                        continue
                    if measure:
                        latencies.append(latency)
                        if ttft is not None:
                            ttfts.append(ttft)

            await asyncio.gather(*(worker() for _ in range(concurrency)))

        start = time.perf_counter()
        await drive(warmup if warmup is not None else max(50, 4 * concurrency), False, start + time_limit_s)
        errors.clear()
        measured_from = time.perf_counter()
        await drive(requests, True, measured_from + time_limit_s)
        elapsed = time.perf_counter() - measured_from
    ms = [x * 1000 for x in latencies]
    result = Result(
        concurrency=concurrency,
        stream=stream,
        requests=len(latencies),
        errors=len(errors),
        elapsed_s=round(elapsed, 3),
        rps=round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        p50_ms=round(percentile(ms, 0.50), 3),
        p99_ms=round(percentile(ms, 0.99), 3),
        first_error=errors[0] if errors else None,
        latencies_ms=ms,
    )
    if stream:
        tms = [x * 1000 for x in ttfts]
        result.ttft_p50_ms = round(percentile(tms, 0.50), 3)
        result.ttft_p99_ms = round(percentile(tms, 0.99), 3)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Closed-loop load against an OpenAI-compatible chat endpoint.")
    parser.add_argument("--url", required=True, help="full URL of /v1/chat/completions (loopback only)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=1000, help="measured requests (after warm-up)")
    parser.add_argument("--warmup", type=int, help="unmeasured requests first (default max(50, 4×concurrency))")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--max-tokens", type=int, default=16, help="content chunks the mock streams")
    parser.add_argument("--model", default="mock")
    parser.add_argument("--key", help="API key sent as a bearer token")
    parser.add_argument(
        "--time-limit",
        dest="time_limit_s",
        type=float,
        default=60.0,
        help="seconds; the run stops then, whatever is left",
    )
    args = parser.parse_args(argv)
    result = uvloop.run(run_load(**vars(args)))  # the options are named as its parameters
    out = asdict(result)
    del out["latencies_ms"]
    print(json.dumps(out))
    return 0 if result.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
