"""The sequencer: gives each appended entry its index, durably, in batched transactions.

Appends that arrive while a transaction is being committed wait for the next one, which
takes all of them (group commit): under load a batch grows to what one commit's latency
lets accumulate, with no timer and no added delay when idle. Each batch runs on the
sequencer's own thread with its own store connection, so the event loop never blocks on
the disk or the database.

Per entry, on that thread: the tenant's key gives the HMAC digests of the request and the
response (when given), the entry is encoded and checked, and, when content retention is
on, the content is sealed with the tenant's key and stored in the same transaction,
authenticated against the tenant and the entry's leaf hash so it cannot be moved to
another entry. An entry that fails its checks fails alone; a failed commit fails its batch
and nothing of it is durable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import msgspec

from souverain.keys.envelope import Keyring
from souverain.ledger import merkle
from souverain.ledger.entry import Entry, encode_entry
from souverain.ledger.store.base import ContentRow, Store


class Content(msgspec.Struct, array_like=True):
    request: bytes | None
    response: bytes | None


def content_aad(tenant: str, leaf: bytes) -> bytes:
    return b"souverain/content/v1\n" + tenant.encode() + b"\n" + merkle.leaf_hash(leaf)


@dataclass(slots=True)
class _Pending:
    entry: Entry
    request: bytes | None
    response: bytes | None
    future: asyncio.Future[int]
    sent: bytes | None = None


class Sequencer:
    def __init__(
        self,
        open_store: Callable[[], Store],
        keyring: Keyring,
        *,
        retain_content: bool = False,
        max_batch: int = 4096,
    ) -> None:
        self._open_store = open_store
        self._keyring = keyring
        self._retain = retain_content
        self._max_batch = max_batch
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ledger-sequencer")
        self._store: Store | None = None
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0  # for tests and metrics: transactions committed

    async def append(
        self, entry: Entry, request: bytes | None = None, response: bytes | None = None, sent: bytes | None = None
    ) -> int:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        # If the caller is cancelled, nobody reads the outcome: mark it read.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._pending.append(_Pending(entry, request, response, future, sent))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        # Shielded: a caller that goes away does not take the entry out of its batch.
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            try:
                results = await loop.run_in_executor(self._executor, self._commit, batch)
            except BaseException as exc:  # the executor itself failed (shut down)
                results = [exc] * len(batch)
            for pending, result in zip(batch, results, strict=True):
                if pending.future.done():
                    continue
                if isinstance(result, BaseException):
                    pending.future.set_exception(result)
                else:
                    pending.future.set_result(result)

    # -- on the sequencer thread ---------------------------------------------------------
    def _prepare(self, pending: _Pending, store: Store) -> tuple[bytes, ContentRow | None]:
        entry = pending.entry
        key = None
        if pending.request is not None or pending.response is not None or pending.sent is not None:
            key = self._keyring.get(store, entry.tenant)
            assert key is not None
            entry = msgspec.structs.replace(
                entry,
                request_hmac=key.digest(pending.request) if pending.request is not None else entry.request_hmac,
                response_hmac=key.digest(pending.response) if pending.response is not None else entry.response_hmac,
                sent_hmac=key.digest(pending.sent) if pending.sent is not None else entry.sent_hmac,
            )
        leaf = encode_entry(entry)
        if not (self._retain and key is not None):
            return leaf, None
        sealed = key.seal(
            msgspec.msgpack.encode(Content(pending.request, pending.response)), content_aad(entry.tenant, leaf)
        )
        return leaf, ContentRow(entry.tenant, key.kek, sealed, time.time())

    def _commit(self, batch: list[_Pending]) -> list[int | BaseException]:
        if self._store is None:
            self._store = self._open_store()
        store = self._store
        results: list[int | BaseException] = [0] * len(batch)
        slots, leaves, contents = [], [], []
        failed = False
        for i, pending in enumerate(batch):
            try:
                leaf, content = self._prepare(pending, store)
            except Exception as exc:
                results[i] = exc
                failed = True
                continue
            slots.append(i)
            leaves.append(leaf)
            contents.append(content)
        if failed:
            # A tenant's data key is read through the store too: its connection may be the
            # broken one, so the next batch starts on a new one (cheap, and only on errors).
            self._close_store()
            if not leaves:
                return results
            store = self._store = self._open_store()
        if not leaves:
            return results
        try:
            first = store.sequence(leaves, contents)
        except Exception as exc:
            # The connection may be broken (database restarted): start afresh next batch.
            self._close_store()
            for i in slots:
                results[i] = exc
            return results
        self.batches += 1
        for offset, i in enumerate(slots):
            results[i] = first + offset
        return results

    def _close_store(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            except Exception:
                pass
        self._store = None

    async def close(self) -> None:
        """Finish the appends already made, then release the thread and connection."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close_store)
        self._executor.shutdown(wait=True)
