"""Crash safety: kill -9 a gateway-like process while it sequences and integrates under load.

After each kill: every entry whose append had returned is in the store at the index it was
given, and once integration catches up the whole log verifies. Two rounds per store, so the
second process also has to recover a tree its predecessor may have died integrating.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
from ledger_fixtures import open_ledger

from souverain.ledger import LedgerConfig, decode_entry
from souverain.ledger.store import open_store
from souverain.ledger.verify import StoreSource, verify

CHILD = r"""
import asyncio, sys, msgspec
from souverain.ledger import Ledger, LedgerConfig
from ledger_fixtures import entry
config = msgspec.json.decode(sys.argv[1].encode(), type=LedgerConfig)
acks = open(sys.argv[3], "a", buffering=1)

async def client(ledger, worker):
    n = 0
    while True:
        e = entry(n)
        e = msgspec.structs.replace(e, route=f"{sys.argv[4]}-{worker}-{n}")
        index = await ledger.append(e, request=b"prompt", response=b"answer")
        acks.write(f"{index} {e.route}\n")  # only after the append returned: durable
        n += 1

async def main():
    ledger = Ledger.open(config, state_dir=sys.argv[2])
    await ledger.start()
    await asyncio.gather(*(client(ledger, w) for w in range(32)))

asyncio.run(main())
"""


def run_and_kill(config: LedgerConfig, tmp: Path, acks: Path, round_name: str, target: int) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, msgspec.json.encode(config).decode(), str(tmp), str(acks), round_name],
        env=env,
        stderr=subprocess.PIPE,
    )
    start = len(acks.read_text().splitlines()) if acks.exists() else 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"load process exited early: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            if acks.exists() and len(acks.read_text().splitlines()) - start >= target:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the load process acknowledged too few entries in 60 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()  # type: ignore[union-attr]


def acknowledged(acks: Path) -> dict[int, str]:
    text = acks.read_text()
    lines = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]  # a torn last line
    out: dict[int, str] = {}
    for line in lines:
        index, route = line.split(" ")
        assert int(index) not in out, f"index {index} was handed out twice"
        out[int(index)] = route
    return out


def test_kill_9_loses_no_acknowledged_entry(tmp_path: Path, store_config: Any) -> None:
    config = LedgerConfig(store=store_config, checkpoint_interval_s=0.02)
    acks = tmp_path / "acks.txt"
    for round_name in ("first", "second"):
        run_and_kill(config, tmp_path, acks, round_name, target=600)
        promised = acknowledged(acks)
        store = open_store(store_config, tmp_path)
        try:
            rows = dict(store.read_entries(0, 10**9))
            for index, route in promised.items():
                assert index in rows, f"acknowledged entry {index} is gone after kill -9"
                assert decode_entry(rows[index]).route == route, f"entry {index} is not the one acknowledged"
            assert sorted(rows) == list(range(len(rows)))  # no gaps, even among unacknowledged ones
        finally:
            store.close()

    async def catch_up() -> int:
        ledger = open_ledger(tmp_path, store_config)
        deadline = time.monotonic() + 30
        size = await ledger.integrate()
        while size is None and time.monotonic() < deadline:  # the dead process's lock is let go
            await asyncio.sleep(0.1)
            size = await ledger.integrate()
        await ledger.stop()
        assert size is not None, "the integrator lock was never released"
        return size

    size = asyncio.run(catch_up())
    store = open_store(store_config, tmp_path)
    try:
        assert size == store.sequenced_size() >= 1200
        report = verify(StoreSource(store), open_ledger(tmp_path, store_config).verifier)
        assert report.ok and report.size == size, report.problems
        assert report.checkpoints > 2  # the killed processes published checkpoints as they went
    finally:
        store.close()
