"""The embedded engine under pressure: a bounded queue, disconnects, readiness, metrics."""

from __future__ import annotations

import concurrent.futures
import re
import socket
import time

import httpx
from conftest import MODEL, Server, http

from souverain.privacy import native

LONG = {"model": MODEL, "messages": [{"role": "user", "content": "Write a very long story."}], "max_tokens": 400}


def metric(server: Server, name: str, labels: str) -> float:
    text = http.get(f"{server.url}/metrics").text
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
    assert match, f"{name}{{{labels}}} not in /metrics"
    return float(match.group(1))


def test_full_queue_answers_429_with_retry_after(start_server) -> None:
    server = start_server(
        f"hardening:\n  metrics: open\nmodels:\n  - name: {MODEL}\n    engine: llamacpp\n    max_queue: 1\n    retry_after_s: 3\n"
    )
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(
                httpx.post, f"{server.url}/v1/chat/completions", json=LONG, headers=server.headers(), timeout=120
            )
            for _ in range(6)
        ]
        responses = [f.result() for f in futures]
    statuses = sorted(r.status_code for r in responses)
    # One generating and one waiting are admitted; the rest are turned away at once.
    assert statuses.count(200) == 2, statuses
    refused = [r for r in responses if r.status_code == 429]
    assert len(refused) == 4
    for r in refused:
        assert r.headers["retry-after"] == "3"
        assert r.json()["error"]["code"] == "engine_queue_full"
    assert metric(server, "souverain_queue_depth", f'model="{MODEL}"') == 0


def test_client_disconnect_stops_generation(gateway: Server) -> None:
    """Closing a stream early frees the engine: the next request does not wait for 400 tokens."""
    before = metric(gateway, "souverain_generated_tokens_total", f'model="{MODEL}"')
    with httpx.Client(timeout=60) as client:
        with client.stream(
            "POST", f"{gateway.url}/v1/chat/completions", json={**LONG, "stream": True}, headers=gateway.headers()
        ) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("data:") and '"content":"' in line and '"content":""' not in line:
                    break
    deadline = time.monotonic() + 10
    while metric(gateway, "souverain_queue_depth", f'model="{MODEL}"') != 0:
        assert time.monotonic() < deadline, "generation went on after the client left"
        time.sleep(0.05)
    # A non-streaming request whose client gives up is stopped too.
    try:
        http.post(f"{gateway.url}/v1/chat/completions", json=LONG, headers=gateway.headers(), timeout=0.5)
    except httpx.TimeoutException:
        pass
    deadline = time.monotonic() + 10
    while metric(gateway, "souverain_queue_depth", f'model="{MODEL}"') != 0:
        assert time.monotonic() < deadline, "generation went on after the client left"
        time.sleep(0.05)
    after = metric(gateway, "souverain_generated_tokens_total", f'model="{MODEL}"')
    # Generation started, and neither request got near its 400-token budget.
    assert 1 <= after - before < 400


def test_slow_client_does_not_block_others(gateway: Server) -> None:
    """A raw socket that sends half a body holds no engine slot."""
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + gateway.key.encode() + b'\r\nContent-Length: 1000\r\n\r\n{"model":'
        )
        ok = http.post(
            f"{gateway.url}/v1/chat/completions",
            json={**LONG, "max_tokens": 3},
            headers=gateway.headers(),
            timeout=30,
        )
        assert ok.status_code == 200


def test_model_that_fails_to_load(start_server, tmp_path) -> None:
    missing = tmp_path / "nope.gguf"
    server = start_server(
        f"hardening:\n  metrics: open\nmodels:\n  - name: broken\n    engine: llamacpp\n    path: {missing}\n",
        ready=False,
    )
    deadline = time.monotonic() + 30
    while (r := http.get(f"{server.url}/readyz")).json()["models"]["broken"] == "loading":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert r.status_code == 503
    assert r.json()["status"] == "not ready"
    assert r.json()["models"] == {"broken": "failed"}
    assert "does not exist" in r.json()["errors"]["broken"]  # /readyz says why
    response = http.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "broken", "messages": [{"role": "user", "content": "hi"}]},
        headers=server.headers(),
    )
    assert response.status_code == 503
    assert "does not exist" in response.json()["error"]["message"]
    assert http.get(f"{server.url}/healthz").status_code == 200
    assert metric(server, "souverain_engine_state", 'model="broken",state="failed"') == 1


def test_health_and_metrics(gateway: Server) -> None:
    assert http.get(f"{gateway.url}/healthz").json() == {"status": "ok"}
    assert http.get(f"{gateway.url}/readyz").json() == {"status": "ready", "models": {MODEL: "ready"}}
    http.post(f"{gateway.url}/v1/chat/completions", json={**LONG, "max_tokens": 3}, headers=gateway.headers())
    text = http.get(f"{gateway.url}/metrics").text
    assert re.search(rf'souverain_requests_total\{{endpoint="chat",model="{MODEL}",status="200"\}} [1-9]', text)
    assert f'souverain_request_duration_seconds_bucket{{endpoint="chat",le="0.001",model="{MODEL}"}}' in text
    assert f'souverain_engine_state{{model="{MODEL}",state="ready"}} 1.0' in text
    assert metric(gateway, "souverain_tokens_total", f'kind="prompt",model="{MODEL}"') > 0
    # the gateway runs the same install as this test: the same build of the scanner
    assert metric(gateway, "souverain_privacy_scanner_compiled", f'reason="{native.REASON}"') == float(native.ACTIVE)
    stream = http.post(
        f"{gateway.url}/v1/chat/completions", json={**LONG, "max_tokens": 3, "stream": True}, headers=gateway.headers()
    )
    assert stream.status_code == 200
    assert f'souverain_time_to_first_token_seconds_count{{model="{MODEL}"}}' in http.get(f"{gateway.url}/metrics").text


def test_request_timeout_is_a_504_and_frees_the_engine(start_server) -> None:
    server = start_server(
        f"server:\n  request_timeout_s: 0.3\nhardening:\n  metrics: open\nmodels:\n  - name: {MODEL}\n    engine: llamacpp\n"
    )
    response = http.post(f"{server.url}/v1/chat/completions", json=LONG, headers=server.headers(), timeout=60)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "request_timeout"
    deadline = time.monotonic() + 10
    while metric(server, "souverain_queue_depth", f'model="{MODEL}"') != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert metric(server, "souverain_generated_tokens_total", f'model="{MODEL}"') < 400
