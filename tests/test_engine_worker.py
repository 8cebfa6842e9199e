"""The embedded engine's worker process: a crash or a hang costs its own requests a 502,
never the gateway or other models; the worker comes back and the ledger still verifies."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import MODEL, SOUVERAIN, Server, http

OTHER = "other-model"
STORY = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]


def two_models(extra: str = "") -> str:
    """Two embedded models, each in its own worker: `MODEL` is the one we break."""
    return f"""
hardening:
  metrics: open
models:
  - name: {MODEL}
    engine: llamacpp
    max_queue: 8
    n_ctx: 1024
    embeddings: false
{extra}
  - name: {OTHER}
    engine: llamacpp
    max_queue: 8
    n_ctx: 1024
    embeddings: false
"""


def worker_pid(server: Server, model: str) -> int:
    """The pid of the engine worker serving `model`, a child of the gateway process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == server.proc.pid and b"souverain.engines.worker" in cmdline and model.encode() in cmdline:
            return int(entry.name)
    raise AssertionError(f"no engine worker for {model}")


def metric(server: Server, name: str, labels: str) -> float:
    text = http.get(f"{server.url}/metrics").text
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
    assert match, f"{name}{{{labels}}} not in /metrics"
    return float(match.group(1))


def chat(server: Server, model: str, *, stream: bool, max_tokens: int = 300) -> dict:
    """One request, as a client sees it: status, and for a stream its events."""
    body = {"model": model, "messages": STORY, "max_tokens": max_tokens, "stream": stream}
    with httpx.Client(timeout=120) as client:
        with client.stream("POST", f"{server.url}/v1/chat/completions", json=body, headers=server.headers()) as r:
            if not stream or r.status_code != 200:
                r.read()
                return {"status": r.status_code, "body": r.json()}
            events = [
                json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:") and "[DONE]" not in line
            ]
            return {"status": r.status_code, "events": events}


def crashed(result: dict) -> bool:
    """The documented answer for a request whose worker died under it: a 502
    `engine_crashed`, or for a stream already under way a final error event."""
    if result["status"] == 502:
        return result["body"]["error"]["code"] == "engine_crashed"
    if result["status"] == 200 and "events" in result:
        last = result["events"][-1]
        return "error" in last and last["error"]["code"] == "engine_crashed"
    return False


def finished(result: dict) -> bool:
    if result["status"] != 200:
        return False
    if "events" in result:
        return "error" not in result["events"][-1] and bool(result["events"][-1].get("usage"))
    return bool(result["body"]["choices"])


def assert_ledger_verifies(server: Server) -> None:
    """`souverain ledger verify` over the stopped server's state succeeds."""
    verify = subprocess.run(
        [*SOUVERAIN, "ledger", "verify", "--config", str(server.config_path)],
        capture_output=True,
        text=True,
        env=server.env,
        cwd=server.tmp,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
def test_worker_crash_under_load(start_server, sig: signal.Signals) -> None:
    server = start_server(two_models())
    pid = worker_pid(server, MODEL)
    results: list[dict] = []
    other: list[dict] = []
    started = threading.Event()

    def broken(stream: bool) -> None:
        results.append(chat(server, MODEL, stream=stream))

    def steady() -> None:
        while not started.is_set() or len(other) < 4:
            other.append(chat(server, OTHER, stream=False, max_tokens=8))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        side = pool.submit(steady)
        calls = [pool.submit(broken, i % 2 == 0) for i in range(6)]
        # wait until the worker is generating, then kill it
        deadline = time.monotonic() + 60
        while metric(server, "souverain_queue_depth", f'model="{MODEL}"') < 6:
            assert time.monotonic() < deadline, "the requests never reached the engine"
            time.sleep(0.05)
        time.sleep(0.5)
        os.kill(pid, sig)
        started.set()
        for call in calls:
            call.result(timeout=120)  # no request hangs
        side.result(timeout=120)

    assert len(results) == 6
    assert all(crashed(r) or finished(r) for r in results), results
    assert sum(crashed(r) for r in results) >= 1
    for r in results:
        if crashed(r):
            message = r["body"]["error"]["message"] if "body" in r else r["events"][-1]["error"]["message"]
            assert signal.Signals(sig).name in message, message
    # the other model, in its own worker, answered throughout
    assert other and all(r["status"] == 200 for r in other), other
    assert http.get(f"{server.url}/healthz").status_code == 200

    # the worker comes back, and serves again
    server.wait_ready()
    assert worker_pid(server, MODEL) != pid
    assert finished(chat(server, MODEL, stream=False, max_tokens=4))
    assert metric(server, "souverain_engine_restarts_total", f'model="{MODEL}"') >= 1
    text = http.get(f"{server.url}/metrics").text
    assert re.search(rf'souverain_requests_total\{{endpoint="chat",model="{MODEL}",status="502"\}}', text) or any(
        "events" in r for r in results if crashed(r)
    )
    # every request was recorded, failures included, and the log verifies
    server.stop()
    assert_ledger_verifies(server)


def test_hung_worker_is_killed_and_restarted(start_server) -> None:
    server = start_server(two_models("    hang_timeout_s: 1"))
    pid = worker_pid(server, MODEL)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        pending = pool.submit(chat, server, MODEL, stream=False)
        deadline = time.monotonic() + 60
        while metric(server, "souverain_queue_depth", f'model="{MODEL}"') < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(pid, signal.SIGSTOP)  # alive, but answers nothing: hung
        result = pending.result(timeout=120)
    assert result["status"] == 502, result
    assert result["body"]["error"]["code"] == "engine_crashed"
    assert "health check" in result["body"]["error"]["message"]
    assert finished(chat(server, OTHER, stream=False, max_tokens=4))
    server.wait_ready()
    assert finished(chat(server, MODEL, stream=True, max_tokens=4))


def test_requests_during_restart_get_503_with_retry_after(start_server) -> None:
    server = start_server(two_models())
    os.kill(worker_pid(server, MODEL), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while (r := http.get(f"{server.url}/readyz")).json()["models"][MODEL] == "ready":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert r.status_code == 503
    assert "SIGKILL" in r.json()["errors"][MODEL]
    response = chat(server, MODEL, stream=False, max_tokens=4)
    if response["status"] != 200:  # the restart may already be done: then it is served
        assert response["status"] == 503
        assert response["body"]["error"]["code"] == "engine_not_ready"
    server.wait_ready()


def test_too_many_messages_are_refused_before_the_engine_works(start_server) -> None:
    """Tens of thousands of tiny messages are refused from their count alone, and the
    engine stays free for everyone else."""
    server = start_server(f"models:\n  - name: {MODEL}\n    engine: llamacpp\n    embeddings: false\n")
    for count in (10_000, 100_000):
        body = {"model": MODEL, "messages": [{"role": "user", "content": "a"}] * count, "max_tokens": 4}
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            big = pool.submit(http.post, f"{server.url}/v1/chat/completions", json=body, headers=server.headers())
            small = pool.submit(chat, server, MODEL, stream=False, max_tokens=4)
            refused, served = big.result(), small.result()
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "context_length_exceeded"
        assert finished(served)


def test_empty_embedding_input_is_a_400(gateway: Server) -> None:
    for value in ("", ["fine", ""]):
        response = http.post(
            f"{gateway.url}/v1/embeddings", json={"model": MODEL, "input": value}, headers=gateway.headers()
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == "input"


def test_breaker_opened_before_a_restart_is_closed_by_it() -> None:
    """Failures of a worker that has since been replaced say nothing about the new one;
    failures after the new one became ready still open the breaker."""
    from souverain.routing.health import HealthBook

    book = HealthBook(failures_to_open=2, cooldown_s=60)
    for _ in range(2):
        book.begin("m")
        book.end("m", ok=False)
    assert book.breakers["m"].opened_at is not None
    assert not book.snapshot(["m"], {"m": 0.0})["m"].available  # no restart: stays open
    restarted = time.monotonic()
    assert book.snapshot(["m"], {"m": restarted})["m"].available  # restarted since: closed
    for _ in range(2):
        book.begin("m")
        book.end("m", ok=False)
    assert not book.snapshot(["m"], {"m": restarted})["m"].available  # failed again after: open


@pytest.mark.skipif("amx_tile" not in Path("/proc/cpuinfo").read_text(), reason="needs a CPU that reports AMX")
def test_a_forced_variant_that_cannot_run_fails_in_one_line(start_server) -> None:
    """AMX, forced on a CPU that reports it: where llama.cpp's AMX kernels run, the model
    is served; where they crash (Sapphire Rapids guests seen so far), the gateway stays
    up and /readyz names the signal, the variant and the CPU's features."""
    server = start_server(
        f"models:\n  - name: {MODEL}\n    engine: llamacpp\n    embeddings: false\n",
        env={"SOUVERAIN_LLAMA_CPU_VARIANT": "sapphirerapids"},
        ready=False,
    )
    deadline = time.monotonic() + 120
    while (r := http.get(f"{server.url}/readyz")).json()["models"][MODEL] == "loading":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    if r.status_code == 200:
        assert finished(chat(server, MODEL, stream=False, max_tokens=4))
        return
    assert r.json()["models"][MODEL] == "failed"
    reason = r.json()["errors"][MODEL]
    assert "SIG" in reason and "sapphirerapids" in reason and "amx_tile" in reason, reason
    assert "\n" not in reason
    assert http.get(f"{server.url}/healthz").status_code == 200


def workers_of(server: Server) -> list[int]:
    try:
        return [worker_pid(server, MODEL)]
    except AssertionError:
        return []


def test_gateway_processes_on_one_state_directory_share_one_worker(start_server, tmp_path: Path) -> None:
    """The model is loaded once for every gateway process on the machine; when the one
    that supervises the worker dies, another takes over and starts a new worker."""
    config = f"hardening:\n  metrics: open\nmodels:\n  - name: {MODEL}\n    engine: llamacpp\n    embeddings: false\n"
    first = start_server(config)
    second = start_server(config, env={"SOUVERAIN_STATE_DIR": str(first.state)})
    second.key = first.key  # one key store: the second start made no new key
    assert len(workers_of(first)) == 1 and workers_of(second) == []
    for server in (first, second):
        assert finished(chat(server, MODEL, stream=False, max_tokens=4))
        assert finished(chat(server, MODEL, stream=True, max_tokens=4))
    variant = http.get(f"{second.url}/metrics").text
    assert "souverain_engine_cpu_variant{" in variant  # the follower knows what the owner chose

    first.proc.kill()  # the owner dies; its worker dies with it
    first.proc.wait()
    deadline = time.monotonic() + 60
    while not workers_of(second):
        assert time.monotonic() < deadline, "no gateway took the worker over"
        time.sleep(0.1)
    second.wait_ready()
    assert finished(chat(server=second, model=MODEL, stream=False, max_tokens=4))


def test_a_variant_that_crashed_its_worker_is_left_out_next_time(monkeypatch) -> None:
    """SIGILL at any time, or any signal before the worker was ready (its self-test runs
    the CPU kernels), leaves that variant out of the next start; the baseline never is,
    and a variant the operator forced is never replaced."""
    from souverain.config import LlamaCppModel
    from souverain.engines import cpu
    from souverain.engines.supervisor import WorkerEngine

    monkeypatch.delenv(cpu.ENV_OVERRIDE, raising=False)
    engine = WorkerEngine(LlamaCppModel(name=MODEL))
    engine.variant = "zen4"
    assert not engine._exclude_if_cpu_fault(-signal.SIGKILL, ready=True)  # killed while serving: not the CPU
    assert engine._exclude_if_cpu_fault(-signal.SIGILL, ready=True)
    assert engine._worker_env()[cpu.ENV_OVERRIDE] == "!zen4"
    engine.variant = "icelake"
    assert engine._exclude_if_cpu_fault(-signal.SIGSEGV, ready=False)
    assert engine._worker_env()[cpu.ENV_OVERRIDE] == "!zen4,!icelake"
    engine.variant = "x64"
    assert not engine._exclude_if_cpu_fault(-signal.SIGILL, ready=False)
    monkeypatch.setenv(cpu.ENV_OVERRIDE, "cooperlake")
    engine.variant = "cooperlake"
    assert not engine._exclude_if_cpu_fault(-signal.SIGILL, ready=False)
    assert engine._worker_env()[cpu.ENV_OVERRIDE] == "cooperlake"
    engine._slot.close()


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_serve_workers_share_one_engine_worker_and_replace_a_dead_process(start_server) -> None:
    config = f"models:\n  - name: {MODEL}\n    engine: llamacpp\n    embeddings: false\n"
    server = start_server(config, serve_args=["--workers", "2"])
    gateways = children_of(server.proc.pid)
    assert len(gateways) == 2
    engines = [pid for g in gateways for pid in children_of(g)]
    assert len(engines) == 1  # the model is loaded once
    for _ in range(4):
        assert finished(chat(server, MODEL, stream=False, max_tokens=4))
    os.kill(gateways[0], signal.SIGKILL)  # a gateway process dies (perhaps the engine's supervisor)
    deadline = time.monotonic() + 60
    while len(set(children_of(server.proc.pid)) - {gateways[0]}) < 2:
        assert time.monotonic() < deadline, "the dead gateway process was not replaced"
        time.sleep(0.1)
    server.wait_ready()
    deadline = time.monotonic() + 60
    while True:  # a request may land on a process whose engine view is still catching up
        result = chat(server, MODEL, stream=False, max_tokens=4)
        if finished(result) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert finished(result), result
    engines = [pid for g in children_of(server.proc.pid) for pid in children_of(g)]
    assert len(engines) == 1
    server.stop()
    assert server.proc.returncode == 0
    assert_ledger_verifies(server)
