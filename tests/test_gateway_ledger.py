"""Every request through the gateway leaves a ledger entry, durable before the response
completes; the log verifies offline, also after a kill -9 in the middle of a load."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import time

import httpx
import pytest
from conftest import MODEL, SOUVERAIN, Server, http

from souverain.auth import Principal
from souverain.errors import LedgerUnavailable
from souverain.pipeline import Facts, Pipeline

SECRET = "Zyxwvut-prompt-marker-4711"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": f"Repeat {SECRET}"}], "max_tokens": 3}


def auditor_key(server: Server) -> str:
    created = server.cli("keys", "create", "--name", "auditor", "--scope", "auditor")
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


def entries(server: Server, key: str, start: int, end: int) -> list[dict]:
    response = http.get(
        f"{server.url}/ledger/entries", params={"start": start, "end": end}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    return response.json()["entries"]


def test_each_request_is_recorded_without_its_content(gateway: Server) -> None:
    ok = http.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers=gateway.headers(), timeout=60)
    assert ok.status_code == 200
    index = int(ok.headers["x-souverain-ledger-index"])
    refused = http.post(
        f"{gateway.url}/v1/chat/completions", json={**CHAT, "model": "nope"}, headers=gateway.headers(), timeout=60
    )
    assert refused.status_code == 404
    auditor = auditor_key(gateway)
    deadline = time.monotonic() + 10
    while True:  # the refusal is recorded as the response goes out; give it its turn
        found = entries(gateway, auditor, index, index + 2)
        if len(found) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    first, second = found[0], found[1]
    entry = first.get("entry", first)
    assert entry["model"] == MODEL and entry["status"] == 200 and entry["decision"] == "allowed"
    assert entry["completion_tokens"] > 0 and len(entry["request_hmac"]) == 64 and len(entry["response_hmac"]) == 64
    refusal = second.get("entry", second)
    assert refusal["status"] == 404 and refusal["decision"] == "refused"
    assert refusal["reasons"] == ["model_not_found"]  # the code only: messages may quote request values
    assert SECRET not in json.dumps(found)
    # An inference key may not read entries; checkpoints are public (hashes only).
    inference = gateway.cli("keys", "create", "--name", "app").stdout.strip()
    denied = http.get(
        f"{gateway.url}/ledger/entries", params={"start": 0, "end": 1}, headers=gateway.headers(inference)
    )
    assert denied.status_code == 403
    assert http.get(f"{gateway.url}/ledger/entries", params={"start": 0, "end": 1}).status_code == 401
    assert http.get(f"{gateway.url}/ledger/checkpoint").text.startswith("souverain.local/ledger\n")


def test_streamed_response_carries_its_index(gateway: Server) -> None:
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={**CHAT, "stream": True},
        headers=gateway.headers(),
        timeout=60,
    ) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    final = json.loads(events[-2])
    assert final["usage"]["completion_tokens"] > 0
    assert isinstance(final["souverain"]["ledger_index"], int)


def test_ledger_failure_withholds_the_answer() -> None:
    """Fault injection: a ledger whose append fails makes `record` refuse, not skip."""

    class BrokenLedger:
        async def append(self, entry, *, request=None, response=None, sent=None):
            raise OSError("disk full")

    pipeline = Pipeline(keys=None, engines={}, metrics=None, router=None, scanner=None, ledger=BrokenLedger())  # type: ignore[arg-type]
    facts = Facts(
        "chat", principal=Principal("k", "n", "default", frozenset({"inference"}), None), model="m", body=b"{}"
    )
    import asyncio

    with pytest.raises(LedgerUnavailable):
        asyncio.run(pipeline.record(facts, response=b"{}"))


def test_kill_9_under_load_loses_no_answered_request(start_server) -> None:
    server: Server = start_server(f"models:\n  - name: {MODEL}\n    engine: llamacpp\n    max_queue: 64\n")
    answered: list[int] = []

    def one(i: int) -> int | None:
        try:
            r = http.post(
                f"{server.url}/v1/chat/completions",
                json={**CHAT, "max_tokens": 2, "messages": [{"role": "user", "content": f"n {i}"}]},
                headers=server.headers(),
                timeout=60,
            )
        except httpx.HTTPError:
            return None
        return int(r.headers["x-souverain-ledger-index"]) if r.status_code == 200 else None

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(one, i) for i in range(200)]
        while sum(f.done() for f in futures) < 20:
            time.sleep(0.05)
        server.proc.send_signal(signal.SIGKILL)
        answered = [i for f in futures if (i := f.result()) is not None]
    server.proc.wait()
    assert 20 <= len(answered) < 200
    # Restart on the same state: every answered request is in the log, and it verifies.
    again = Server(
        server.tmp,
        None if server.config_path is None else server.config_path.read_text(),
        {"SOUVERAIN_STATE_DIR": str(server.state)},
    )
    try:
        again.wait_ready()
        auditor = auditor_key(again)
        size = max(answered) + 1
        stored = entries(again, auditor, 0, size)
        assert {e["index"] for e in stored} >= set(answered)
    finally:
        again.stop()
    env = {**os.environ, "SOUVERAIN_STATE_DIR": str(server.state)}
    verify = subprocess.run(
        [*SOUVERAIN, "ledger", "verify", "--config", str(server.config_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=server.tmp,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_model_name_the_ledger_cannot_hold_is_still_recorded(gateway: Server) -> None:
    """A 404 for a model name with a space, or past 128 characters, is recorded under a
    safe label rather than lost."""
    auditor = auditor_key(gateway)
    for name in ("no such model", "m" * 300):
        response = http.post(
            f"{gateway.url}/v1/chat/completions", json={**CHAT, "model": name}, headers=gateway.headers()
        )
        assert response.status_code == 404, response.text
        index = int(response.headers["x-souverain-ledger-index"])
        deadline = time.monotonic() + 30
        while not (found := entries(gateway, auditor, index, index + 1)):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        entry = found[0].get("entry", found[0])
        assert entry["model"] == "invalid-name" and entry["status"] == 404
