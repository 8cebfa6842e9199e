"""Content retention (off by default): sealed per tenant apart from the tree, purged after
the retention period, and crypto-shredded on demand while the tree keeps verifying."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from ledger_fixtures import entry, open_ledger

from souverain.keys import ContentError, KeyNotFound
from souverain.ledger import NotFoundError, RetentionConfig
from souverain.ledger.store import open_store
from souverain.ledger.verify import StoreSource, verify

PROMPT = b"Patient Jane Roe, born 1980-02-03, asks about her HIV test"
ANSWER = b"Dear Ms Roe, your result is negative."


def sql(store: Any, query: str, params: tuple = ()) -> list[Any]:
    if store.kind == "postgres":
        query = query.replace("?", "%s")
    cur = store._db.execute(query, params)
    return cur.fetchall() if cur.description else []


def test_retention_is_off_by_default(tmp_path: Path, store_config: Any) -> None:
    async def go() -> None:
        ledger = open_ledger(tmp_path, store_config)
        index = await ledger.append(entry(0), request=PROMPT, response=ANSWER)
        with pytest.raises(NotFoundError):
            await ledger.content(index)
        await ledger.stop()

    asyncio.run(go())
    store = open_store(store_config, tmp_path)
    try:
        assert sql(store, "SELECT count(*) FROM ledger_content")[0][0] == 0
    finally:
        store.close()


def test_content_is_sealed_apart_and_bound_to_its_entry(tmp_path: Path, store_config: Any) -> None:
    retention = RetentionConfig(content=True)

    async def go() -> tuple[int, int]:
        ledger = open_ledger(tmp_path, store_config, retention=retention)
        a = await ledger.append(entry(0), request=PROMPT, response=ANSWER)
        b = await ledger.append(entry(1), request=b"other prompt", response=b"other answer")
        assert await ledger.content(a) == (PROMPT, ANSWER)
        assert await ledger.content(b) == (b"other prompt", b"other answer")
        await ledger.stop()
        return a, b

    a, b = asyncio.run(go())
    store = open_store(store_config, tmp_path)
    try:
        sealed = {i: bytes(s) for i, s in sql(store, "SELECT idx, sealed FROM ledger_content")}
        assert PROMPT not in sealed[a] and b"Roe" not in sealed[a]
        if store.kind == "sqlite":
            store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            assert b"Jane Roe" not in Path(store.path).read_bytes()
        # Content moved to another entry does not open there.
        sql(store, "UPDATE ledger_content SET sealed = ? WHERE idx = ?", (sealed[a], b))
    finally:
        store.close()

    async def read_moved() -> None:
        ledger = open_ledger(tmp_path, store_config, retention=retention)
        with pytest.raises(ContentError):
            await ledger.content(b)
        await ledger.stop()

    asyncio.run(read_moved())


def test_shred_erases_one_tenant_and_the_tree_still_verifies(tmp_path: Path, store_config: Any) -> None:
    retention = RetentionConfig(content=True)

    async def go() -> None:
        ledger = open_ledger(tmp_path, store_config, retention=retention)
        shredded = [await ledger.append(entry(i, tenant="clinic"), request=PROMPT, response=ANSWER) for i in range(3)]
        kept = await ledger.append(entry(9, tenant="bank"), request=b"bank prompt", response=b"bank answer")
        await ledger.integrate()
        before = await ledger.entries(0, 10)
        # A backup taken before shredding: the wrapped data key and the sealed content.
        store = open_store(store_config, tmp_path)
        backup_key = store.current_key("clinic")
        backup_content = store.read_content(shredded[0])
        store.close()
        assert backup_key is not None and backup_content is not None

        report = await ledger.shred("clinic")
        assert report.destroyed_keys == [backup_key.kek]
        for index in shredded:
            with pytest.raises(NotFoundError):
                await ledger.content(index)
        assert await ledger.content(kept) == (b"bank prompt", b"bank answer")
        # The backup is useless now: its wrapping key is gone from the key provider.
        with pytest.raises(KeyNotFound):
            ledger.provider.unwrap(backup_key.kek, backup_key.wrapped, b"souverain/data-key/v1\nclinic")
        # Entries (metadata, digests) are untouched, and the log verifies.
        assert await ledger.entries(0, 10) == before
        store = open_store(store_config, tmp_path)
        try:
            assert verify(StoreSource(store), ledger.verifier).ok
        finally:
            store.close()
        # The tenant goes on working with a new key; old digests cannot be reproduced.
        again = await ledger.append(entry(5, tenant="clinic"), request=PROMPT, response=ANSWER)
        assert await ledger.content(again) == (PROMPT, ANSWER)
        rows = dict(await ledger.entries(0, 10))
        assert rows[again].split(b'"request_hmac":')[1] != rows[shredded[0]].split(b'"request_hmac":')[1]
        assert (await ledger.shred("clinic")).destroyed_keys  # the new key; idempotent otherwise
        assert (await ledger.shred("nobody")).destroyed_keys == []
        await ledger.stop()

    asyncio.run(go())


def test_content_is_purged_after_the_retention_period(tmp_path: Path, store_config: Any) -> None:
    retention = RetentionConfig(content=True, days=200)

    async def go() -> None:
        ledger = open_ledger(tmp_path, store_config, retention=retention)
        old = await ledger.append(entry(0), request=b"old", response=b"old")
        new = await ledger.append(entry(1), request=b"new", response=b"new")
        store = open_store(store_config, tmp_path)
        try:
            sql(store, "UPDATE ledger_content SET created = ? WHERE idx = ?", (time.time() - 201 * 86400, old))
            sql(store, "UPDATE ledger_content SET created = ? WHERE idx = ?", (time.time() - 199 * 86400, new))
        finally:
            store.close()
        await ledger.integrate()  # the integrator purges expired content
        with pytest.raises(NotFoundError):
            await ledger.content(old)
        assert await ledger.content(new) == (b"new", b"new")
        await ledger.stop()

    asyncio.run(go())
