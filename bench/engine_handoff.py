"""Where the embedded engine's gap to direct llama-cpp-python comes from, without HTTP.

bench/engine.py finds the gateway a few percent slower per token than llama-cpp-python
called directly. This isolates the one structural difference, in one process and with no
HTTP at all: the engine generates on a worker thread and hands every token to the asyncio
event loop (`loop.call_soon_threadsafe(queue.put_nowait, chunk)`), so the loop thread wakes
once per token and competes with llama.cpp's threads for the two cores and the GIL.

    main thread   llama-cpp-python called directly (the baseline)
    worker        the same call on a worker thread, main thread blocked on the result
    worker+loop   worker thread, each chunk handed to a running asyncio loop, as the engine does

Same settings as bench/engine.py; rounds interleaved and rotated; medians reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine  # noqa: E402

_END = object()


def _stream(llm: Any, max_tokens: int) -> Any:
    return llm.create_chat_completion(
        messages=engine.MESSAGES, max_tokens=max_tokens, temperature=0, stream=True, logits_processor=[engine.Counter()]
    )


def main_thread(llm: Any, max_tokens: int, pool: ThreadPoolExecutor) -> None:
    for _ in _stream(llm, max_tokens):
        pass


def worker(llm: Any, max_tokens: int, pool: ThreadPoolExecutor) -> None:
    pool.submit(lambda: [None for _ in _stream(llm, max_tokens)]).result()


def worker_loop(llm: Any, max_tokens: int, pool: ThreadPoolExecutor) -> None:
    async def consume() -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def work() -> None:
            try:
                for chunk in _stream(llm, max_tokens):
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _END)

        future = loop.run_in_executor(pool, work)
        while (await queue.get()) is not _END:
            pass
        await future

    asyncio.run(consume())


def run(rounds: int, max_tokens: int) -> dict[str, Any]:
    import time

    from llama_cpp import Llama

    threads = os.cpu_count() or 1
    llm = Llama(
        model_path=str(engine.gguf_path()),
        n_ctx=engine.N_CTX,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    paths = {"main thread": main_thread, "worker": worker, "worker+loop": worker_loop}
    samples: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    with ThreadPoolExecutor(max_workers=1) as pool:
        main_thread(llm, 8, pool)
        for i in range(rounds):
            for name in names[i % 3 :] + names[: i % 3]:
                started = time.perf_counter()
                paths[name](llm, max_tokens, pool)
                samples[name].append(max_tokens / (time.perf_counter() - started))
    base = statistics.median(samples["main thread"])
    return {
        "n_threads": threads,
        "max_tokens": max_tokens,
        "rounds": rounds,
        "tokens_per_s": {k: [round(v, 1) for v in vs] for k, vs in samples.items()},
        "median_tokens_per_s": {k: round(statistics.median(vs), 1) for k, vs in samples.items()},
        "vs_main_thread": {k: round(statistics.median(vs) / base, 3) for k, vs in samples.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Token hand-off cost: worker thread + asyncio loop vs direct.")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--json", help="also write the raw result here")
    args = parser.parse_args(argv)
    result = run(args.rounds, args.max_tokens)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
