"""Process plumbing shared by the benchmark scripts: start the mock upstream and the
gateway as separate processes on loopback, wait until they answer, stop them after.

Servers run in their own processes (never in the load generator's) so that each has its
own interpreter and event loop, as in production; on a 2-core machine they still share
the cores, which is part of what the numbers show.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SOUVERAIN = str(Path(PYTHON).with_name("souverain"))
_PORT_LINE = re.compile(rb"(?:listening on (?:http://127\.0\.0\.1:)?)(\d+)")


def _wait_port(proc: subprocess.Popen[bytes], what: str, timeout_s: float = 60.0) -> int:
    """Read the child's stdout until it prints the port it listens on."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    seen = b""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen += line
        match = _PORT_LINE.search(line)
        if match:
            # Keep draining so that a chatty child never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
            return int(match.group(1))
    proc.kill()
    raise RuntimeError(f"{what} did not start; it printed:\n{seen.decode(errors='replace')}")


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path | None = None, timeout_s: float = 120.0) -> None:
    """Poll a readiness URL until it answers 200 (models loaded); fail fast if the child died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise RuntimeError(f"the server behind {url} exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} was not ready within {timeout_s:.0f}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def mock_upstream() -> Iterator[int]:
    """Run bench/mock_upstream.py; yield its port."""
    proc = subprocess.Popen(
        [PYTHON, str(ROOT / "bench" / "mock_upstream.py"), "--port", "0"], stdout=subprocess.PIPE, cwd=ROOT
    )
    try:
        port = _wait_port(proc, "mock upstream")
        _wait_ready(f"http://127.0.0.1:{port}/health", proc)
        yield port
    finally:
        _stop(proc)


@dataclass(frozen=True)
class Gateway:
    port: int
    key: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"


def mock_config(upstream_port: int) -> str:
    return (
        "models:\n"
        "  - name: mock\n"
        "    engine: openai_http\n"
        f"    base_url: http://127.0.0.1:{upstream_port}/v1\n"
        "    flavor: openai\n"
    )


@contextlib.contextmanager
def gateway(config_yaml: str | None, command: list[str] | None = None) -> Iterator[Gateway]:
    """Run a gateway on a fresh state directory; yield its port and an API key.

    `command` defaults to `souverain serve`, the command users run. The key is made with
    `souverain keys create` beforehand, so every launcher (bench/gateway_server.py too)
    finds it in the same state directory. `config_yaml` None: the built-in defaults
    (the embedded model).
    """
    with tempfile.TemporaryDirectory(prefix="souverain-bench-") as tmp:
        env = {**os.environ, "SOUVERAIN_STATE_DIR": str(Path(tmp) / "state")}
        config_args: list[str] = []
        if config_yaml is not None:
            config_path = Path(tmp) / "souverain.yaml"
            config_path.write_text(config_yaml)
            config_args = ["--config", str(config_path)]
        key = subprocess.run(
            [SOUVERAIN, "keys", "create", "--name", "bench", *config_args],
            env=env, cwd=tmp, check=True, capture_output=True, text=True,
        ).stdout.strip()
        argv = (command or [SOUVERAIN, "serve"]) + [*config_args, "--port", "0"]
        log = Path(tmp) / "server.log"
        with log.open("wb") as stderr:
            proc = subprocess.Popen(argv, env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=stderr)
        try:
            port = _wait_port(proc, " ".join(argv[:3]))
            _wait_ready(f"http://127.0.0.1:{port}/readyz", proc, log)
            yield Gateway(port, key)
        finally:
            _stop(proc)
