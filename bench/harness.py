"""Process plumbing shared by the benchmark scripts: start the mock upstream and the
gateway as separate processes on loopback, wait until they answer, stop them after.

Servers run in their own processes (never in the load generator's) so that each has its
own interpreter and event loop, as in production; on a 2-core machine they still share
the cores, which is part of what the numbers show.
"""

from __future__ import annotations

import argparse
import contextlib
import json
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
    pid: int = 0

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
        argv = (command or [SOUVERAIN, "serve"]) + [*config_args, "--port", "0"]
        with serving(tmp, env, config_args, argv, " ".join(argv[:3])) as (port, key, proc):
            yield Gateway(port, key, proc.pid)


@contextlib.contextmanager
def serving(
    tmp: str, env: dict[str, str], config_args: list[str], argv: list[str], what: str
) -> Iterator[tuple[int, str, subprocess.Popen[bytes]]]:
    """Make an API key with `souverain keys create` in `tmp`'s state, start `argv` there
    and wait until its /readyz answers; yield (port, key, process); stop it on exit."""
    key = subprocess.run(
        [SOUVERAIN, "keys", "create", "--name", "bench", *config_args],
        env=env,
        cwd=tmp,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    log = Path(tmp) / "server.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(argv, env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=stderr)
    try:
        port = _wait_port(proc, what)
        _wait_ready(f"http://127.0.0.1:{port}/readyz", proc, log)
        yield port, key, proc
    finally:
        _stop(proc)


def report(result: object, json_path: str | None, text: str) -> int:
    """A benchmark's last step: the raw result written where --json asks, the readable
    one printed; the exit status (0)."""
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2))
    print(text)
    return 0


# -- background load -------------------------------------------------------------------
# The machine is shared (other engineers run tests and benchmarks on it). Rather than
# pretend it is quiet, every measurement records how much CPU the rest of the machine
# used meanwhile, and the suites wait (briefly, within a budget) for a quiet moment.

_TICK = os.sysconf("SC_CLK_TCK")


def _busy_ticks() -> int:
    """CPU ticks the whole machine spent busy (all but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4]


def _our_ticks() -> int:
    """CPU ticks used by this process and every process under it (servers, workers)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                after = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(after[1])
        ticks[int(entry)] = int(after[11]) + int(after[12])  # utime + stime
    ours = {os.getpid()}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in ours and pid not in ours:
                ours.add(pid)
                grew = True
    return sum(ticks.get(pid, 0) for pid in ours)


class OtherLoad:
    """Average cores used by processes outside this benchmark during a `with` block."""

    def __enter__(self) -> OtherLoad:
        self._t, self._busy, self._ours = time.monotonic(), _busy_ticks(), _our_ticks()
        self.cores = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = time.monotonic() - self._t
        others = (_busy_ticks() - self._busy) - (_our_ticks() - self._ours)
        self.cores = max(0.0, others / _TICK / elapsed) if elapsed > 0 else 0.0


def add_quiet_budget(parser: argparse.ArgumentParser, default: float) -> None:
    """The `--quiet-budget` option every suite that waits for a quiet machine takes."""
    parser.add_argument(
        "--quiet-budget",
        type=float,
        default=default,
        help="seconds the run may wait, in all, for the rest of the machine to go quiet",
    )


class QuietWaiter:
    """Wait for moments when the rest of the machine uses less than `threshold` cores,
    spending at most `budget_s` waiting over the whole suite (so runs stay bounded)."""

    def __init__(self, budget_s: float, threshold: float = 0.2) -> None:
        self.budget_s, self.threshold, self.waited_s = budget_s, threshold, 0.0

    def wait(self) -> float:
        """Block until a quiet half-second (or the budget is spent); return the last reading."""
        while True:
            with OtherLoad() as load:
                time.sleep(0.5)
            if load.cores < self.threshold or self.waited_s >= self.budget_s:
                return load.cores
            self.waited_s += 0.5
