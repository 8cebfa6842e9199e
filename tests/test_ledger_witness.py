"""The tlog-witness: every status the spec names, atomic updates, and a running witness
cosigning the ledger's checkpoints so that an offline verifier can require a quorum."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ledger_fixtures import entry, open_ledger
from test_ledger_notes import cosigner, signer

from souverain.ledger import SqliteStoreConfig, WitnessConfig, merkle, open_checkpoint
from souverain.ledger.checkpoint import Checkpoint, sign_checkpoint
from souverain.ledger.note import b64, parse_signature_lines, verifier_from_vkey
from souverain.ledger.store import open_store
from souverain.ledger.verify import StoreSource, verify
from souverain.ledger.witness import SIZE_TYPE, Witness


class Log:
    """A log in memory that signs checkpoints and makes proofs."""

    def __init__(self, name: str = "log.example/w") -> None:
        self.signer = signer(name)
        self.tree = merkle.MemoryTree()

    def grow(self, n: int) -> None:
        for _ in range(n):
            self.tree.append(f"leaf {self.tree.size}".encode())

    def checkpoint(self, size: int | None = None, root: bytes | None = None) -> str:
        size = self.tree.size if size is None else size
        root = root if root is not None else self.tree.root(size)
        return sign_checkpoint(Checkpoint(self.signer.name, size, root), self.signer)

    def body(self, old: int, note: str, proof: list[bytes] | None = None) -> bytes:
        if proof is None:
            proof = self.tree.consistency_proof(old) if 0 < old < self.tree.size else []
        return ("".join(f"{line}\n" for line in [f"old {old}", *(b64(h) for h in proof)]) + "\n" + note).encode()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Log, Any, Witness]]:
    log = Log()
    w = cosigner("witness.example/w1", now=1700000000)
    witness = Witness(w, {log.signer.name: [log.signer.verifier()]}, tmp_path / "witness.db")
    yield log, w, witness
    witness.close()


def test_cosigns_a_first_checkpoint_and_then_consistent_ones(setup: Any, tmp_path: Path) -> None:
    log, w, witness = setup
    log.grow(10)
    first = witness.add_checkpoint(log.body(0, log.checkpoint()))
    assert first.status == 200 and first.body.startswith("\u2014 witness.example/w1 ")
    (sig,) = parse_signature_lines(first.body)
    text = log.checkpoint().split("\n\n")[0] + "\n"
    assert w.verifier().verify(text.encode(), sig.signature)
    log.grow(7)
    assert witness.add_checkpoint(log.body(10, log.checkpoint())).status == 200
    again = witness.add_checkpoint(log.body(17, log.checkpoint()))  # same size, same root
    assert again.status == 200
    stored = witness.latest(hashlib.sha256(log.signer.name.encode()).hexdigest())
    assert stored is not None
    opened = open_checkpoint(stored, log.signer.verifier(), witnesses=[w.verifier()], quorum=1)
    assert opened.size == 17
    assert witness.latest("00" * 32) is None
    # State survives a restart of the witness.
    reborn = Witness(w, witness.logs, tmp_path / "witness.db")
    conflict = reborn.add_checkpoint(log.body(10, log.checkpoint()))
    assert (conflict.status, conflict.body, conflict.content_type) == (409, "17\n", SIZE_TYPE)
    reborn.close()


def test_every_refusal(setup: Any) -> None:
    log, _, witness = setup
    log.grow(8)
    other = Log("stranger.example/log")
    assert witness.add_checkpoint(other.body(0, other.checkpoint())).status == 404
    impostor = sign_checkpoint(Checkpoint(log.signer.name, 8, log.tree.root()), signer(log.signer.name))
    assert witness.add_checkpoint(log.body(0, impostor)).status == 403
    forged = log.checkpoint().replace("\n8\n", "\n9\n", 1)
    assert witness.add_checkpoint(log.body(0, forged)).status == 403
    assert witness.add_checkpoint(log.body(9, log.checkpoint(), proof=[])).status == 400
    assert witness.add_checkpoint(b"old 01\n\n" + log.checkpoint().encode()).status == 400
    assert witness.add_checkpoint(b"garbage").status == 400
    assert witness.add_checkpoint(log.body(0, log.checkpoint(0, merkle.leaf_hash(b"x")))).status == 422
    assert witness.add_checkpoint(log.body(0, log.checkpoint(), proof=[bytes(32)])).status == 422
    assert witness.add_checkpoint(log.body(3, log.checkpoint())).status == 409
    assert witness.add_checkpoint(log.body(0, log.checkpoint(4))).status == 200
    log.grow(4)
    bad_proof = log.tree.consistency_proof(4)
    bad_proof[0] = bytes(32)
    assert witness.add_checkpoint(log.body(4, log.checkpoint(), proof=bad_proof)).status == 422
    fork = log.checkpoint(4, merkle.leaf_hash(b"fork"))
    assert witness.add_checkpoint(log.body(4, fork)).status == 422
    assert witness.add_checkpoint(log.body(4, log.checkpoint())).status == 200


def test_concurrent_submissions_cannot_roll_the_witness_back(setup: Any) -> None:
    log, _, witness = setup
    log.grow(5)
    assert witness.add_checkpoint(log.body(0, log.checkpoint())).status == 200
    log.grow(5)
    bodies = [log.body(5, log.checkpoint(6 + i), proof=log.tree.consistency_proof(5, 6 + i)) for i in range(5)]
    statuses: list[int] = []

    def submit(body: bytes) -> None:
        statuses.append(witness.add_checkpoint(body).status)

    threads = [threading.Thread(target=submit, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 409, 409, 409, 409]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_running_witness_cosigns_the_ledger(tmp_path: Path) -> None:
    store = SqliteStoreConfig(path=str(tmp_path / "ledger.db"))
    ledger = open_ledger(tmp_path, store)
    port = free_port()
    cmd = [sys.executable, "-m", "souverain.ledger", "witness"]
    common = ["--name", "witness.test/w1", "--state", str(tmp_path / "witness")]
    wkey = subprocess.run([*cmd, "key", *common], capture_output=True, text=True, check=True).stdout.strip()
    proc = subprocess.Popen(
        [*cmd, "serve", *common, "--log", ledger.vkey, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/{'0' * 64}/checkpoint", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "witness did not start"
                time.sleep(0.1)
        config = WitnessConfig(url=url, vkey=wkey)
        witnessed = open_ledger(tmp_path, store, witnesses=[config])

        async def go() -> None:
            for round_ in range(3):
                await asyncio.gather(*(witnessed.append(entry(round_ * 100 + i)) for i in range(100)))
                await witnessed.integrate()
            await witnessed.stop()

        asyncio.run(go())
        w = verifier_from_vkey(wkey)
        source = open_store(store, tmp_path)
        try:
            report = verify(StoreSource(source), ledger.verifier, witnesses=[w], quorum=1)
            assert report.ok and report.size == 300, report.problems
            assert report.cosigned["witness.test/w1"] == 4  # sizes 0, 100, 200, 300
        finally:
            source.close()
        served = httpx.get(f"{url}/{hashlib.sha256(ledger.origin.encode()).hexdigest()}/checkpoint").text
        assert open_checkpoint(served, ledger.verifier, witnesses=[w], quorum=1).size == 300
        # A checkpoint the log never published (a fork) is refused by the running witness.
        fork = sign_checkpoint(Checkpoint(ledger.origin, 300, merkle.leaf_hash(b"fork")), ledger.signer)
        reply = httpx.post(f"{url}/add-checkpoint", content=f"old 300\n\n{fork}".encode())
        assert reply.status_code == 422
    finally:
        proc.terminate()
        out = proc.communicate(timeout=15)[0]
    assert re.search(r"cosigner key witness\.test/w1\+[0-9a-f]{8}\+", out), out
