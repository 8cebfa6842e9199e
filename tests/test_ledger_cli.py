"""`ledger export|verify|shred|key` as a user runs them (a process, exit codes, output)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import souverain_cli
from ledger_fixtures import entry, fill

from souverain.cli.ledger import add_parser, add_witness_parser
from souverain.ledger import RetentionConfig, SqliteStoreConfig, encode_entry
from souverain.ledger.tiles import decode_bundle, encode_bundle, tile_path


def cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return souverain_cli(tmp, "ledger", *args, module="souverain.ledger")


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A log in the default place (state dir, SQLite), as `souverain serve` leaves it."""
    fill(tmp_path / "state", SqliteStoreConfig(), [300, 300], retention=RetentionConfig(content=True), content=True)
    return tmp_path


def test_key_export_verify(state: Path) -> None:
    vkey = cli(state, "key").stdout.strip()
    assert vkey.startswith("souverain.local/ledger+")
    exported = cli(state, "export", "out")
    assert exported.returncode == 0, exported.stderr
    assert "tree size 600" in exported.stdout and (state / "out" / "checkpoint").is_file()
    ok = cli(state, "verify", "out", "--vkey", vkey)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: every entry is included in checkpoint 600" in ok.stdout
    (state / "log.vkey").write_text(vkey + "\n")
    each = cli(state, "verify", "out", "--vkey", "log.vkey", "--each", "--json")
    report = json.loads(each.stdout)
    assert each.returncode == 0 and report["ok"] and report["entries"] == 600 and report["checkpoints"] == 4
    live = cli(state, "verify")  # the configured store; warns that it trusts the stored key
    assert live.returncode == 0 and "trusting the key recorded in the store" in live.stderr
    again = cli(state, "export", "out")  # brings an export up to date: only partial tiles rewritten
    assert again.returncode == 0 and "2 tile(s) and 1 entry bundle(s) written" in again.stdout, again.stdout


def test_verify_names_the_tampered_entry(state: Path) -> None:
    vkey = cli(state, "key").stdout.strip()
    assert cli(state, "export", "out").returncode == 0
    path = state / "out" / tile_path("entries", 1)
    entries = decode_bundle(path.read_bytes())
    entries[44] = encode_entry(entry(9999))
    path.write_bytes(encode_bundle(entries))
    bad = cli(state, "verify", "out", "--vkey", vkey)
    assert bad.returncode == 1
    assert "FAILED" in bad.stdout and "[modified] entry 300:" in bad.stdout, bad.stdout
    wrong_key = cli(state, "verify", "out", "--vkey", vkey.replace(vkey[-8:], "AAAAAAA="))
    assert wrong_key.returncode in (1, 2)
    assert cli(state, "verify", "nothing-here").returncode == 2


def test_shred_needs_confirmation(state: Path) -> None:
    refused = cli(state, "shred", "bank")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    done = cli(state, "shred", "bank", "--yes")
    assert done.returncode == 0 and "destroyed 1 key(s)" in done.stdout, done.stdout + done.stderr
    again = cli(state, "shred", "bank", "--yes")
    assert again.returncode == 0 and "no keys left" in again.stdout
    assert cli(state, "verify").returncode == 0  # the tree is untouched


def test_progress_bar_on_a_terminal(
    state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_parser(sub)
    add_witness_parser(sub)
    monkeypatch.setenv("SOUVERAIN_STATE_DIR", str(state / "state"))
    monkeypatch.delenv("SOUVERAIN_CONFIG", raising=False)
    monkeypatch.chdir(state)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    args = parser.parse_args(["ledger", "verify"])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert "verifying" in captured.err and "OK:" in captured.out and "verifying" not in captured.out


def test_verify_against_a_receipt_held_elsewhere(state: Path) -> None:
    import asyncio

    from ledger_fixtures import open_ledger

    from souverain.ledger.checkpoint import Checkpoint, Receipt, sign_checkpoint

    ledger = open_ledger(state / "state", SqliteStoreConfig())

    async def receipt() -> str:
        text = await ledger.receipt(5)
        await ledger.stop()
        return text

    (state / "mine.tlog-proof").write_text(asyncio.run(receipt()))
    assert cli(state, "export", "out").returncode == 0
    ok = cli(state, "verify", "out", "--vkey", ledger.vkey, "--checkpoint", "mine.tlog-proof", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["checkpoints"] == 5  # 4 in the export + the receipt's
    # A receipt whose checkpoint the log signed but whose history is not the export's: a fork.
    forged = sign_checkpoint(Checkpoint(ledger.origin, 450, bytes(32)), ledger.signer)
    (state / "forged.tlog-proof").write_text(Receipt(5, (), forged).format())
    bad = cli(state, "verify", "out", "--vkey", ledger.vkey, "--checkpoint", "forged.tlog-proof")
    assert bad.returncode == 1 and "[fork]" in bad.stdout and "forged.tlog-proof" in bad.stdout, bad.stdout
