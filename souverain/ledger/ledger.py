"""`Ledger`: what the gateway holds to record requests and answer auditors.

    ledger = Ledger.open(config.ledger, state_dir=state_dir(config))
    await ledger.start()                                   # integrator task (asyncio)
    index = await ledger.append(entry, request=raw_request, response=raw_response)
    ...
    await ledger.stop()                                     # integrate what is left, close

`append` returns once the entry is durable, with its index; concurrent appends share one
transaction. It does not wait for the entry to be in a signed checkpoint: the integrator
publishes one every `checkpoint_interval_s`, and `receipt(index)` gives the proof once it
has. Every process that appends may also `start()`: only one of them integrates at a time
(store lock), the others stand by and take over if it dies.

Threads, each with its own store connection: one sequencer, one integrator, one reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from souverain.keys.base import KeyProvider
from souverain.keys.config import open_provider
from souverain.keys.envelope import ContentError, Keyring
from souverain.ledger.config import LedgerConfig
from souverain.ledger.entry import Entry
from souverain.ledger.integrator import Integrator
from souverain.ledger.note import CosignatureVerifier, Ed25519Signer, Ed25519Verifier, verifier_from_vkey
from souverain.ledger.reader import LogReader, NotFoundError
from souverain.ledger.sequencer import Content, Sequencer, content_aad
from souverain.ledger.store import Store, open_store
from souverain.ledger.witness import WitnessClient

log = logging.getLogger("souverain.ledger")
T = TypeVar("T")
PURGE_EVERY_S = 600.0


class LedgerError(RuntimeError):
    """The ledger cannot open as configured (another log's store, another key)."""


@dataclass(frozen=True, slots=True)
class ShredReport:
    tenant: str
    destroyed_keys: list[str]


class Ledger:
    def __init__(
        self, config: LedgerConfig, provider: KeyProvider, signer: Ed25519Signer, base_dir: Path, own_provider: bool
    ) -> None:
        self.config = config
        self.provider = provider
        self.signer = signer
        self.base_dir = base_dir
        self._own_provider = own_provider
        self.keyring = Keyring(provider)  # one cache for all threads, so a shred here is seen at once
        self._sequencer = Sequencer(
            self.open_store, self.keyring, retain_content=config.retention.content, max_batch=config.max_batch
        )
        self._reader_pool = ThreadPoolExecutor(1, thread_name_prefix="ledger-reader")
        self._reader_store: Store | None = None
        self._log_reader: LogReader | None = None
        self._integrator_pool: ThreadPoolExecutor | None = None
        self._integrator: Integrator | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._last_purge = 0.0

    @classmethod
    def open(
        cls, config: LedgerConfig, *, state_dir: str | os.PathLike[str] = ".", provider: KeyProvider | None = None
    ) -> Ledger:
        """Open (and on first use create) the log: its signing key, its store, and the
        store's record of which origin and key it belongs to."""
        base = Path(state_dir)
        own = provider is None
        provider = provider or open_provider(config.keys, base)
        try:
            key = provider.signing_key(config.signing_key, create=True)
            signer = Ed25519Signer(config.origin, key.public_key, key.sign)
            store = open_store(config.store, base)
            try:
                store.set_meta("origin", config.origin)
                store.set_meta("vkey", signer.vkey)
                origin, vkey = store.get_meta("origin"), store.get_meta("vkey")
            finally:
                store.close()
            if origin != config.origin or vkey != signer.vkey:
                raise LedgerError(
                    f"this store holds the log {origin!r} signed by {vkey!r}; the configuration names "
                    f"{config.origin!r} with key {signer.vkey!r}. Refusing to mix two logs."
                )
        except BaseException:
            if own:
                provider.close()
            raise
        return cls(config, provider, signer, base, own)

    def open_store(self) -> Store:
        return open_store(self.config.store, self.base_dir)

    @property
    def origin(self) -> str:
        return self.config.origin

    @property
    def vkey(self) -> str:
        """The log's verifier key (`<origin>+<id>+<key>`): what auditors need to verify."""
        return self.signer.vkey

    @property
    def verifier(self) -> Ed25519Verifier:
        return self.signer.verifier()

    def witness_verifiers(self) -> list[CosignatureVerifier]:
        out = []
        for w in self.config.witnesses:
            v = verifier_from_vkey(w.vkey)
            if isinstance(v, CosignatureVerifier):
                out.append(v)
        return out

    # -- writing -------------------------------------------------------------------------
    async def append(
        self, entry: Entry, *, request: bytes | None = None, response: bytes | None = None, sent: bytes | None = None
    ) -> int:
        """Sequence `entry`; its index, once durable. With `request`/`response` (raw bytes)
        the ledger fills the entry's HMAC digests under the tenant's key and, if content
        retention is on, stores the content sealed with the tenant's data key; with `sent`
        (the bytes that went to the route), `sent_hmac` likewise.
        Raises EntryError for an invalid entry, StoreError when the commit fails."""
        return await self._sequencer.append(entry, request, response, sent)

    # -- integrating ---------------------------------------------------------------------
    async def start(self) -> None:
        """Start the integrator task: every `checkpoint_interval_s`, if this process holds
        the integrator lock, fold new entries into the tree and publish a checkpoint."""
        if self._task is not None:
            return
        self._stopping.clear()
        self._integrator_pool = ThreadPoolExecutor(1, thread_name_prefix="ledger-integrator")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ledger-integrator")

    def _get_integrator(self) -> Integrator:
        if self._integrator is None:
            witnesses = [
                WitnessClient(w.url, v, timeout=w.timeout_s)
                for w in self.config.witnesses
                if isinstance(v := verifier_from_vkey(w.vkey), CosignatureVerifier)
            ]
            self._integrator = Integrator(self.open_store(), self.signer, self.origin, witnesses=witnesses)
        return self._integrator

    def _integrate_once(self) -> int | None:
        """On the integrator thread: one round if we hold (or can take) the lock. A round
        that fails drops its store (its connection may be the broken part) and witnesses:
        the next round starts afresh."""
        try:
            integrator = self._get_integrator()
            if not integrator.store.try_lock_integrator():
                return None
            size = integrator.run_until_idle()
        except Exception:
            self._drop_integrator()
            raise
        if self.config.retention.content and time.monotonic() - self._last_purge > PURGE_EVERY_S:
            self._last_purge = time.monotonic()
            purged = integrator.store.purge_content(time.time() - self.config.retention.days * 86400)
            if purged:
                log.info("purged retained content of %d entries older than %d days", purged, self.config.retention.days)
        return size

    def _drop_integrator(self) -> None:
        if self._integrator is not None:
            with contextlib.suppress(Exception):
                self._integrator.store.close()
            for w in self._integrator.witnesses:
                w.close()
            self._integrator = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._integrator_pool is not None
        while not self._stopping.is_set():
            try:
                await loop.run_in_executor(self._integrator_pool, self._integrate_once)
            except Exception:
                log.exception("ledger integration failed; retrying")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.config.checkpoint_interval_s)

    async def integrate(self) -> int | None:
        """Run one integration round now (tests, CLI); the tree size, or None when another
        process holds the integrator lock."""
        pool = self._integrator_pool or ThreadPoolExecutor(1, thread_name_prefix="ledger-integrator")
        self._integrator_pool = pool
        return await asyncio.get_running_loop().run_in_executor(pool, self._integrate_once)

    async def stop(self) -> None:
        """Stop the integrator after a last round, and release threads and connections.
        Appends already made finish first."""
        await self._sequencer.close()
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None
        loop = asyncio.get_running_loop()
        if self._integrator_pool is not None:
            try:
                await loop.run_in_executor(self._integrator_pool, self._integrate_once)
            except Exception:
                log.exception("final ledger integration failed")
            await loop.run_in_executor(self._integrator_pool, self._drop_integrator)
            self._integrator_pool.shutdown(wait=True)
            self._integrator_pool = None
        await loop.run_in_executor(self._reader_pool, self._close_reader)
        self._reader_pool.shutdown(wait=True)
        if self._own_provider:
            self.provider.close()

    # -- reading (auditors) --------------------------------------------------------------
    def _close_reader(self) -> None:
        if self._reader_store is not None:
            self._reader_store.close()
            self._reader_store = None
            self._log_reader = None

    def _reader(self) -> LogReader:
        if self._log_reader is None:
            self._reader_store = self.open_store()
            self._log_reader = LogReader(self._reader_store)
        return self._log_reader

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        def call() -> T:
            try:
                return fn(self._reader(), *args)
            except (NotFoundError, ValueError, ContentError):
                raise  # the store answered: what was asked is not there, or not readable
            except Exception:
                self._close_reader()  # perhaps a lost connection: a new one for the next read
                raise

        return await asyncio.get_running_loop().run_in_executor(self._reader_pool, call)

    async def checkpoint(self) -> str:
        """The latest signed checkpoint, with any witness cosignatures (C2SP note text)."""
        return (await self._read(LogReader.latest))[1]

    async def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return await self._read(LogReader.inclusion_proof, index, size)

    async def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        return await self._read(LogReader.consistency_proof, old, new)

    async def receipt(self, index: int) -> str:
        """A c2sp.org/tlog-proof@v1 receipt for entry `index` (NotFoundError until the entry
        is in a published checkpoint)."""
        return await self._read(LogReader.receipt, index)

    async def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Sequenced entries in [start, end) as (index, leaf bytes): auditor scope."""
        return await self._read(lambda r, a, b: r.store.read_entries(a, b), start, end)

    async def tile(self, level: int, index: int, width: int) -> bytes:
        return await self._read(LogReader.tile, level, index, width)

    async def bundle(self, index: int, width: int) -> bytes:
        return await self._read(LogReader.bundle, index, width)

    async def content(self, index: int) -> tuple[bytes | None, bytes | None]:
        """The retained (request, response) of entry `index`. NotFoundError when none was
        kept (retention off, purged, or shredded); ContentError if it will not open."""

        def read(reader: LogReader) -> tuple[bytes | None, bytes | None]:
            row = reader.store.read_content(index)
            if row is None:
                raise NotFoundError(f"no content retained for entry {index}")
            key = self.keyring.get(reader.store, row.tenant, create=False)
            if key is None or key.kek != row.kek:
                raise ContentError(f"the key that sealed entry {index}'s content is gone (shredded)")
            plain = key.open(row.sealed, content_aad(row.tenant, reader.entry(index)))
            content = msgspec.msgpack.decode(plain, type=Content)
            return content.request, content.response

        return await self._read(read)

    async def shred(self, tenant: str) -> ShredReport:
        return await self._read(lambda r: ShredReport(tenant, self.keyring.shred(r.store, tenant)))


def shred_tenant(provider: KeyProvider, store: Store, tenant: str) -> ShredReport:
    """Crypto-shred `tenant`: retire its data keys, delete its retained content, destroy its
    wrapping keys in the provider. The ledger's entries and tree are untouched. (A running
    gateway process notices within its keyring's TTL.)"""
    return ShredReport(tenant, Keyring(provider).shred(store, tenant))
