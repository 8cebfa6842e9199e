"""The Ledger API on both stores: durable sequencing in batches, integration, checkpoints,
proofs, receipts, the integrator lock, and the refusals that keep the tree honest."""

from __future__ import annotations

import asyncio
import multiprocessing
import secrets
from pathlib import Path
from typing import Any

import msgspec
import pytest
from ledger_fixtures import entry, fill, open_ledger

from souverain.ledger import (
    Entry,
    EntryError,
    Ledger,
    LedgerConfig,
    LedgerError,
    NotFoundError,
    RetentionConfig,
    decode_entry,
    merkle,
    open_checkpoint,
    verify_receipt,
)
from souverain.ledger.checkpoint import Checkpoint, sign_checkpoint
from souverain.ledger.integrator import Integrator, IntegrityError
from souverain.ledger.store import StoreConflict, open_store


def test_appends_are_durable_contiguous_and_batched(tmp_path: Path, store_config: Any) -> None:
    async def go() -> tuple[list[int], int]:
        ledger = open_ledger(tmp_path, store_config)
        indexes = list(await asyncio.gather(*(ledger.append(entry(i)) for i in range(500))))
        batches = ledger._sequencer.batches
        await ledger.stop()
        return indexes, batches

    indexes, batches = asyncio.run(go())
    assert sorted(indexes) == list(range(500))
    assert batches < 500  # concurrent appends shared transactions
    # Durable: a fresh connection (another process would use one) sees every entry, and
    # each index holds the entry whose append returned it.
    store = open_store(store_config, tmp_path)
    try:
        rows = store.read_entries(0, 1000)
        assert [i for i, _ in rows] == list(range(500))
        routes = {i: decode_entry(data).route for i, data in rows}
        assert sorted(routes.values()) == sorted(f"route-{i}" for i in range(500))
    finally:
        store.close()


def test_entry_bytes_hold_no_content(tmp_path: Path, store_config: Any) -> None:
    secret_prompt = b"My IBAN is DE89370400440532013000, call me on +49 30 1234567"

    async def go() -> tuple[int, list[tuple[int, bytes]]]:
        ledger = open_ledger(tmp_path, store_config)
        index = await ledger.append(entry(1), request=secret_prompt, response=b"Noted, Mr Mueller.")
        rows = await ledger.entries(0, 10)
        await ledger.stop()
        return index, rows

    index, rows = asyncio.run(go())
    data = rows[index][1]
    for fragment in (b"DE89", b"1234567", b"Mueller", b"IBAN is"):
        assert fragment not in data
    decoded = decode_entry(data)
    assert len(decoded.request_hmac) == 64 and len(decoded.response_hmac) == 64
    assert decoded.found == {"IBAN": 1, "EMAIL": 1}  # types and counts only
    # Content retention is off by default: nothing of the request is stored anywhere.
    store = open_store(store_config, tmp_path)
    try:
        assert store.read_content(index) is None
    finally:
        store.close()


def test_invalid_entry_fails_alone(tmp_path: Path, store_config: Any) -> None:
    async def go() -> list[Any]:
        ledger = open_ledger(tmp_path, store_config)
        bad = [
            msgspec.structs.replace(entry(0), tenant=""),
            msgspec.structs.replace(entry(0), found={"an email: a@b.c": 1}),
            msgspec.structs.replace(entry(0), reasons=["x" * 1000]),
            msgspec.structs.replace(entry(0), request_hmac="not hex"),
        ]
        results = await asyncio.gather(
            ledger.append(entry(1)), *(ledger.append(b) for b in bad), ledger.append(entry(2)), return_exceptions=True
        )
        await ledger.stop()
        return results

    results = asyncio.run(go())
    assert sorted(results[:1] + results[-1:]) == [0, 1]
    assert all(isinstance(r, EntryError) for r in results[1:-1]), results


def test_integration_publishes_verifiable_checkpoints_and_proofs(tmp_path: Path, store_config: Any) -> None:
    async def go() -> None:
        ledger = open_ledger(tmp_path, store_config)
        with pytest.raises(NotFoundError):
            await ledger.checkpoint()
        await ledger.integrate()
        empty = open_checkpoint(await ledger.checkpoint(), ledger.verifier)
        assert empty.size == 0 and empty.root == merkle.EMPTY_ROOT
        first = await asyncio.gather(*(ledger.append(entry(i)) for i in range(300)))
        with pytest.raises(NotFoundError):
            await ledger.receipt(first[0])  # durable, but not yet in a checkpoint
        assert await ledger.integrate() == 300
        cp300 = open_checkpoint(await ledger.checkpoint(), ledger.verifier)
        await asyncio.gather(*(ledger.append(entry(i)) for i in range(300, 777)))
        assert await ledger.integrate() == 777
        cp777 = open_checkpoint(await ledger.checkpoint(), ledger.verifier)
        rows = await ledger.entries(0, 777)
        reference = merkle.MemoryTree()
        for _, data in rows:
            reference.append(data)
        assert cp300.root == reference.root(300) and cp777.root == reference.root(777)
        for index in (0, 255, 256, 299, 776):
            merkle.verify_inclusion(
                index, 777, merkle.leaf_hash(rows[index][1]), await ledger.inclusion_proof(index), cp777.root
            )
            receipt = await ledger.receipt(index)
            assert verify_receipt(receipt, rows[index][1], ledger.verifier).size == 777
        merkle.verify_inclusion(5, 300, merkle.leaf_hash(rows[5][1]), await ledger.inclusion_proof(5, 300), cp300.root)
        merkle.verify_consistency(300, 777, cp300.root, cp777.root, await ledger.consistency_proof(300))
        with pytest.raises(NotFoundError):
            await ledger.inclusion_proof(777)
        with pytest.raises(NotFoundError):
            await ledger.consistency_proof(10, 778)
        # The tiles served are the tree's: level 0 holds the leaf hashes.
        tile = await ledger.tile(0, 0, 256)
        assert tile == reference.leaf_hashes()[: 256 * 32]
        assert await ledger.tile(1, 0, 3) == b"".join(reference.node(8, i) for i in range(3))
        with pytest.raises(NotFoundError):
            await ledger.tile(1, 0, 4)
        await ledger.stop()

    asyncio.run(go())


def test_integrator_task_checkpoints_within_the_interval(tmp_path: Path, store_config: Any) -> None:
    async def go() -> None:
        ledger = open_ledger(tmp_path, store_config, checkpoint_interval_s=0.05)
        await ledger.start()
        index = await ledger.append(entry(0))
        for _ in range(200):  # bounded wait; the assertion is about behaviour, not speed
            try:
                receipt = await ledger.receipt(index)
                break
            except NotFoundError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("no checkpoint covered the entry")
        data = (await ledger.entries(index, index + 1))[0][1]
        verify_receipt(receipt, data, ledger.verifier)
        await ledger.append(entry(1))
        await ledger.stop()  # a last integration round covers what was appended
        store = open_store(store_config, tmp_path)
        try:
            assert store.tree_size() == 2
        finally:
            store.close()

    asyncio.run(go())


def test_one_integrator_at_a_time(tmp_path: Path, store_config: Any) -> None:
    fill(tmp_path, store_config, [10])
    a, b = open_store(store_config, tmp_path), open_store(store_config, tmp_path)
    try:
        assert a.try_lock_integrator()
        assert not b.try_lock_integrator()
        a.close()  # or its process died: the lock goes with the connection
        assert b.try_lock_integrator()
    finally:
        b.close()


def test_stale_integrator_cannot_publish(tmp_path: Path, store_config: Any) -> None:
    ledger = fill(tmp_path, store_config, [5])
    one, two = open_store(store_config, tmp_path), open_store(store_config, tmp_path)
    try:
        first = Integrator(one, ledger.signer, ledger.origin)
        second = Integrator(two, ledger.signer, ledger.origin)
        one.sequence([b"extra-1"], [None])
        assert first.step() == 6
        # `second` read size 5 earlier: its publish of 5 -> 6 must be refused.
        with pytest.raises(StoreConflict):
            two.publish(5, 6, {}, sign_checkpoint(Checkpoint(ledger.origin, 6, bytes(32)), ledger.signer))
        one.sequence([b"extra-2"], [None])
        assert second.step() == 7  # it re-reads the tree and carries on correctly
        reference = merkle.MemoryTree()
        for _, data in one.read_entries(0, 7):
            reference.append(data)
        assert open_checkpoint(one.latest_checkpoint()[1], ledger.verifier).root == reference.root()  # type: ignore[index]
    finally:
        one.close()
        two.close()


def test_integrator_refuses_to_sign_over_a_gap(tmp_path: Path, store_config: Any) -> None:
    ledger = fill(tmp_path, store_config, [20])
    store = open_store(store_config, tmp_path)
    try:
        store.sequence([b"a", b"b", b"c"], [None] * 3)
        _delete_entry(store, 21)
        with pytest.raises(IntegrityError, match="entry 21 is missing"):
            Integrator(store, ledger.signer, ledger.origin).step()
        assert store.tree_size() == 20
    finally:
        store.close()


def test_store_refuses_another_log(tmp_path: Path, store_config: Any) -> None:
    fill(tmp_path, store_config, [1])
    with pytest.raises(LedgerError, match="Refusing to mix two logs"):
        Ledger.open(LedgerConfig(store=store_config, origin="other.example/log"), state_dir=tmp_path)
    with pytest.raises(LedgerError):
        Ledger.open(LedgerConfig(store=store_config, signing_key="another-key"), state_dir=tmp_path)


def _delete_entry(store: Any, index: int) -> None:
    if store.kind == "sqlite":
        store._db.execute("DELETE FROM ledger_entries WHERE idx = ?", (index,))
    else:
        store._db.execute("DELETE FROM ledger_entries WHERE idx = %s", (index,))


def _sequence_in_process(store_config: Any, tmp: str, worker: int, count: int, queue: Any) -> None:
    async def go() -> list[int]:
        ledger = Ledger.open(LedgerConfig(store=store_config), state_dir=tmp)
        out = list(await asyncio.gather(*(ledger.append(entry(worker * 1000 + i)) for i in range(count))))
        await ledger.stop()
        return out

    queue.put(asyncio.run(go()))


def test_several_processes_sequence_into_one_store(tmp_path: Path, store_config: Any) -> None:
    fill(tmp_path, store_config, [1])  # creates the keys and the store first
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_sequence_in_process, args=(store_config, str(tmp_path), w, 150, queue)) for w in (1, 2, 3)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    indexes = sorted(i for r in results for i in r)
    assert indexes == list(range(1, 451))  # gapless and unique across processes

    async def integrate() -> None:
        ledger = open_ledger(tmp_path, store_config)
        assert await ledger.integrate() == 451
        await ledger.stop()

    asyncio.run(integrate())


def test_connections_lost_to_a_database_restart_are_replaced(tmp_path: Path, pg_store: Any) -> None:
    # A PostgreSQL restart or failover ends every connection the gateway holds. The appends
    # in flight then fail (the request fails closed), and the ledger opens new connections
    # for what comes after: appends, integration and auditors' reads all work again.
    import psycopg

    name = f"souverain-test-{secrets.token_hex(4)}"
    store = msgspec.structs.replace(pg_store, dsn=f"{pg_store.dsn} application_name={name}")

    def end_connections() -> int:
        with psycopg.connect(pg_store.dsn, autocommit=True) as db:
            rows = db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,)
            ).fetchall()
        return len(rows)

    async def once_more(call: Any) -> Any:
        try:
            return await call()
        except Exception:  # noqa: BLE001
            return await call()

    async def go() -> None:
        ledger = open_ledger(tmp_path, store, retention=RetentionConfig(content=True))
        content = {"request": b"a prompt", "response": b"an answer"}
        try:
            assert await ledger.append(entry(0), **content) == 0
            assert await ledger.integrate() == 1
            await ledger.checkpoint()
            assert end_connections() >= 3  # the sequencer's, the integrator's, the reader's
            outcomes: list[object] = []
            for i in range(1, 5):
                try:
                    outcomes.append(await ledger.append(entry(i), **content))
                except Exception as exc:  # noqa: BLE001 - which error a dead connection gives is psycopg's
                    outcomes.append(type(exc).__name__)
            appended = [x for x in outcomes if isinstance(x, int)]
            assert outcomes[-2:] == appended[-2:] and len(appended) >= 3, outcomes  # at most the first fails
            size = await once_more(ledger.integrate)  # each may fail once, on its dead connection
            note = await once_more(ledger.checkpoint)
            assert size == 1 + len(appended) and note.startswith(f"{ledger.origin}\n{size}\n")
            assert await ledger.content(appended[-1]) == (b"a prompt", b"an answer")
        finally:
            await ledger.stop()

    asyncio.run(go())


def test_sqlite_is_the_default_store(tmp_path: Path) -> None:
    config = LedgerConfig()
    assert config.store is None  # follows `state:`, whose default is SQLite in the state directory
    assert config.retention.content is False and config.retention.days >= 183
    assert config.checkpoint_interval_s <= 1.0
    fill(tmp_path, config.store, [3])
    assert (tmp_path / "ledger.db").is_file()


def test_entry_schema_round_trip() -> None:
    e = entry(7)
    data = msgspec.json.encode(e)
    assert decode_entry(data) == e
    assert isinstance(decode_entry(data), Entry)
