"""Tampering is detected and named: a modified, deleted, inserted or reordered entry, tiles
rewritten to match, a forged or altered checkpoint, in each store and in an export."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest
from ledger_fixtures import entry, fill

from souverain.ledger import decode_entry, encode_entry, merkle
from souverain.ledger.checkpoint import Checkpoint, sign_checkpoint
from souverain.ledger.export import export_log
from souverain.ledger.store import open_store
from souverain.ledger.tiles import TileBuilder, decode_bundle, encode_bundle, tile_path
from souverain.ledger.verify import DirectorySource, Report, StoreSource, verify

# Checkpoints at 0, 100, 250, 550 and 600; index 300 lies in bundle 1, between 250 and 550.
COUNTS = [100, 150, 300, 50]
TARGET = 300


def sql(store: Any, query: str, params: tuple = ()) -> list[Any]:
    if store.kind == "postgres":
        query = query.replace("?", "%s")
    cur = store._db.execute(query, params)
    return cur.fetchall() if cur.description else []


def kinds(report: Report) -> set[tuple[str, int | None]]:
    return {(p.kind, p.index) for p in report.problems}


@pytest.fixture
def log(tmp_path: Path, store_config: Any) -> Any:
    ledger = fill(tmp_path, store_config, COUNTS)
    store = open_store(store_config, tmp_path)
    report = verify(StoreSource(store), ledger.verifier)
    assert report.ok and report.size == 600 and report.checkpoints == 5, report  # the control
    yield ledger, store
    store.close()


def forged(index: int) -> bytes:
    return encode_entry(msgspec.structs.replace(entry(index), route="route-forged"))


def test_modified_entry(log: Any) -> None:
    ledger, store = log
    data = sql(store, "SELECT data FROM ledger_entries WHERE idx = ?", (TARGET,))[0][0]
    changed = msgspec.structs.replace(decode_entry(bytes(data)), decision="refused")
    sql(store, "UPDATE ledger_entries SET data = ? WHERE idx = ?", (encode_entry(changed), TARGET))
    report = verify(StoreSource(store), ledger.verifier)
    assert ("modified", TARGET) in kinds(report) and not report.ok
    assert all(p.index == TARGET for p in report.problems), report.problems


def test_deleted_entry(log: Any) -> None:
    ledger, store = log
    sql(store, "DELETE FROM ledger_entries WHERE idx = ?", (TARGET,))
    report = verify(StoreSource(store), ledger.verifier)
    assert kinds(report) == {("deleted", TARGET)}, report.problems


def test_deleted_entry_with_the_rest_renumbered(log: Any) -> None:
    ledger, store = log
    sql(store, "DELETE FROM ledger_entries WHERE idx = ?", (TARGET,))
    sql(store, "UPDATE ledger_entries SET idx = -idx + 1 WHERE idx > ?", (TARGET,))
    sql(store, "UPDATE ledger_entries SET idx = -idx WHERE idx < 0")
    report = verify(StoreSource(store), ledger.verifier)
    assert ("deleted", TARGET) in kinds(report), report.problems


def test_inserted_entry(log: Any) -> None:
    ledger, store = log
    sql(store, "UPDATE ledger_entries SET idx = -idx - 1 WHERE idx >= ?", (TARGET,))
    sql(store, "UPDATE ledger_entries SET idx = -idx WHERE idx < 0")
    sql(store, "INSERT INTO ledger_entries (idx, data) VALUES (?, ?)", (TARGET, forged(TARGET)))
    report = verify(StoreSource(store), ledger.verifier)
    assert ("inserted", TARGET) in kinds(report), report.problems


def test_reordered_entries(log: Any) -> None:
    ledger, store = log
    a = sql(store, "SELECT data FROM ledger_entries WHERE idx = ?", (TARGET,))[0][0]
    b = sql(store, "SELECT data FROM ledger_entries WHERE idx = ?", (TARGET + 5,))[0][0]
    sql(store, "UPDATE ledger_entries SET data = ? WHERE idx = ?", (b, TARGET))
    sql(store, "UPDATE ledger_entries SET data = ? WHERE idx = ?", (a, TARGET + 5))
    report = verify(StoreSource(store), ledger.verifier)
    assert kinds(report) == {("reordered", TARGET), ("reordered", TARGET + 5)}, report.problems


def test_tiles_rewritten_to_match_still_caught_by_signed_checkpoints(log: Any) -> None:
    ledger, store = log
    sql(store, "UPDATE ledger_entries SET data = ? WHERE idx = ?", (forged(TARGET), TARGET))
    leaves = [merkle.leaf_hash(bytes(d)) for (d,) in sql(store, "SELECT data FROM ledger_entries ORDER BY idx")]
    tiles = TileBuilder(0, lambda level, index: None).append(leaves)
    sql(store, "DELETE FROM ledger_tiles")
    for (level, index), data in tiles.items():
        sql(store, "INSERT INTO ledger_tiles (level, idx, data) VALUES (?, ?, ?)", (level, index, data))
    report = verify(StoreSource(store), ledger.verifier)
    ranges = [p for p in report.problems if p.kind == "range"]
    assert ranges and ranges[0].index == 250 and "size 550" in ranges[0].message, report.problems
    assert any(p.kind == "tile" for p in report.problems)


def test_forked_checkpoint_cannot_both_be_true(log: Any) -> None:
    ledger, store = log
    # The log's own key signs a checkpoint at size 400 with a root the log never had.
    fork = sign_checkpoint(Checkpoint(ledger.origin, 400, merkle.leaf_hash(b"fork")), ledger.signer)
    sql(store, "INSERT INTO ledger_checkpoints (size, note, created) VALUES (?, ?, ?)", (400, fork, 0.0))
    report = verify(StoreSource(store), ledger.verifier)
    forks = [p for p in report.problems if p.kind == "fork"]
    assert forks and "size 400" in forks[0].message and "cannot both be true" in forks[0].message, report.problems
    # The same size with two roots, one arriving from outside (e.g. a receipt or a witness).
    twin = sign_checkpoint(Checkpoint(ledger.origin, 550, merkle.leaf_hash(b"twin")), ledger.signer)
    sql(store, "DELETE FROM ledger_checkpoints WHERE size = 400")
    report = verify(StoreSource(store), ledger.verifier, extra_checkpoints=[("receipt.tlog-proof", twin)])
    assert any(p.kind == "fork" and "two different roots" in p.message for p in report.problems), report.problems


def test_empty_checkpoint_with_a_root(log: Any) -> None:
    ledger, store = log
    bogus = sign_checkpoint(Checkpoint(ledger.origin, 0, merkle.leaf_hash(b"x")), ledger.signer)
    sql(store, "UPDATE ledger_checkpoints SET note = ? WHERE size = 0", (bogus,))
    report = verify(StoreSource(store), ledger.verifier)
    assert kinds(report) == {("fork", 0)}, report.problems


def test_altered_checkpoint_signature(log: Any) -> None:
    ledger, store = log
    (note,) = sql(store, "SELECT note FROM ledger_checkpoints WHERE size = ?", (250,))[0]
    sql(store, "UPDATE ledger_checkpoints SET note = ? WHERE size = ?", (note.replace("\n250\n", "\n251\n"), 250))
    report = verify(StoreSource(store), ledger.verifier)
    assert any(p.kind == "signature" and "250" in p.message for p in report.problems), report.problems


def test_another_key_verifies_nothing(log: Any, tmp_path: Path) -> None:
    from test_ledger_notes import signer

    ledger, store = log
    report = verify(StoreSource(store), signer(ledger.origin).verifier())
    assert not report.ok and report.checkpoints == 0


# -- the same attacks on an exported directory ------------------------------------------------


@pytest.fixture
def exported(tmp_path: Path) -> Any:
    from souverain.ledger import SqliteStoreConfig

    config = SqliteStoreConfig(path=str(tmp_path / "ledger.db"))
    ledger = fill(tmp_path, config, COUNTS)
    store = open_store(config, tmp_path)
    out = tmp_path / "export"
    export_log(store, out, vkey=ledger.vkey)
    store.close()
    assert verify(DirectorySource(out), ledger.verifier).ok
    return ledger, out


def edit_bundle(out: Path, index: int, edit: Any) -> None:
    path = out / tile_path("entries", index)
    entries = decode_bundle(path.read_bytes())
    path.write_bytes(encode_bundle(edit(entries)))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda e: e[:44] + [forged(TARGET)] + e[45:], {("modified", TARGET)}),
        (lambda e: e[:44] + e[45:], {("deleted", TARGET)}),
        (lambda e: e[:44] + [forged(TARGET)] + e[44:], {("inserted", TARGET)}),
        (lambda e: e[:44] + [e[45], e[44]] + e[46:], {("reordered", TARGET), ("reordered", TARGET + 1)}),
    ],
    ids=["modified", "deleted", "inserted", "reordered"],
)
def test_export_tampering(exported: Any, edit: Any, expected: set[tuple[str, int]]) -> None:
    ledger, out = exported
    edit_bundle(out, 1, edit)  # bundle 1 holds entries 256..511: TARGET is its 44th
    report = verify(DirectorySource(out), ledger.verifier)
    assert expected <= kinds(report) and not report.ok, report.problems


def test_export_missing_bundle_and_forged_history(exported: Any) -> None:
    ledger, out = exported
    fork = sign_checkpoint(Checkpoint(ledger.origin, 120, merkle.leaf_hash(b"fork")), ledger.signer)
    (out / "checkpoints" / "120").write_text(fork)
    report = verify(DirectorySource(out), ledger.verifier)
    assert any(p.kind == "fork" and "size 120" in p.message for p in report.problems), report.problems
    (out / "checkpoints" / "120").unlink()
    shutil.move(out / tile_path("entries", 2, 88), out / "elsewhere")  # the partial last bundle
    report = verify(DirectorySource(out), ledger.verifier)
    assert ("missing", 512) in kinds(report), report.problems
