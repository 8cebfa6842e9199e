"""A hostile client against a real `souverain serve` on loopback (docs/security.md).

Each test starts a gateway without the embedded model (an `openai_http` model on a
loopback upstream) with the limit it exercises set low, and waits, with a bounded timeout,
for the behaviour: a connection closed, a status, a file mode. None asserts a duration.
"""

from __future__ import annotations

import re
import resource
import socket
import stat
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import SOUVERAIN, Server, http
from upstreams import FaultServer

WAIT = 60  # seconds any bounded wait may take on a slow, shared machine


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultServer]:
    server = FaultServer()
    yield server
    server.stop()


def config(upstream: FaultServer, hardening: str = "", extra: str = "") -> str:
    """A gateway serving `up` (the fault server) and `gone` (nothing listens there)."""
    lines = "".join(f"\n  {line}" for line in hardening.strip().splitlines())
    return f"""
{"hardening:" + lines if lines else ""}
models:
  - name: up
    engine: openai_http
    base_url: http://127.0.0.1:{upstream.port}/v1
  - name: gone
    engine: openai_http
    base_url: http://127.0.0.1:{free_port()}/v1
{extra}"""


def say_hi(
    server: Server, model: str = "up", *, via=http, key: str | None = None, timeout: float | None = None, **body
) -> httpx.Response:
    """POST a one-word chat ("hi") for `model` through `via` (a client, or httpx itself)."""
    options = {} if timeout is None else {"timeout": timeout}
    return via.post(
        f"{server.url}/v1/chat/completions",
        headers=server.headers(key),
        json={"model": model, **body, "messages": [{"role": "user", "content": "hi"}]},
        **options,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=WAIT)


def closed_by_server(sock: socket.socket, trickle: bytes = b"", every: float = 0.2) -> bytes:
    """Send `trickle` one byte at a time (or nothing) until the server closes the
    connection; return what it sent before closing. Fails after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    received = b""
    if not trickle:  # just wait for the close
        sock.settimeout(WAIT)
        try:
            while data := sock.recv(65536):
                received += data
        except ConnectionResetError:
            pass
        except TimeoutError:
            raise AssertionError(f"the server kept the connection open for {WAIT} s") from None
        return received
    sock.setblocking(False)
    sent = 0
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
            if not data:
                return received
            received += data
        except BlockingIOError:
            pass
        except ConnectionResetError:
            return received
        try:
            sock.send(trickle[sent % len(trickle) : sent % len(trickle) + 1])
            sent += 1
        except (BrokenPipeError, ConnectionResetError):
            return received
        time.sleep(every)
    raise AssertionError(f"the server kept the connection open for {WAIT} s")


# -- connections that never finish a request ----------------------------------------


def test_silent_and_slow_clients_are_closed_and_do_not_lock_others_out(upstream, start_server) -> None:
    """With a low open-file limit, more silent connections than the limit would allow:
    the gateway caps them (503), closes every one at the header deadline, and serves."""
    low = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (320, 320))  # noqa: E731
    server = start_server(
        config(upstream, "header_timeout_s: 3\nbody_grace_s: 1\nbody_min_rate_bytes_s: 100"), preexec_fn=low
    )
    assert "serving at most 64 connections" in server.log.read_text()
    silent = [connect(server) for _ in range(400)]  # more than the gateway may open files
    answers = [closed_by_server(sock) for sock in silent]
    assert any(a.startswith(b"HTTP/1.1 503 ") for a in answers)  # those past the cap
    assert all(a == b"" or a.startswith(b"HTTP/1.1 503 ") for a in answers)
    for sock in silent:
        sock.close()

    slow_headers = connect(server)
    assert closed_by_server(slow_headers, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000) == b""
    slow_body = connect(server)
    slow_body.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + server.key.encode() + b"\r\nContent-Length: 100000\r\n\r\n{"
    )
    assert closed_by_server(slow_body, b" ") == b""
    assert http.get(f"{server.url}/healthz").status_code == 200
    assert "Too many open files" not in server.log.read_text()


def test_kept_alive_connection_is_closed_when_idle(upstream, start_server) -> None:
    server = start_server(config(upstream, "idle_timeout_s: 0.5"))
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = closed_by_server(sock)
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_header_size_and_count_are_bounded(upstream, start_server) -> None:
    server = start_server(config(upstream, "max_header_bytes: 4096\nmax_headers: 20"))
    for request in (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8192 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1024 * 1024),  # never finished
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(25)) + b"\r\n",
        b"GET /" + b"a" * 8192 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        sock = connect(server)
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we sent: the answer may already be waiting
        answer = closed_by_server(sock)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        sock.close()
    within = {f"X-{i}": "1" for i in range(15)}
    assert http.get(f"{server.url}/healthz", headers=within).status_code == 200
    # The same on a kept-alive connection's second request, its header sent in pieces.
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = b""
    while not first.endswith(b'{"status":"ok"}'):  # the whole answer: head and body may come apart
        part = sock.recv(65536)
        assert part, first
        first += part
    assert first.startswith(b"HTTP/1.1 200 ")
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
    for _ in range(5):  # just past the limit: all of it read when the 431 is sent
        sock.sendall(b"a" * 1024)
        time.sleep(0.05)
    assert closed_by_server(sock).startswith(b"HTTP/1.1 431 ")


# -- /metrics -------------------------------------------------------------------------


def test_metrics_labels_come_from_the_configuration(upstream, start_server) -> None:
    server = start_server(config(upstream, "metrics: open"))
    names = ["m" * (1024 * 1024)] + [f"no-such-model-{i}" for i in range(200)]
    with httpx.Client(timeout=WAIT) as client:
        for name in names:
            assert say_hi(server, name, via=client).status_code == 404
        assert say_hi(server, via=client).status_code == 200
        text = client.get(f"{server.url}/metrics").text
    assert "no-such-model" not in text and "mmmm" not in text
    assert 'souverain_requests_total{endpoint="chat",model="_unknown",status="404"} 201.0' in text
    assert 'souverain_requests_total{endpoint="chat",model="up",status="200"} 1.0' in text
    assert set(re.findall(r'model="([^"]*)"', text)) <= {"up", "gone", "_unknown", "-"}


def test_metrics_exposure_is_a_setting(upstream, start_server) -> None:
    closed = start_server(config(upstream))
    assert http.get(f"{closed.url}/metrics").status_code == 404
    keyed = start_server(config(upstream, "metrics: key"))
    assert http.get(f"{keyed.url}/metrics").status_code == 401
    inference = keyed.cli("keys", "create", "--name", "app").stdout.strip()
    assert http.get(f"{keyed.url}/metrics", headers=keyed.headers(inference)).status_code == 403
    scraper = keyed.cli("keys", "create", "--name", "prometheus", "--scope", "metrics").stdout.strip()
    response = http.get(f"{keyed.url}/metrics", headers=keyed.headers(scraper))
    assert response.status_code == 200 and "souverain_requests" in response.text


# -- the state directory ------------------------------------------------------------------


def test_state_files_are_private_in_an_open_directory(upstream, start_server, tmp_path) -> None:
    state = tmp_path / "open-state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    server = start_server(config(upstream), env={"SOUVERAIN_STATE_DIR": str(state)})
    assert say_hi(server).status_code == 200
    assert "is open to other users (mode 0755)" in server.log.read_text()
    made = [p for p in state.rglob("*") if p.is_file()]
    assert {"souverain.db", "ledger.db"} <= {p.name for p in made}
    for path in made:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path} is {oct(path.stat().st_mode)}"

    with pytest.raises(RuntimeError, match=r"exited with 2:(.|\n)*hardening.open_state_dir: refuse"):
        start_server(config(upstream, "open_state_dir: refuse"), env={"SOUVERAIN_STATE_DIR": str(state)}, ready=False)


# -- what clients are told ----------------------------------------------------------------


def test_upstream_failure_names_the_route_not_the_address(upstream, start_server) -> None:
    server = start_server(config(upstream))
    address = re.search(r"name: gone\n    engine: openai_http\n    base_url: (\S+)", server.config_path.read_text())
    assert address
    for stream in (False, True):
        response = say_hi(server, "gone", stream=stream)
        assert response.status_code == 502, response.text
        message = response.json()["error"]["message"]
        # `gone` has no route of its own: it is on the built-in `undeclared` one.
        assert "route 'undeclared'" in message and "127.0.0.1" not in message, message
    assert address.group(1).rstrip("/") in server.log.read_text()


def test_credentials_in_base_url_are_refused_at_check(tmp_path) -> None:
    path = tmp_path / "souverain.yaml"
    path.write_text("models:\n  - name: up\n    engine: openai_http\n    base_url: http://user:secret@127.0.0.1:9/v1\n")
    result = subprocess.run([*SOUVERAIN, "config", "check", str(path)], capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 2
    assert "models[0].base_url" in result.stderr and "api_key" in result.stderr
    assert "secret" not in result.stderr


# -- the ledger's auditors ------------------------------------------------------------------


def test_an_auditor_reads_only_its_own_tenants_entries(upstream, start_server) -> None:
    server = start_server(config(upstream))
    key = lambda *args: server.cli("keys", "create", "--name", "k", *args).stdout.strip()  # noqa: E731
    app_a, app_b = key("--tenant", "tenant-a"), key("--tenant", "tenant-b")
    auditor_a = key("--tenant", "tenant-a", "--scope", "auditor")
    auditor_all = key("--scope", "auditor:all")
    for app in (app_a, app_b, app_b):
        response = say_hi(server, key=app)
        assert response.status_code == 200, response.text

    def tenants(auditor: str) -> list[str]:
        response = http.get(
            f"{server.url}/ledger/entries", params={"start": 0, "end": 3}, headers=server.headers(auditor)
        )
        assert response.status_code == 200, response.text
        return sorted(e["entry"]["tenant"] for e in response.json()["entries"])

    assert tenants(auditor_a) == ["tenant-a"]
    assert tenants(auditor_all) == ["tenant-a", "tenant-b", "tenant-b"]
    bundle = http.get(f"{server.url}/ledger/tile/entries/000.p/3", headers=server.headers(auditor_a))
    assert bundle.status_code == 403  # a bundle holds every tenant's entries
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:  # served once the integrator has folded them in
        bundle = http.get(f"{server.url}/ledger/tile/entries/000.p/3", headers=server.headers(auditor_all))
        if bundle.status_code == 200:
            break
        assert bundle.status_code == 404, bundle.text
        time.sleep(0.2)
    assert bundle.status_code == 200


# -- clients that leave, or send too much ---------------------------------------------------


def test_client_leaving_a_non_streamed_request_logs_no_traceback(upstream, start_server) -> None:
    server = start_server(config(upstream))
    upstream.mode = "hang"
    try:
        with pytest.raises(httpx.ReadTimeout):
            say_hi(server, via=httpx, timeout=1)
        auditor = server.cli("keys", "create", "--name", "a", "--scope", "auditor:all").stdout.strip()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:  # the cancellation is recorded once noticed
            entries = http.get(f"{server.url}/ledger/entries", headers=server.headers(auditor)).json()["entries"]
            if any(e["entry"].get("decision") == "cancelled" for e in entries):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the disconnect was never recorded")
    finally:
        upstream.mode = "ok"
    log = server.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log


def test_over_long_body_gets_its_413_not_a_reset(upstream, start_server) -> None:
    """The client sends its whole body, then reads: it must be able to send it all (the
    gateway discards the rest) and then read the 413, with or without keep-alive."""
    server = start_server(config(upstream, extra="server:\n  max_body_bytes: 65536\n"))
    body = b'{"model": "up", "messages": [' + b" " * (8 * 1024 * 1024) + b"]}"
    chunked = (
        b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + 65536]), body[i : i + 65536]) for i in range(0, len(body), 65536))
        + b"0\r\n\r\n"
    )
    # `Connection: close` (urllib sends it, for one) is where closing at once reset.
    for connection in (b"keep-alive", b"close"):
        for framing, payload in ((b"Content-Length: %d" % len(body), body), (b"Transfer-Encoding: chunked", chunked)):
            sock = connect(server)
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer "
                + server.key.encode()
                + b"\r\nConnection: "
                + connection
                + b"\r\n"
                + framing
                + b"\r\n\r\n"
                + payload
            )
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
            assert b'"code":"request_too_large"' in answer or b"request_too_large" in sock.recv(65536)
            sock.close()
